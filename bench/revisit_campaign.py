"""Benchmark: a revisit campaign through the one outbound dialer.

Runs a whole hotline (Asterisk 22, engine, the test Redis) on its own ports, makes ``--orders``
reviewed work orders due at once, and lets the engine's dialer call them all through Asterisk
to one sipp UAS playing every citizen's phone: numbers ending in 0-5 answer and press 1 (a
completed survey), 6-7 refuse (486 Busy Here), 8-9 ring and are never answered (the ring
timeout). One attempt per revisit (no retries), at most ``--concurrency`` calls at a time; the
calling hours run on a clock set to a working morning.

Prints: calls placed per minute at the concurrency limit, the time from "due" to the phone's
first ring (the INVITE's arrival at sipp) p50/p99, and the outcomes. Needs root.
Usage::

    python -m bench.revisit_campaign [--orders 500] [--concurrency 4]   # 500: about 30 min
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from hotline.engine import Hotline
from hotline.settings import Settings
from revisit.models import RevisitRow
from sipsim.citizen import audio_sdp, free_media_port
from sipsim.dtmf import write_dtmf_pcap
from workorders.orders import Actor, NewWorkOrder, Role

LEAD = Actor("bench", Role.SUPERVISOR)
# off the test engines' ports (tests/test_revisit_faults.py is at 300), so both can run at once
OFFSET = int(os.environ.get("HOTLINE_TEST_PORT_OFFSET", "0")) + 350
PHONE_PORT = 15399 + OFFSET


def phone_scenario(pcap: Path) -> str:
    """One UAS for every citizen, choosing by the called number's last digit."""
    reply = """
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ph[call_number]
      [last_Call-ID:]
      [last_CSeq:]"""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="citizens' phones">
  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:[0-9]*[67]@" search_in="msg" check_it="false" assign_to="busy"/>
      <ereg regexp="^INVITE sip:[0-9]*[89]@" search_in="msg" check_it="false" assign_to="mute"/>
    </action>
  </recv>
  <nop next="busy" test="busy"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing{reply}
      Contact: <sip:[local_ip]:[local_port]>
      Content-Length: 0
  ]]></send>
  <nop next="mute" test="mute"/>
  <pause milliseconds="300"/>
  <send><![CDATA[
      SIP/2.0 200 OK{reply}
      Contact: <sip:[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

{audio_sdp("citizen")}
  ]]></send>
  <recv request="ACK"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE"/>
  <send next="end"><![CDATA[
      SIP/2.0 200 OK{reply}
      Content-Length: 0
  ]]></send>
  <label id="busy"/>
  <send><![CDATA[
      SIP/2.0 486 Busy Here{reply}
      Content-Length: 0
  ]]></send>
  <recv request="ACK" next="end"/>
  <label id="mute"/>
  <recv request="CANCEL"/>
  <send><![CDATA[
      SIP/2.0 200 OK{reply}
      Content-Length: 0
  ]]></send>
  <send><![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]ph[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      Content-Length: 0
  ]]></send>
  <recv request="ACK"/>
  <label id="end"/>
</scenario>
"""


def ring_times(trace: Path) -> dict[str, float]:
    """Called number -> when its first INVITE reached the phone (wall clock)."""
    out: dict[str, float] = {}
    if not trace.exists():
        return out
    for block in trace.read_text(errors="replace").split("-" * 47)[1:]:
        head, _, message = block.partition("\n")
        if "message received" not in message.split("\n", 1)[0]:
            continue
        body = message.split("\n\n", 1)[-1].lstrip()
        if body.startswith("INVITE sip:"):
            number = body[len("INVITE sip:") :].split("@", 1)[0]
            stamp = datetime.strptime(head.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            out.setdefault(number, stamp)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def main(orders: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        base = Path(tmp)
        settings = Settings.load(environ={}).replace(
            data_dir=base / "var", recordings_dir=base / "rec",
            redis_url=os.environ.get("HOTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
            acd_prefix=f"hotline-bench-{int(time.time())}:acd:",
            sip_port=5160 + OFFSET, ami_port=5138 + OFFSET, agi_port=4673 + OFFSET,
            web_port=8445 + OFFSET, rtp_port_start=12000 + 2 * OFFSET,
            rtp_port_end=12999 + 2 * OFFSET, seat_qualify_s=0,
            callback_dial=f"PJSIP/citizens/sip:{{number}}@127.0.0.1:{PHONE_PORT}",
            revisit_at_once=True, revisit_max_attempts=1, revisit_concurrency=concurrency,
            revisit_ring_s=6, revisit_tick_s=0.5,
        )  # fmt: skip
        trace = base / "phone_messages.log"
        scenario = base / "phone.xml"
        scenario.write_text(phone_scenario(write_dtmf_pcap(base / "ones.pcap", "1" * 90)))
        phone = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(PHONE_PORT),
            "-mi", "127.0.0.1", "-mp", str(free_media_port()), "-nostdin", "-l", "1000",
            "-trace_msg", "-message_file", str(trace),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        hotline = Hotline(settings)
        await hotline.start()
        service = hotline.revisits
        shift = datetime(2026, 11, 23, 1, 0, tzinfo=UTC) - datetime.now(UTC)  # 09:00 Beijing
        service.clock = lambda: datetime.now(UTC) + shift
        try:
            numbers = {}
            for i in range(orders):
                phone_number = f"139{int(time.time()) % 100000:05d}{i:03d}"[:11]
                new = NewWorkOrder(channel="phone", caller_phone=phone_number, category="help",
                                   description="bench", lead_department="bench")  # fmt: skip
                number = (await hotline.work_orders.create(new, LEAD)).number
                for step in ("dispatch", "sign"):
                    await getattr(hotline.work_orders, step)(number, LEAD)
                await hotline.work_orders.reply(number, LEAD, "已处理。")
                await hotline.work_orders.review(number, LEAD, passed=True)
                numbers[number] = phone_number
            started = time.time()
            hotline.revisit_dialer.kick()
            while True:
                figures = await service.figures(datetime(2000, 1, 1, tzinfo=UTC))
                left = figures["by_state"]["due"] + figures["by_state"]["dialing"]
                if figures["by_state"]["done"] + figures["by_state"]["manual"] >= orders:
                    break
                if time.time() - started > 60 + orders * 20:
                    print(f"gave up: {left} revisits still due or dialing")
                    break
                await asyncio.sleep(1)
            elapsed = time.time() - started
            async with service.sessions() as session:
                from sqlalchemy import select

                rows = list(await session.scalars(select(RevisitRow)))
            views = [await service.show(row.order_number) for row in rows]
        finally:
            await hotline.stop()
            phone.terminate()
            await phone.wait()
            keys = [k async for k in hotline.acd.redis.scan_iter(f"{settings.acd_prefix}*")]
            if keys:
                await hotline.acd.redis.delete(*keys)
        rings = ring_times(trace)
        starts = [datetime.fromisoformat(h["started_at"]).timestamp() for v in views
                  for h in v["history"]]  # fmt: skip
        span_min = (max(starts) - min(starts)) / 60 if len(starts) > 1 else float("nan")
        due_to_ring = [
            (rings[numbers[row.order_number]] - (row.due_at - shift).timestamp()) * 1000
            for row in rows
            if numbers.get(row.order_number) in rings
        ]
        outcomes = Counter(h["outcome"] for v in views for h in v["history"])
        print(f"revisit campaign: {orders} due revisits, at most {concurrency} calls at a time, "
              f"one sipp UAS (60 % answer and press 1, 20 % busy, 20 % never answer):")  # fmt: skip
        print(f"  calls placed {len(starts)} in {elapsed:.0f} s: "
              f"{len(starts) / span_min:.1f} calls/minute at the limit")  # fmt: skip
        if due_to_ring:
            print(f"  due -> first ring p50 {statistics.median(due_to_ring):.0f} ms, "
                  f"p99 {pct(due_to_ring, 0.99):.0f} ms, first {min(due_to_ring):.0f} ms "
                  f"(n={len(due_to_ring)}; later ones wait for a free line)")  # fmt: skip
        print(f"  outcomes: {dict(outcomes)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.concurrency))
