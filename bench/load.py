"""Load: sipp citizens at Chengdu's peak-hour rate and twice it, into the IVR and the queues,
with sipp seats answering and talking, for a set time per rate; prints what the box did.

Runs a whole hotline on its own ports (Asterisk 22 started here, the engine as ``hotline
up`` in a child process so its CPU is its own, the hotline's own kind of Redis). ``--seats``
seats (8001...) register to one answering sipp that answers after ``--answer-ms`` and talks
``--talk`` seconds; citizens arrive from one sipp per queue (bench/soak.py's scenario and
seats file), press 1 (Mandarin) then 1, 2 or 4 (report, consultation, business) and wait
until the hotline hangs up (a citizen waiting ``--patience`` s abandons).

For every rate (``--rates``, calls/s; Chengdu's peak hour is about 4,000 calls, 1.1/s):

* offered, answered, abandoned: the ACD's own events (enter, connect, abandon);
* key-to-next-prompt p50/p99: on a citizen's channel, from the end of an AGI command that
  listens for keys (a prompt or menu a key ended: AMI AGIExecEnd, Asterisk's clock) to the
  start of the next one that plays something (the next prompt, hold music, the seat's ring);
* queue-to-ring p50/p99: the dialplan's entry into ``hotline-queue`` (Asterisk's log) to the
  seat's INVITE at sipp (bench/acd_calls.py's measure);
* engine and Asterisk CPU seconds per offered call (/proc, their own processes) and the
  box's CPU use; the box saturates at the first rate whose p99 key-to-next-prompt passes
  100 ms, or whose CPU passes 90 %.

Needs root. Usage::

    python -m bench.load [--minutes 10] [--rates 1.1,2.2] [--seats 300] [--talk 90]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from panoramisk import Manager
from panoramisk.message import Message

from agents.seats import load_seats
from bench.acd_calls import entered_times, percentile, seat_trace
from bench.soak import QUEUE_KEYS, box_settings, citizens_scenario, seats_file, sipp_totals
from hotline.child import EngineProcess
from hotline.secrets import stored_secret
from hotline.settings import Settings
from hotline.wiring import ami_secret, provision_asterisk
from ivr.menu import load_menu
from queueing.acd import Acd
from queueing.events import read_events
from queueing.redis_server import RedisServer
from sipsim.citizen import free_udp_port
from sipsim.seat import register, uas_scenario

OFFSET = int(os.environ.get("HOTLINE_TEST_PORT_OFFSET", "0"))
# AMI's AGIExecEnd does not say which key ended a command: the gap is measured from the end
# of every command that listens for keys (a prompt, a menu) to the start of the next one that
# plays something to the caller on that channel (the next prompt, hold music, the seat's ring).
_LISTENS = ("GET DATA", "STREAM FILE")
_PLAYS = ("STREAM FILE", "GET DATA", "CONTROL STREAM FILE", "SET MUSIC ON", "EXEC Dial")


# The IVR hands its route back to the dialplan with this: a gap across it ends in the queue.
_LEAVES = "SET VARIABLE HOTLINE_ROUTE_KIND"


@dataclass
class Watch:
    """What the bench's own AMI session sees: key-to-next-prompt gaps (all of them, and split
    into the menu's own turns and the last key's way into the queue) and channels' callers."""

    gaps_ms: list[float] = field(default_factory=list)
    menu_gaps_ms: list[float] = field(default_factory=list)  # to the menu's next prompt
    queue_gaps_ms: list[float] = field(default_factory=list)  # out of the IVR into the queue
    callers: dict[str, str] = field(default_factory=dict)  # uniqueid -> caller number
    _key_at: dict[str, float] = field(default_factory=dict)  # channel -> key's command end
    _leaving: set[str] = field(default_factory=set)  # channels the IVR has routed since

    def on_event(self, _manager: Manager, event: Message) -> None:
        name, channel = event.get("Event"), event.get("Channel", "")
        at = float(event.get("Timestamp", "0") or 0)
        command = event.get("Command", "")
        if name == "Newchannel":
            self.callers.setdefault(event.get("Uniqueid", ""), event.get("CallerIDNum", ""))
        elif name == "AGIExecEnd" and command.startswith(_LISTENS):
            self._key_at[channel] = at
            self._leaving.discard(channel)
        elif name == "AGIExecStart" and command.startswith(_LEAVES) and channel in self._key_at:
            self._leaving.add(channel)
        elif name == "AGIExecStart" and command.startswith(_PLAYS) and channel in self._key_at:
            gap = (at - self._key_at.pop(channel)) * 1000
            self.gaps_ms.append(gap)
            leaving = channel in self._leaving
            self._leaving.discard(channel)
            (self.queue_gaps_ms if leaving else self.menu_gaps_ms).append(gap)


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def box_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def queue_to_ring_ms(trace: Path, entered: dict[str, float]) -> list[float]:
    """Each caller's first INVITE at a seat after its entry into the queue."""
    first: dict[str, float] = {}
    for at, caller in seat_trace(trace).invites:
        first.setdefault(caller, at)
    return [(first[c] - t) * 1000 for c, t in entered.items() if c in first and first[c] >= t]


def p(values: list[float], q: float) -> str:
    return f"{percentile(values, q):7.1f}" if values else "    n/a"


async def one_rate(
    rate: float, args: argparse.Namespace, settings: Settings, work: Path, watch: Watch,
    engine: EngineProcess, asterisk_pid: int | None, client: aioredis.Redis, trace: Path,
) -> dict[str, float]:  # fmt: skip
    duration = args.minutes * 60
    since = time.time()
    before = len(watch.gaps_ms), len(watch.menu_gaps_ms), len(watch.queue_gaps_ms)
    assert engine.process is not None
    cpu0 = (cpu_seconds(engine.process.pid), cpu_seconds(asterisk_pid), box_busy())
    per_queue = rate / len(QUEUE_KEYS)
    calls = max(1, round(per_queue * duration))
    stats = {key: work / f"citizens-{rate}-{key}.csv" for key in QUEUE_KEYS}
    citizens = []
    for key in QUEUE_KEYS:
        scenario = citizens_scenario(
            work, key, caller=f"139{{key}}{int(rate * 10):02d}",
            timeout_ms=(args.patience + args.talk) * 1000,
        )  # fmt: skip
        for _attempt in range(3):
            sipp = await asyncio.create_subprocess_exec(
                "sipp", f"127.0.0.1:{settings.sip_port}", "-sf", str(scenario),
                "-s", settings.hotline_number, "-r", f"{per_queue:.3f}", "-m", str(calls),
                "-l", "1000", "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi",
                "127.0.0.1", "-mp", str(free_udp_port() & ~1), "-nostdin", "-trace_stat",
                "-stf", str(stats[key]), "-fd", "5",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:  # a port taken meanwhile (the box is shared) ends sipp at once: new ports
                await asyncio.wait_for(sipp.wait(), 1.0)
            except TimeoutError:
                citizens.append(sipp)
                break
            print(f"  the citizens' sipp of queue key {key} exited at once "
                  f"({sipp.returncode}); again with other ports")  # fmt: skip
        else:
            raise RuntimeError(f"the citizens' sipp of queue key {key} does not start")
    await asyncio.sleep(duration)
    cpu1 = (cpu_seconds(engine.process.pid), cpu_seconds(asterisk_pid), box_busy())
    try:
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in citizens)),
                               args.patience + args.talk + 60)  # fmt: skip
    except TimeoutError:
        for c in citizens:
            if c.returncode is None:
                c.terminate()
    # the processes' CPU until the rate's last call ended; the box's over the offered window
    cpu2 = (cpu_seconds(engine.process.pid), cpu_seconds(asterisk_pid))
    events = [e for e in await read_events(client, settings.acd_prefix, count=1_000_000)
              if e.at >= since]  # fmt: skip
    offered = sum(1 for e in events if e.type == "enter")
    answered = sum(1 for e in events if e.type == "connect")
    abandoned = sum(1 for e in events if e.type == "abandon")
    placed = sum(sipp_totals(path)[0] for path in stats.values())
    log = work.parent / "asterisk-messages.log"
    rings = queue_to_ring_ms(trace, entered_times(log, since, watch.callers))
    gaps = watch.gaps_ms[before[0] :]
    menu_gaps, queue_gaps = watch.menu_gaps_ms[before[1] :], watch.queue_gaps_ms[before[2] :]
    busy = (cpu1[2][0] - cpu0[2][0]) / max(1, cpu1[2][1] - cpu0[2][1])
    per_call = max(1, placed)
    print(f"\nrate {rate:.2f} calls/s for {args.minutes:g} min ({placed} calls placed by sipp, "
          f"of {calls * len(QUEUE_KEYS)}):")  # fmt: skip
    print(f"  offered to queues {offered}, answered {answered}, abandoned {abandoned}")
    print(f"  key-to-next-prompt  p50 {p(gaps, 0.5)} ms  p99 {p(gaps, 0.99)} ms  (n={len(gaps)})")
    print(f"    in the menu       p50 {p(menu_gaps, 0.5)} ms  p99 {p(menu_gaps, 0.99)} ms  "
          f"(n={len(menu_gaps)})")  # fmt: skip
    print(f"    into the queue    p50 {p(queue_gaps, 0.5)} ms  p99 {p(queue_gaps, 0.99)} ms  "
          f"(n={len(queue_gaps)})")  # fmt: skip
    print(f"  queue-to-ring       p50 {p(rings, 0.5)} ms  p99 {p(rings, 0.99)} ms  "
          f"(n={len(rings)})")  # fmt: skip
    print(f"  CPU per call: engine {(cpu2[0] - cpu0[0]) / per_call * 1000:.0f} ms, "
          f"Asterisk {(cpu2[1] - cpu0[1]) / per_call * 1000:.0f} ms; box busy {busy:.0%} "
          f"of {os.cpu_count()} cores")  # fmt: skip
    return {"p99_key": percentile(gaps, 0.99) if gaps else float("nan"), "busy": busy,
            "p50_key": statistics.median(gaps) if gaps else float("nan")}  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="hotline-load-"))
    work = base / "work"
    work.mkdir()
    off = OFFSET
    redis_server = RedisServer(base / "redis", 7190 + off, secrets.token_urlsafe(16))
    redis_server.start()
    settings = box_settings(
        base,
        redis_server.url,
        seats_file(base / "seats.toml", args.seats),
        "hotline-load:acd:",
        sip_port=7560 + off,
        web_port=9785 + off,
        rtp=(40000 + 2 * off, 43999 + 2 * off),
        queue_announce_interval_s=45.0,
        # the bench's own AMI session measures the IVR's turns (AGIExec* of the same user)
        ami_extra_events="AGIExecStart,AGIExecEnd",
    )
    seats = load_seats(settings.seats_file)
    print(f"load: {args.minutes:g} min per rate, rates {args.rates}, {args.seats} seats "
          f"talking {args.talk} s, patience {args.patience} s, in {base}")  # fmt: skip
    asterisk = provision_asterisk(settings, load_menu(settings.menu_file), seats)
    asterisk.start()
    (base / "asterisk-messages.log").symlink_to(asterisk.root / "var/log/asterisk/messages.log")
    engine = EngineProcess(settings, base / "engine.log")
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    acd = Acd(client, seats, prefix=settings.acd_prefix)
    uas_process = None
    watch = Watch()
    manager = Manager(host=settings.ami_host, port=settings.ami_port, username=settings.ami_user,
                      secret=ami_secret(settings), events="on", ping_delay=0)  # fmt: skip
    try:
        engine.start()
        await engine.ready()
        for name in ("Newchannel", "AGIExecStart", "AGIExecEnd"):
            manager.register_event(name, watch.on_event)
        await asyncio.wait_for(manager.connect(), 10)
        uas_port = free_udp_port()
        trace = work / "seats_messages.log"
        uas = work / "seats.xml"
        uas.write_text(uas_scenario(True, args.answer_ms, args.talk * 1000), encoding="ISO-8859-1")
        uas_process = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(uas), "-i", "127.0.0.1", "-p", str(uas_port), "-mi", "127.0.0.1",
            "-mp", str(free_udp_port() & ~1), "-nostdin", "-trace_msg", "-message_file",
            str(trace), "-l", "2000",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        started = time.monotonic()
        for i in range(0, len(seats.seats), 10):
            await asyncio.gather(*(
                register(work, seat.extension,
                         stored_secret(settings.data_dir, f"seat-{seat.extension}"),
                         sip_port=settings.sip_port, contact_port=uas_port, expires=7200)
                for seat in seats.seats[i : i + 10]
            ))  # fmt: skip
        for seat in seats.seats:
            await acd.login(seat.extension, "2468")
        print(f"  {len(seats.seats)} seats registered and logged in "
              f"({time.monotonic() - started:.0f} s)")  # fmt: skip
        results = {}
        for rate in args.rates:
            results[rate] = await one_rate(rate, args, settings, work, watch, engine,
                                           asterisk.pid(), client, trace)  # fmt: skip
        saturated = [r for r, f in results.items() if f["p99_key"] > 100 or f["busy"] > 0.9]
        print("\nsaturation: " + (
            f"from {min(saturated):.2f} calls/s (p99 key-to-next-prompt > 100 ms or CPU > 90 %)"
            if saturated else
            f"not reached up to {max(args.rates):.2f} calls/s (p99 key-to-next-prompt <= 100 ms, "
            "CPU <= 90 %)"
        ))  # fmt: skip
    finally:
        manager.close()
        if uas_process is not None and uas_process.returncode is None:
            uas_process.terminate()
            await uas_process.wait()
        engine.stop()
        await client.aclose()
        asterisk.stop()
        asterisk.unmount()
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="per rate")
    parser.add_argument("--rates", type=lambda v: [float(x) for x in v.split(",")],
                        default=[1.1, 2.2], help="calls/s, comma-separated")  # fmt: skip
    parser.add_argument("--seats", type=int, default=300)
    parser.add_argument("--talk", type=int, default=90, help="seconds a seat talks")
    parser.add_argument(
        "--answer-ms", type=int, default=3000, help="a seat's ring before answering"
    )
    parser.add_argument("--patience", type=int, default=180, help="s a citizen waits at most")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("load: needs root (Asterisk runs in a chroot)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
