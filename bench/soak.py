"""Soak: sipp citizens into the queues, sipp seats answering, and faults on a schedule.

Runs a whole hotline on its own ports: Asterisk 22 (started here, restarted here), the
hotline's own kind of Redis (queueing.redis_server, restarted here with its AOF) and the
engine as ``hotline up`` in a child process (killed here with SIGKILL and started again).
``--seats`` seats (8001...) register to one answering sipp that talks ``--talk`` seconds
and hangs up; citizens arrive at ``--rate`` calls/s from one sipp, press 1 (Mandarin) then
1, 2 or 4 (report, consultation, business) and wait until the hotline hangs up.

Printed at the end: calls placed; calls that reached a human (a seat's phone got the
caller's INVITE; the native fallback queue rings the same phones) or not (lost); call
records missing or left open; work orders missing for connected calls; seats stuck (ringing
or on a call with nothing in Asterisk, or paused by RONA). It is a benchmark, not a test.

Needs root (Asterisk in a chroot). Usage::

    python -m bench.soak [--minutes 10] [--seats 40] [--rate 1.2]
        [--kills 5] [--redis-restarts 2] [--asterisk-restarts 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from agents.seats import load_seats
from hotline.child import EngineProcess
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR, Settings
from hotline.wiring import provision_asterisk
from ivr.menu import load_menu
from queueing.acd import Acd
from queueing.redis_server import RedisServer
from sipsim.citizen import Press, citizen_scenario, free_udp_port, hung_up_by_hotline
from sipsim.seat import register, uas_scenario

PIN_HASH = re.search(
    r'pin_hash = "([^"]+)"', (PROJECT_DIR / "agents" / "seats.toml").read_text(encoding="utf-8")
)
QUEUE_KEYS = ("1", "2", "4")  # report, consultation, business


def seats_file(target: Path, count: int) -> Path:
    """``count`` seats, every one holding every skill (levels spread), short timers."""
    assert PIN_HASH is not None, "the shipped seats file has no pin_hash to reuse"
    head = (PROJECT_DIR / "agents" / "seats.toml").read_text(encoding="utf-8").split("[[seat]]")[0]
    head = re.sub(r"wrap_up_s = \d+", "wrap_up_s = 2", head)
    head = re.sub(r"ring_timeout_s = \d+", "ring_timeout_s = 8", head)
    seats = [
        f'[[seat]]\nextension = "{8001 + i}"\nname = "Seat {i + 1}"\n'
        f'pin_hash = "{PIN_HASH.group(1)}"\nlanguages = ["zh", "en"]\n'
        f"skills = {{ report = {1 + i % 3}, consultation = {1 + (i + 1) % 3}, "
        f"business = {1 + (i + 2) % 3}, operator = 2, english = 3 }}\n"
        for i in range(count)
    ]
    target.write_text(head + "\n".join(seats), encoding="utf-8")
    return target


def box_settings(
    base: Path,
    redis_url: str,
    seats: Path,
    prefix: str,
    *,
    sip_port: int,
    web_port: int,
    rtp: tuple[int, int],
    **changes: object,
) -> Settings:
    """A bench's hotline: folders under ``base``, its Redis and prefix, Asterisk started by
    the bench (not the engine), its ports (AMI and FastAGI beside ``sip_port``), no waits
    before the callback offer, seats not qualified (sipp phones answer no OPTIONS)."""
    return Settings.load(environ={"HOTLINE_REDIS_URL": redis_url}).replace(
        data_dir=base / "var", recordings_dir=base / "recordings", seats_file=seats,
        acd_prefix=prefix, manage_asterisk=False, callback_offer_after_s=0.0, seat_qualify_s=0,
        seat_rewrite_contact=False, sip_port=sip_port, ami_port=sip_port - 22,
        agi_port=sip_port + 13, web_port=web_port, rtp_port_start=rtp[0], rtp_port_end=rtp[1],
        **changes,
    )  # fmt: skip


def citizens_scenario(
    workdir: Path, key: str, *, caller: str = "139{key}", timeout_ms: int = 240_000
) -> Path:
    """Every call: caller 139<key><n> (``caller``'s pattern, then sipp's call number),
    1 (Mandarin), ``key`` (the queue), then it waits for the hotline's BYE (the seat hangs
    up; up to ``timeout_ms``, 4 minutes, after which sipp gives up the call)."""
    presses = [Press("1", 2500), Press(key, 1500)]
    number = caller.format(key=key)
    xml = citizen_scenario(f"{number}[call_number]", presses, 0, workdir)
    path = workdir / f"citizens-{number}.xml"
    path.write_text(hung_up_by_hotline(xml, timeout_ms=timeout_ms), encoding="ISO-8859-1")
    return path


def schedule(duration_s: float, kills: int, redis: int, asterisk: int) -> list[tuple[float, str]]:
    """Faults spread over the first 90 % of the run, none at the same moment."""
    events = [((i + 0.5) / kills, "kill engine") for i in range(kills)]
    events += [((i + 0.3) / redis, "restart redis") for i in range(redis)]
    events += [((i + 0.7) / asterisk, "restart asterisk") for i in range(asterisk)]
    return sorted((round(f * 0.9 * duration_s, 1), what) for f, what in events)


def callers_at_seats(trace: Path) -> set[str]:
    """Caller numbers in the INVITEs the seats' phones received."""
    text = trace.read_text(errors="replace") if trace.exists() else ""
    return set(re.findall(r"^INVITE .*?\n(?:.*\n)*?From:[^\n]*?<sip:(139\d+)@", text, re.M))


def sipp_totals(stats: Path) -> tuple[int, int, int]:
    """(created, successful, failed) from sipp's -trace_stat CSV."""
    lines = stats.read_text(errors="replace").strip().splitlines() if stats.exists() else []
    if len(lines) < 2:
        return 0, 0, 0
    head, last = lines[0].split(";"), lines[-1].split(";")
    row = dict(zip(head, last, strict=False))
    return (int(row.get("TotalCallCreated", 0)), int(row.get("SuccessfulCall(C)", 0)),
            int(row.get("FailedCall(C)", 0)))  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="hotline-soak-"))
    work = base / "work"
    work.mkdir()
    off = args.port_offset
    duration = args.minutes * 60
    redis_server = RedisServer(base / "redis", 6890 + off, secrets.token_urlsafe(16))
    redis_server.start()
    settings = box_settings(
        base,
        redis_server.url,
        seats_file(base / "seats.toml", args.seats),
        "hotline-soak:acd:",
        sip_port=7060 + off,
        web_port=9545 + off,
        rtp=(18000 + 2 * off, 19999 + 2 * off),
        queue_announce_interval_s=60.0,
    )
    seats = load_seats(settings.seats_file)
    print(f"soak: {args.minutes} min, {args.seats} seats, {args.rate} calls/s, in {base}")
    asterisk = provision_asterisk(settings, load_menu(settings.menu_file), seats)
    asterisk.start()
    engine = EngineProcess(settings, base / "engine.log")
    processes: list[asyncio.subprocess.Process] = []
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    acd = Acd(client, seats, prefix=settings.acd_prefix)
    try:
        engine.start()
        await engine.ready()
        uas_port = free_udp_port()
        trace = work / "seats_messages.log"
        uas = work / "seats.xml"
        uas.write_text(uas_scenario(True, 500, args.talk * 1000), encoding="ISO-8859-1")
        processes.append(await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(uas), "-i", "127.0.0.1", "-p", str(uas_port), "-mi", "127.0.0.1",
            "-mp", str(free_udp_port() & ~1), "-nostdin", "-trace_msg", "-message_file",
            str(trace), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        ))  # fmt: skip

        async def register_all() -> None:
            for seat in seats.seats:
                password = stored_secret(settings.data_dir, f"seat-{seat.extension}")
                await register(work, seat.extension, password, sip_port=settings.sip_port,
                               contact_port=uas_port, expires=3600)  # fmt: skip

        await register_all()
        for seat in seats.seats:
            await acd.login(seat.extension, "2468")
        per_queue = args.rate / len(QUEUE_KEYS)
        calls = max(1, round(per_queue * duration))
        stats = {key: work / f"citizens-{key}.csv" for key in QUEUE_KEYS}
        for key in QUEUE_KEYS:
            processes.append(await asyncio.create_subprocess_exec(
                "sipp", f"127.0.0.1:{settings.sip_port}", "-sf", str(citizens_scenario(work, key)),
                "-s", settings.hotline_number, "-r", f"{per_queue:.3f}", "-m", str(calls),
                "-l", "300", "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
                "-mp", str(free_udp_port() & ~1), "-nostdin", "-trace_stat", "-stf",
                str(stats[key]), "-fd", "5",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            ))  # fmt: skip
        started = time.monotonic()
        for at, what in schedule(duration, args.kills, args.redis_restarts, args.asterisk_restarts):
            await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
            t0 = time.monotonic()
            if what == "kill engine":
                engine.kill()
                engine.start()
                await engine.ready()
            elif what == "restart redis":
                await asyncio.to_thread(redis_server.stop)
                await asyncio.to_thread(redis_server.start)
                await client.connection_pool.disconnect()  # the old connections died with it
            else:
                await asyncio.to_thread(asterisk.stop)
                await asyncio.to_thread(asterisk.start)
                await register_all()
            print(f"  {at:6.1f} s  {what} (back in {time.monotonic() - t0:.1f} s)", flush=True)
        citizens = processes[1:]
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in citizens)), duration + 300)
        except TimeoutError:
            print("  citizens' sipp still running 5 min after the end: stopped")
        await asyncio.sleep(15)  # the last wrap-ups and drafts
        messages = asterisk.root / "var" / "log" / "asterisk" / "messages.log"
        await report(settings, acd, messages, trace, stats)
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
                await process.wait()
        engine.stop()
        await client.aclose()
        asterisk.stop()
        asterisk.unmount()
        redis_server.stop()


def stored(settings: Settings, asterisk_log: Path) -> tuple[int, dict[str, object], set[str]]:
    """(native fallback entries, call record end by caller, work orders' caller phones)."""
    log = asterisk_log.read_text(errors="replace") if asterisk_log.exists() else ""
    db = sqlite3.connect(settings.data_dir / "hotline.db")
    try:
        records = dict(db.execute(
            "SELECT caller_number, ended_at FROM call_records WHERE caller_number LIKE '139%'"
        ).fetchall())  # fmt: skip
        orders = {row[0] for row in db.execute("SELECT caller_phone FROM work_orders")}
    finally:
        db.close()
    return log.count("engine ACD unreachable"), records, orders


async def report(
    settings: Settings, acd: Acd, asterisk_log: Path, trace: Path, stats: dict[str, Path]
) -> None:
    totals = [sipp_totals(path) for path in stats.values()]
    placed = sum(t[0] for t in totals)
    reached = await asyncio.to_thread(callers_at_seats, trace)
    fallback, records, orders = await asyncio.to_thread(stored, settings, asterisk_log)
    stuck = []
    for seat in acd.seats.seats:
        status = await acd.seat(seat.extension)
        if status.state.value in {"ringing", "on_call", "paused"}:
            stuck.append(f"{seat.extension}:{status.state.value}/{status.reason or '-'}")
    ok, failed = sum(t[1] for t in totals), sum(t[2] for t in totals)
    print(f"calls placed:                 {placed}")
    print(f"reached a human:              {len(reached)} (native fallback entered {fallback}x)")
    print(f"lost:                         {placed - len(reached)}")
    print(f"sipp calls ended well/failed: {ok}/{failed}")
    print(f"call records missing:         {max(0, placed - len(records))}")
    print(f"call records left open:       {sum(1 for ended in records.values() if ended is None)}")
    print(f"work orders missing:          {len(reached - orders)} (of {len(reached)} connected)")
    print(f"seats stuck:                  {len(stuck)} {' '.join(stuck)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seats", type=int, default=40)
    parser.add_argument("--rate", type=float, default=1.2, help="citizen calls per second")
    parser.add_argument("--talk", type=int, default=20, help="seconds a seat talks")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--redis-restarts", type=int, default=2)
    parser.add_argument("--asterisk-restarts", type=int, default=1)
    parser.add_argument("--port-offset", type=int, default=0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (Asterisk runs in a chroot)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
