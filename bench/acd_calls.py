"""Benchmark: from a caller entering the queue to the seat's phone ringing, through the
engine's ACD vs. Asterisk's native ``Queue()``, under the same small sipp load.

Runs a whole hotline (Asterisk 22, engine, Redis) on its own ports, registers sipp seats
that answer, and places sipp citizens who press 1 (Mandarin) then 1 (report) in the IVR.

* ACD: "entered" is the ACD's ``enter`` event (the engine's clock at enqueue).
* native: the engine's FastAGI ``queue`` route is removed, so the dialplan falls back to
  ``Queue(hotline-report)`` with the same seats; "entered" is the AMI ``QueueCallerJoin``
  event as the engine receives it.
* "ringing" is the INVITE's arrival at the seat's sipp (its message trace, wall clock).

Needs root (Asterisk in a chroot). Usage::

    python -m bench.acd_calls [--calls 10] [--interval 3.0]

"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR, Settings
from queueing.events import read_events
from sipsim.citizen import Press, place_call
from sipsim.seat import Seat, start_seat, unregister

SEATS = ("8001", "8005", "8002")  # hold "report" within the first two level bands
REPORT = [Press("1", 2500), Press("1", 1500)]
PIN = "2468"


def fast_seats(target: Path) -> Path:
    text = (PROJECT_DIR / "agents" / "seats.toml").read_text(encoding="utf-8")
    for old, new in {"wrap_up_s = 15": "wrap_up_s = 1", "wrap_up_s = 30": "wrap_up_s = 1",
                     "wrap_up_s = 45": "wrap_up_s = 1"}.items():  # fmt: skip
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    return target


def invite_times(seats: list[Seat]) -> dict[str, float]:
    """Caller number -> when its INVITE reached a seat (first one)."""
    out: dict[str, float] = {}
    for seat in seats:
        if not seat.trace.exists():
            continue
        text = seat.trace.read_text(errors="replace")
        for block in text.split("-----------------------------------------------")[1:]:
            head, _, message = block.partition("\n")
            if "message received" not in message.split("\n", 1)[0]:
                continue
            body = message.split("\n\n", 1)[-1]
            if not body.lstrip().startswith("INVITE "):
                continue
            stamp = datetime.strptime(head.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            for line in body.splitlines():
                if line.lower().startswith("from:") and "<sip:" in line:
                    caller = line.split("<sip:", 1)[1].split("@", 1)[0]
                    out.setdefault(caller, stamp)
    return out


async def run_variant(
    hotline: Hotline, workdir: Path, name: str, calls: int, interval: float
) -> list[float]:
    s = hotline.settings
    joined: dict[str, float] = {}

    def on_join(event: object) -> None:
        number = event.get("CallerIDNum", "")  # type: ignore[attr-defined]
        joined.setdefault(number, time.time())

    if name == "native":
        hotline.ami.on("QueueCallerJoin", on_join)
    seats = [
        await start_seat(
            workdir / name,
            ext,
            stored_secret(s.data_dir, f"seat-{ext}"),
            sip_port=s.sip_port,
            answer_after_ms=200,
        )  # fmt: skip
        for ext in SEATS
    ]
    if name == "acd":
        for ext in SEATS:
            await hotline.acd.login(ext, PIN)
    callers = [f"1390000{int(time.time()) % 1000:03d}{i}" for i in range(calls)]
    tasks = []
    for caller in callers:
        tasks.append(asyncio.create_task(place_call(
            workdir / name, sip_host=s.sip_host, sip_port=s.sip_port,
            service=s.hotline_number, caller=caller, presses=REPORT, hold_ms=1500,
        )))  # fmt: skip
        await asyncio.sleep(interval)
    results = await asyncio.gather(*tasks)
    failed = [r for r in results if r.returncode != 0]
    await asyncio.sleep(1)
    if name == "acd":
        events = await read_events(hotline.acd.redis, s.acd_prefix, count=100_000)
        joined = {e.data: e.at for e in events if e.type == "enter"}
        for ext in SEATS:
            await hotline.acd.logout(ext)
    rings = invite_times(seats)
    for seat in seats:
        await unregister(seat, stored_secret(s.data_dir, f"seat-{seat.ext}"), sip_port=s.sip_port)
        await seat.stop()
    delays = [(rings[c] - joined[c]) * 1000 for c in callers if c in rings and c in joined]
    print(f"{name}: {len(delays)}/{calls} calls measured, {len(failed)} sipp failures")
    return delays


def summary(name: str, delays: list[float]) -> float:
    if not delays:
        print(f"  {name:7} no measurements")
        return float("nan")
    ordered = sorted(delays)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    print(f"  {name:7} entered->ringing  p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   "
          f"max {ordered[-1]:7.1f} ms   (n={len(ordered)})")  # fmt: skip
    return p50


async def main(calls: int, interval: float) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        base = Path(tmp)
        settings = Settings.load(environ={}).replace(
            data_dir=base / "var", recordings_dir=base / "rec",
            seats_file=fast_seats(base / "seats.toml"),
            acd_prefix=f"hotline-bench-{int(time.time())}:acd:",
            sip_port=5960, ami_port=5938, agi_port=5473, web_port=9245,
            rtp_port_start=16000, rtp_port_end=16999,
            seat_qualify_s=0, seat_rewrite_contact=False,
            queue_announce_interval_s=600, callback_offer_after_s=0,
        )  # fmt: skip
        hotline = Hotline(settings)
        await hotline.start()
        try:
            acd = await run_variant(hotline, base, "acd", calls, interval)
            hotline.agi._routes.pop("queue")  # the dialplan falls back to Queue()
            native = await run_variant(hotline, base, "native", calls, interval)
        finally:
            keys = [k async for k in hotline.acd.redis.scan_iter(f"{settings.acd_prefix}*")]
            if keys:
                await hotline.acd.redis.delete(*keys)
            await hotline.stop()
    print(f"\nentered queue -> seat's phone ringing, {len(SEATS)} sipp seats, "
          f"{calls} sipp citizens one every {interval:.1f} s:")  # fmt: skip
    a, n = summary("ACD", acd), summary("native", native)
    print(f"  ratio ACD/native (p50): {a / n:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.interval))
