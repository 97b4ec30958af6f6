"""sipp as an operator's softphone: one sipp registers the seat (REGISTER with digest auth),
its Contact pointing at a second sipp running as a UAS that answers (or never answers) the
calls Asterisk sends the seat. See DESIGN.md, "A seat emulated with sipp"."""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sipsim.citizen import (
    answer_bye,
    answer_ok,
    audio_sdp,
    free_media_port,
    free_udp_port,
    media_on,
)

_REGISTER_REQUEST = """
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{{ext}}@[remote_ip]>;tag=[pid]reg[call_number]
      To: <sip:{{ext}}@[remote_ip]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:{{ext}}@127.0.0.1:{{contact_port}}>
      Expires: {{expires}}{auth}
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>"""

# Sent once without credentials, answered 401, then again with the digest.
REGISTER = (
    '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="seat registers">'
    + _REGISTER_REQUEST.format(cseq=1, auth="")
    + '\n  <recv response="401" auth="true"/>'
    + _REGISTER_REQUEST.format(cseq=2, auth="\n      [authentication username={ext}]")
    + '\n  <recv response="200"/>\n</scenario>\n'
)

_ANSWER = (
    """
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]seat[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

"""
    + audio_sdp("seat")
    + """
    ]]>
  </send>
  <recv request="ACK"/>
"""
    + answer_bye()
)

_NO_ANSWER = """
  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]seat[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""


_HANG_UP = """
  <recv request="ACK"/>
  <pause milliseconds="{ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:seat@[local_ip]:[local_port]>;tag=[pid]seat[call_number]
      To: [$remote]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
"""


def uas_scenario(
    answer: bool, answer_after_ms: int, hangup_after_ms: int | None = None,
    speak: Path | None = None,
) -> str:  # fmt: skip
    """Ring (180), then answer after ``answer_after_ms`` (or never, until CANCEL); with
    ``hangup_after_ms`` the phone hangs up itself, else it waits for the BYE. With ``speak``
    (an 8 kHz µ-law WAV) the seat says it once the call is answered."""
    pause = f'  <pause milliseconds="{answer_after_ms}"/>' if answer else ""
    body = _ANSWER if answer else _NO_ANSWER
    if answer and speak is not None:
        ack = '  <recv request="ACK"/>\n'
        body = body.replace(
            ack, f'{ack}  <nop><action><exec rtp_stream="{speak},1,0"/></action></nop>\n', 1
        )
    invite = '  <recv request="INVITE"/>'
    if answer and hangup_after_ms is not None:
        body = body[: body.index('  <recv request="ACK"/>')] + _HANG_UP.format(ms=hangup_after_ms)
        invite = (
            '  <recv request="INVITE">\n    <action>\n      <ereg regexp=".*" search_in="hdr" '
            'header="From:" assign_to="remote"/>\n      <ereg regexp="sip:[^>;]*" '
            'search_in="hdr" header="Contact:" assign_to="contact"/>\n    </action>\n  </recv>'
        )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="seat answers">
{invite}
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]seat[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port]>
      Content-Length: 0
    ]]>
  </send>
{pause}
{body}
</scenario>
"""


def refer_scenario(refer_to: str, after_ms: int, sip_port: int) -> str:
    """A seat's softphone pressing its own transfer button: it answers, waits ``after_ms``,
    sends REFER (``Refer-To: sip:<refer_to>@127.0.0.1:<sip_port>``, a blind transfer),
    answers Asterisk's NOTIFYs on the transfer's progress, and Asterisk's BYE."""
    uas = uas_scenario(True, 300, hangup_after_ms=after_ms)
    head = uas[: uas.index('  <send retrans="500">\n    <![CDATA[\n      BYE')]
    return (
        head
        + f"""  <send retrans="500">
    <![CDATA[
      REFER [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:seat@[local_ip]:[local_port]>;tag=[pid]seat[call_number]
      To: [$remote]
      Call-ID: [call_id]
      CSeq: 2 REFER
      Contact: <sip:seat@[local_ip]:[local_port]>
      Refer-To: <sip:{refer_to}@127.0.0.1:{sip_port}>
      Referred-By: <sip:seat@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="202"/>
  <label id="wait"/>
  <recv request="NOTIFY" optional="true" next="notified"/>
  <recv request="BYE"/>
{answer_ok(then="done")}  <label id="notified"/>
{answer_ok(then="wait")}  <label id="done"/>
</scenario>
"""
    )


@dataclass
class Seat:
    """A registered, answering softphone; ``invites`` are the INVITEs it received."""

    ext: str
    port: int
    workdir: Path
    process: asyncio.subprocess.Process | None = None
    trace: Path = field(init=False)

    def __post_init__(self) -> None:
        self.trace = self.workdir / f"seat-{self.ext}-{self.port}_messages.log"

    def invites(self) -> list[str]:
        """Each INVITE the seat received, as text (From shows the caller's number)."""
        if not self.trace.exists():
            return []
        text = self.trace.read_text(errors="replace")
        blocks = re.split(r"^-{5,}.*$", text, flags=re.M)
        received = [
            b.split("\n\n", 1)[1] for b in blocks if "message received" in b and "\n\n" in b
        ]
        invites, seen = [], set()
        for message in received:
            call_id = re.search(r"^Call-ID:\s*(\S+)", message, re.M | re.I)
            key = call_id.group(1) if call_id else message
            if message.lstrip().startswith("INVITE ") and key not in seen:
                seen.add(key)
                invites.append(message)
        return invites

    def callers(self) -> list[str]:
        out = []
        for invite in self.invites():
            match = re.search(r"^From:.*?<sip:([^@>]+)@", invite, re.M | re.I)
            out.append(match.group(1) if match else "")
        return out

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def run_uas(workdir: Path, name: str, port: int, scenario_xml: str) -> Seat:
    """A sipp UAS on ``port`` running ``scenario_xml`` (a phone that is not a seat: the
    citizen called back, an emergency number behind the trunk; or a seat's own UAS)."""
    phone = Seat(name, port, workdir)
    scenario = workdir / f"uas-{name}-{port}.xml"
    scenario.write_text(scenario_xml, encoding="ISO-8859-1")
    phone.process = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()), "-nostdin",
        "-trace_msg", "-message_file", str(phone.trace),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return phone


async def register(
    workdir: Path, ext: str, password: str, *, sip_port: int, contact_port: int, expires: int
) -> None:
    scenario = workdir / f"register-{ext}-{contact_port}-{expires}.xml"
    scenario.write_text(
        REGISTER.format(ext=ext, contact_port=contact_port, expires=expires), encoding="ISO-8859-1"
    )
    cmd = [
        "sipp", f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-m", "1", "-l", "1",
        "-i", "127.0.0.1", "-p", str(free_udp_port()), "-au", ext, "-ap", password,
        "-timeout", "10s", "-nostdin",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 20)
    if process.returncode != 0:
        raise RuntimeError(f"seat {ext} REGISTER failed:\n{out.decode()[-1500:]}{err.decode()}")


async def start_seat(
    workdir: Path,
    ext: str,
    password: str,
    *,
    sip_port: int,
    answer: bool = True,
    answer_after_ms: int = 300,
    hangup_after_ms: int | None = None,
    speak: Path | None = None,
    rtp_port: int | None = None,
) -> Seat:
    """Start the answering UAS (saying ``speak`` once answered, if given; its audio to
    ``rtp_port`` instead, if given: :func:`sipsim.citizen.media_on`) and register the seat
    with its Contact."""
    os.makedirs(workdir, exist_ok=True)
    port = free_udp_port()
    seat = Seat(ext, port, workdir)
    scenario = workdir / f"uas-{ext}-{port}.xml"
    scenario.write_text(
        media_on(uas_scenario(answer, answer_after_ms, hangup_after_ms, speak), rtp_port),
        encoding="ISO-8859-1",
    )
    cmd = [
        "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()),
        "-nostdin", "-trace_msg", "-message_file", str(seat.trace),
    ]  # fmt: skip
    seat.process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await asyncio.sleep(0.2)
    if seat.process.returncode is not None:
        raise RuntimeError(f"seat {ext}: the answering sipp exited ({seat.process.returncode})")
    await register(workdir, ext, password, sip_port=sip_port, contact_port=port, expires=3600)
    return seat


async def unregister(seat: Seat, password: str, *, sip_port: int) -> None:
    await register(seat.workdir, seat.ext, password, sip_port=sip_port, contact_port=seat.port,
                   expires=0)  # fmt: skip


def feature_code_scenario(
    ext: str, code: str, dtmf_pcap: Path | None, dtmf_ms: int, speak: Path | None = None
) -> str:
    """The seat's softphone dials a feature code (digest auth), maybe speaks (``speak``, an
    8 kHz µ-law WAV, 9 s after the answer: past the hotline's prompt), maybe keys in digits,
    and waits for the hotline to hang up after its spoken confirmation."""
    says = (
        f'  <pause milliseconds="9000"/>\n'
        f'  <nop><action><exec rtp_stream="{speak},1,0"/></action></nop>\n'
        if speak
        else ""
    )
    keys = (
        f'  <pause milliseconds="2500"/>\n'
        f'  <nop><action><exec play_pcap_audio="{dtmf_pcap}"/></action></nop>\n'
        f'  <pause milliseconds="{dtmf_ms}"/>\n'
        if dtmf_pcap
        else ""
    )
    invite = """
      INVITE sip:{code}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{ext}@[local_ip]:[local_port]>;tag=[pid]fc[call_number]
      To: <sip:{code}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{ext}@[local_ip]:[local_port]>
      {auth}
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

{sdp}
"""
    sdp = audio_sdp("seat")
    first = invite.format(code=code, ext=ext, cseq=1, auth="", sdp=sdp)
    second = invite.format(
        code=code, ext=ext, cseq=2, auth=f"[authentication username={ext}]", sdp=sdp
    )
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="seat dials a feature code">
  <send retrans="500"><![CDATA[{first}]]></send>
  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send><![CDATA[
      ACK sip:{code}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      From: <sip:{ext}@[local_ip]:[local_port]>;tag=[pid]fc[call_number]
      To: <sip:{code}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <send retrans="500"><![CDATA[{second}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{ext}@[local_ip]:[local_port]>;tag=[pid]fc[call_number]
      To: <sip:{code}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Contact: <sip:{ext}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
{says}{keys}{answer_bye()}</scenario>
"""


async def dial_feature_code(
    workdir: Path, ext: str, password: str, code: str, *, sip_port: int, keys: str = "",
    speak: Path | None = None,
) -> None:  # fmt: skip
    """Dial ``code`` from seat ``ext``'s softphone (e.g. *21 then the PIN and #; or *25,
    say ``speak``, then #)."""
    from sipsim.dtmf import sequence_duration_ms, write_dtmf_pcap

    os.makedirs(workdir, exist_ok=True)
    port = free_udp_port()
    pcap = write_dtmf_pcap(workdir / f"fc-{ext}-{port}.pcap", keys) if keys else None
    dtmf_ms = sequence_duration_ms(keys) + 300 if keys else 0
    scenario = workdir / f"fc-{ext}-{port}.xml"
    xml = feature_code_scenario(ext, code, pcap, dtmf_ms, speak)
    scenario.write_text(xml, encoding="ISO-8859-1")
    cmd = [
        "sipp", f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-m", "1", "-l", "1",
        "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
        "-mp", str(free_media_port()), "-au", ext, "-ap", password,
        "-timeout", "40s", "-nostdin",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 50)
    if process.returncode != 0:
        raise RuntimeError(f"seat {ext} dialing {code} failed:\n{out.decode()[-2500:]}")
