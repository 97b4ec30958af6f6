"""sipp as a citizen: build a UAC scenario that dials, presses keys (RFC 4733) and hangs up
after a while, or at once when told (:meth:`CitizenCall.hang_up`)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec

from sipsim.dtmf import sequence_duration_ms, write_dtmf_pcap

P = ParamSpec("P")


@dataclass(frozen=True)
class Press:
    """Wait ``after_ms`` then send ``keys`` one by one (each pcap lasts about 0.5 s)."""

    keys: str
    after_ms: int = 1000


@dataclass(frozen=True)
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str


def answer_ok(then: str = "") -> str:
    """A scenario step: answer the request just received 200 OK (then go to label ``then``)."""
    goto = f' next="{then}"' if then else ""
    return f"""  <send{goto}><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
"""


def answer_bye(timeout_ms: int = 0) -> str:
    """A scenario step: wait for the other side's BYE (up to ``timeout_ms``; 0: sipp's
    default) and answer it 200 OK."""
    timeout = f' timeout="{timeout_ms}"' if timeout_ms else ""
    return f'  <recv request="BYE"{timeout}/>\n' + answer_ok()


def hung_up_by_hotline(xml: str, timeout_ms: int = 0) -> str:
    """A citizen scenario (:func:`citizen_scenario`) whose other side hangs up: the
    citizen holds (a plain pause: no hang-up request is waited for, so the hotline's BYE is
    not unexpected), then its own BYE gives way to answering the hotline's (waited for up to
    ``timeout_ms``)."""
    head, _, _ = xml.rpartition('<send retrans="500">')
    head = re.sub(
        rf'<recv request="{HANG_UP_REQUEST}" timeout="(\d+)" ontimeout="hang-up"/>\s*'
        r'<label id="hang-up"/>',
        r'<pause milliseconds="\1"/>',
        head,
    )
    return head + answer_bye(timeout_ms) + "</scenario>\n"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_media_port() -> int:
    """An even local port for sipp's ``-mp`` whose next three are free too: sipp binds the
    audio RTP port and the video one two above it (and each one's RTCP port), and a busy
    video port fails the call ("Unable to bind video RTP socket")."""
    for _ in range(100):
        base = free_udp_port() & ~1
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + 4):
                sockets.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                sockets[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no four free UDP ports in a row for sipp's media")


def media_on(xml: str, rtp_port: int | None) -> str:
    """``xml`` with its SDP's audio port set to ``rtp_port`` (a socket of the test, e.g.
    :class:`sipsim.rtp.RtpPhone`: Asterisk's audio goes there instead of to sipp)."""
    if rtp_port is None:
        return xml
    assert "m=audio [media_port]" in xml
    return xml.replace("m=audio [media_port]", f"m=audio {rtp_port}")


def audio_sdp(user: str) -> str:
    """The SDP every emulated phone offers or answers: PCMU, with RFC 4733 telephone events."""
    return f"""      v=0
      o={user} 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv"""


@dataclass(frozen=True)
class Speak:
    """After the key presses (and, with ``cued``, once told by :meth:`CitizenCall.speak_now`,
    e.g. when a seat answered), wait ``after_ms`` then stream ``wav`` (8 kHz mono µ-law) as
    the caller's voice."""

    wav: Path
    after_ms: int = 3000
    cued: bool = False


#: the request that makes a citizen on hold hang up at once (sent by :meth:`CitizenCall.hang_up`)
HANG_UP_REQUEST = "INFO"
#: the request that makes a cued citizen speak (sent by :meth:`CitizenCall.speak_now`)
SPEAK_REQUEST = "NOTIFY"


def citizen_scenario(
    caller: str, presses: list[Press], hold_ms: int, workdir: Path, speak: Speak | None = None
) -> str:
    """A call to the service number that presses ``presses`` (then maybe speaks) and hangs
    up after ``hold_ms``, or before when it gets a ``HANG_UP_REQUEST`` (not answered: sipp
    would send the answer to the hotline). ``caller`` may hold sipp keywords
    (``139[call_number]``)."""
    actions: list[str] = []
    stem = re.sub(r"\W", "", caller)
    for press in presses:
        pcap = write_dtmf_pcap(workdir / f"dtmf-{stem}-{len(actions)}.pcap", press.keys)
        actions.append(
            f'  <pause milliseconds="{press.after_ms}"/>\n'
            f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
            f'  <pause milliseconds="{sequence_duration_ms(press.keys) + 100}"/>'
        )
    if speak is not None:
        if speak.cued:  # not told to: the citizen hangs up after the hold
            actions.append(
                f'  <recv request="{SPEAK_REQUEST}" timeout="{hold_ms}" ontimeout="hang-up"/>'
            )
        actions.append(
            f'  <pause milliseconds="{speak.after_ms}"/>\n'
            f'  <nop><action><exec rtp_stream="{speak.wav},1,0"/></action></nop>'
        )
    body = "\n".join(actions)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="citizen calls the hotline">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "citizen" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

{audio_sdp("citizen")}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "citizen" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
{body}
  <recv request="{HANG_UP_REQUEST}" timeout="{hold_ms}" ontimeout="hang-up"/>
  <label id="hang-up"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "citizen" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def write_scenario(
    workdir: Path, caller: str, presses: list[Press], hold_ms: int, speak: Speak | None = None,
    rtp_port: int | None = None,
) -> Path:  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = workdir / f"citizen-{caller}-{free_udp_port()}.xml"
    text = media_on(citizen_scenario(caller, presses, hold_ms, workdir, speak), rtp_port)
    scenario.write_text(text, encoding="ISO-8859-1")
    return scenario


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class CitizenCall:
    """A sipp citizen call under way (:func:`start_call`): awaiting it gives its result once
    the citizen hung up; :meth:`hang_up` makes the citizen hang up now rather than after the
    scenario's hold."""

    def __init__(
        self, process: asyncio.subprocess.Process, port: int, errors: Path, timeout_s: float
    ) -> None:
        self.process = process
        self.port = port  # the citizen's SIP port
        self._result = asyncio.ensure_future(self._finish(errors, timeout_s))

    async def _finish(self, errors: Path, timeout_s: float) -> SippResult:
        process = self.process
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout_s + 10)
        except TimeoutError:
            process.kill()
            out, err = await process.communicate()
        return SippResult(
            returncode=process.returncode if process.returncode is not None else -1,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
            errors=_read(errors),
        )

    def __await__(self) -> Generator[Any, None, SippResult]:
        return self._result.__await__()

    def done(self) -> bool:
        return self._result.done()

    def cancel(self) -> None:
        """Stop waiting, and tell the citizen to hang up (a BYE, so that the hotline does not
        keep a seat on a call nobody is on; a kill would send none)."""
        if self.process.returncode is None:
            self.tell_to_hang_up()
        self._result.cancel()

    def tell_to_hang_up(self) -> None:
        """Tell the citizen, on hold after its keys and speech, to hang up now (its BYE, as
        after the hold)."""
        self._tell(HANG_UP_REQUEST)

    def speak_now(self) -> None:
        """Tell a citizen whose :class:`Speak` is ``cued`` to start speaking."""
        self._tell(SPEAK_REQUEST)

    def _tell(self, method: str) -> None:
        """Send ``method`` into the citizen's dialog from the test (sipp takes it by Call-ID)."""
        call_id = f"1-{self.process.pid}@127.0.0.1"  # sipp's default -cid_str, call number 1
        request = (
            f"{method} sip:citizen@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{method.lower()}\r\n"
            f"From: <sip:test@127.0.0.1>;tag=test\r\nTo: <sip:citizen@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
            f"Content-Length: 0\r\n\r\n"
        )  # fmt: skip
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(request.encode(), ("127.0.0.1", self.port))

    async def hang_up(self) -> SippResult:
        """:meth:`tell_to_hang_up`, then the call's result."""
        self.tell_to_hang_up()
        return await self


async def start_call(
    workdir: Path,
    *,
    sip_host: str,
    sip_port: int,
    service: str,
    caller: str,
    presses: list[Press],
    hold_ms: int = 1000,
    timeout_s: float = 120,
    speak: Speak | None = None,
    rtp_port: int | None = None,
) -> CitizenCall:
    """Start one sipp citizen call (its audio to ``rtp_port``, if given)."""
    scenario = write_scenario(workdir, caller, presses, hold_ms, speak, rtp_port)
    errors = scenario.with_suffix(".errors.log")
    port = free_udp_port()
    cmd = [
        "sipp", f"{sip_host}:{sip_port}",
        "-sf", str(scenario), "-s", service, "-m", "1", "-l", "1",
        "-i", "127.0.0.1", "-p", str(port),
        "-mi", "127.0.0.1", "-mp", str(free_media_port()),
        "-timeout", f"{int(timeout_s)}s", "-nostdin", "-trace_err", "-error_file", str(errors),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    return CitizenCall(process, port, errors, timeout_s)


def _to_the_end(start: Callable[P, Awaitable[CitizenCall]]) -> Callable[P, Awaitable[SippResult]]:
    async def run(*args: P.args, **kwargs: P.kwargs) -> SippResult:
        return await (await start(*args, **kwargs))

    run.__doc__ = "Run one sipp citizen call to completion (:func:`start_call`'s arguments)."
    return run


place_call = _to_the_end(start_call)
