"""Benchmark: from a caller entering the queue to the chosen seat's phone ringing, through
the engine's ACD vs. Asterisk's native ``Queue()``, on the same Asterisk in the same run.

Runs a whole hotline (Asterisk 22, engine, Redis) on its own ports, registers sipp seats
(sipsim/seat.py) that answer after 100 ms, and places sipp citizens (sipsim/citizen.py) who
press 1 (Mandarin) then 1 (report) in the IVR and hang up after ``--hold-ms`` of talk.

Both variants are measured from the same events, outside the engine:

* "entered": the dialplan's first line of ``hotline-queue`` (its Verbose line in Asterisk's
  log, Asterisk's clock in ms), before the FastAGI ``queue`` route or ``Queue()`` runs;
* "seat freed": the BYE that ends the seat's previous call, in the seat's sipp trace;
* "ringing": the INVITE's arrival at the seat's sipp (its message trace).

A caller who entered while every seat talked is a "busy" sample (seat freed -> ringing),
the others "free" samples (entered -> ringing). Two phases per variant: callers spaced
wider than a call lasts (seats free), then a burst faster than the seats can take (callers
wait, then a seat frees). Seats have no wrap-up, so a freed seat is free at once for both.

The box's other load drifts over minutes, so the variants take turns: ``--rounds`` rounds in
ABBA order (ACD, native, native, ACD, ...), each with its share of ``--calls``; the first
``--warmup`` callers of each phase of a round are placed but not counted.

* native: :func:`use_variant` (the dialplan falls back to ``Queue(hotline-report)`` with the
  same seats).

Needs root (Asterisk in a chroot). Ports shift by ``HOTLINE_TEST_PORT_OFFSET``. Usage::

    python -m bench.acd_calls [--calls 100] [--seats 3] [--rounds 2] [--warmup 2]

"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from panoramisk.message import Message

from hotline.engine import Hotline
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR, Settings
from sipsim.citizen import Press, place_call
from sipsim.seat import start_seat, unregister

ALL_SEATS = ("8001", "8005", "8002", "8003")  # hold "report" within the first level bands
REPORT = [Press("1", 2500), Press("1", 1500)]
PIN = "2468"
OFFSET = int(os.environ.get("HOTLINE_TEST_PORT_OFFSET", "0"))
_ENTERED = re.compile(r"^\[([^\]]+)\].*hotline (\S+) waits in queue ", re.M)
_STAMP = "%Y-%m-%d %H:%M:%S.%f"


def fast_seats(target: Path) -> Path:
    """The shipped seats file with no wrap-up: a seat is free the moment its call ends."""
    text = (PROJECT_DIR / "agents" / "seats.toml").read_text(encoding="utf-8")
    text = re.sub(r"wrap_up_s = \d+", "wrap_up_s = 0", text)
    target.write_text(text, encoding="utf-8")
    return target


@dataclass
class SeatTrace:
    """What one seat's sipp saw: INVITEs (time, caller) and BYEs (time), in order."""

    invites: list[tuple[float, str]] = field(default_factory=list)
    byes: list[float] = field(default_factory=list)


def seat_trace(trace: Path) -> SeatTrace:
    """A seat's (or a UAS's) sipp message trace."""
    out = SeatTrace()
    if not trace.exists():
        return out
    text = trace.read_text(errors="replace")
    seen: set[str] = set()
    for block in text.split("-----------------------------------------------")[1:]:
        head, _, message = block.partition("\n")
        body = message.split("\n\n", 1)[-1].lstrip()
        try:
            stamp = datetime.strptime(head.strip(), _STAMP).timestamp()
        except ValueError:
            continue
        call_id = re.search(r"^Call-ID:\s*(\S+)", body, re.M | re.I)
        key = call_id.group(1) if call_id else body
        if body.startswith("INVITE ") and "message received" in message and key not in seen:
            seen.add(key)
            caller = re.search(r"^From:.*?<sip:([^@>]+)@", body, re.M | re.I)
            out.invites.append((stamp, caller.group(1) if caller else ""))
        elif body.startswith("BYE ") and f"bye {key}" not in seen:
            seen.add(f"bye {key}")
            out.byes.append(stamp)
    return out


def entered_times(log: Path, since: float, callers: dict[str, str]) -> dict[str, float]:
    """Caller number -> when its channel entered hotline-queue (Asterisk's log)."""
    out: dict[str, float] = {}
    text = log.read_text(errors="replace") if log.exists() else ""
    for stamp, uniqueid in _ENTERED.findall(text):
        at = datetime.strptime(stamp, _STAMP).timestamp()
        if at >= since and uniqueid in callers:
            out.setdefault(callers[uniqueid], at)
    return out


@dataclass
class Samples:
    free: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    missing: int = 0


def samples(traces: list[SeatTrace], entered: dict[str, float]) -> Samples:
    out = Samples()
    for trace in traces:
        for at, caller in trace.invites:
            start = entered.get(caller)
            if start is None:
                out.missing += 1
                continue
            freed = [b for b in trace.byes if start <= b <= at]
            if freed:  # the caller waited for this seat's previous call to end
                out.busy.append((at - freed[-1]) * 1000)
            else:
                out.free.append((at - start) * 1000)
    return out


def use_variant(hotline: Hotline, variant: str) -> None:
    """native: the FastAGI ``queue`` route removed, so the dialplan falls back to ``Queue()``."""
    if variant == "native":
        hotline.agi._routes.pop("queue", None)
    else:
        hotline.agi.add_route("queue", hotline.queue_route.run)


async def run_phase(
    hotline: Hotline, folder: Path, variant: str, phase: str, args: argparse.Namespace,
    uniqueids: dict[str, str], calls: int,
) -> Samples:  # fmt: skip
    s = hotline.settings
    exts = ALL_SEATS[: args.seats]
    seats = [
        await start_seat(
            folder,
            ext,
            stored_secret(s.data_dir, f"seat-{ext}"),
            sip_port=s.sip_port,
            answer_after_ms=100,
        )  # fmt: skip
        for ext in exts
    ]
    if variant == "acd":
        for ext in exts:
            await hotline.acd.login(ext, PIN)
    hotline.dispatcher.kick()
    # free: one call at a time per seat; busy: callers arrive faster than seats finish
    call_s = args.hold_ms / 1000 + 0.5
    interval = (call_s + 1.0) / args.seats if phase == "free" else call_s / args.seats / 2
    prefix = f"139{int(time.time()) % 100000:05d}"
    since = time.time()
    tasks = []
    for i in range(calls):
        tasks.append(asyncio.create_task(place_call(
            folder, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
            caller=f"{prefix}{i:03d}", presses=REPORT, hold_ms=args.hold_ms, timeout_s=600,
        )))  # fmt: skip
        await asyncio.sleep(interval)
    results = await asyncio.gather(*tasks)
    await asyncio.sleep(1)
    if variant == "acd":
        for ext in exts:
            await hotline.acd.logout(ext)
    traces = [seat_trace(seat.trace) for seat in seats]
    for seat in seats:
        await unregister(seat, stored_secret(s.data_dir, f"seat-{seat.ext}"), sip_port=s.sip_port)
        await seat.stop()
    assert hotline.asterisk is not None
    log = hotline.asterisk.root / "var/log/asterisk/messages.log"
    entered = entered_times(log, since - 1, uniqueids)
    warm = {f"{prefix}{i:03d}" for i in range(min(args.warmup, calls))}  # placed, not counted
    entered = {caller: at for caller, at in entered.items() if caller not in warm}
    traces = [_without(t, warm) for t in traces]
    found = samples(traces, entered)
    failed = sum(1 for r in results if r.returncode != 0)
    print(f"{variant:6} {phase:4}: {calls} calls, {failed} sipp failures, "
          f"{len(found.free)} free + {len(found.busy)} busy samples, "
          f"{found.missing} unmatched")  # fmt: skip
    return found


def _without(trace: SeatTrace, callers: set[str]) -> SeatTrace:
    """``trace`` without the INVITEs of ``callers`` (its BYEs stay: they free the seat)."""
    return SeatTrace([i for i in trace.invites if i[1] not in callers], trace.byes)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, values: list[float]) -> float:
    if not values:
        print(f"  {name:14} no samples")
        return float("nan")
    p50 = statistics.median(values)
    print(f"  {name:14} p50 {p50:7.1f} ms   p99 {percentile(values, 0.99):7.1f} ms   "
          f"max {max(values):7.1f} ms   (n={len(values)})")  # fmt: skip
    return p50


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        base = Path(tmp)
        settings = Settings.load(environ={}).replace(
            data_dir=base / "var", recordings_dir=base / "rec",
            seats_file=fast_seats(base / "seats.toml"),
            acd_prefix=f"hotline-bench-{int(time.time())}:acd:",
            sip_port=5960 + OFFSET, ami_port=5938 + OFFSET, agi_port=5473 + OFFSET,
            web_port=9845 + OFFSET, rtp_port_start=30000 + 2 * OFFSET,
            rtp_port_end=30999 + 2 * OFFSET, redis_port=6390 + OFFSET, seat_qualify_s=0,
            seat_rewrite_contact=False,
            queue_announce_interval_s=600, callback_offer_after_s=0,
        )  # fmt: skip
        hotline = Hotline(settings)
        await hotline.start()
        uniqueids: dict[str, str] = {}

        def on_channel(event: Message) -> None:
            uniqueids.setdefault(event.get("Uniqueid", ""), event.get("CallerIDNum", ""))

        hotline.ami.on("Newchannel", on_channel)
        results = {"acd": Samples(), "native": Samples()}
        logging.getLogger("pbx.fastagi").setLevel(logging.CRITICAL)  # native: says so per call
        per_round = -(-args.calls // args.rounds)
        try:
            for r in range(args.rounds):
                for variant in ("acd", "native") if r % 2 == 0 else ("native", "acd"):
                    use_variant(hotline, variant)
                    for phase in ("free", "busy"):
                        folder = base / f"{variant}-{phase}-{r}"
                        got = await run_phase(hotline, folder, variant, phase, args, uniqueids,
                                              per_round + args.warmup)  # fmt: skip
                        results[variant].free += got.free
                        results[variant].busy += got.busy
        finally:
            keys = [k async for k in hotline.acd.redis.scan_iter(f"{settings.acd_prefix}*")]
            if keys:
                await hotline.acd.redis.delete(*keys)
            await hotline.stop()
    print(f"\nqueue -> seat's phone ringing ({args.seats} sipp seats, {args.calls} calls per "
          f"phase in {args.rounds} rounds (+{args.warmup} warm-up each), "
          f"talk {args.hold_ms} ms):")  # fmt: skip
    for kind in ("free", "busy"):
        what = "entered->ring" if kind == "free" else "freed->ring"
        a = summary(f"ACD    {kind}", getattr(results["acd"], kind))
        n = summary(f"native {kind}", getattr(results["native"], kind))
        print(f"  {kind}: {what} ratio ACD/native p50 {a / n:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per phase and variant")
    parser.add_argument("--seats", type=int, default=3, choices=range(1, len(ALL_SEATS) + 1))
    parser.add_argument("--hold-ms", type=int, default=1500, help="talk time of each call")
    parser.add_argument("--rounds", type=int, default=2, help="turns of the variants (ABBA)")
    parser.add_argument("--warmup", type=int, default=2, help="callers not counted per phase")
    asyncio.run(main(parser.parse_args()))
