"""Benchmark of the ACD's routing decisions against the real Redis (prints figures).

1,000 seats, 40 skills, 10,000 waiting callers. Two figures:

* **batch**: every seat turns available at once; ``dispatch_once`` matches as many callers
  as it can in atomic steps of ``--batch`` assignments: decisions per second.
* **steady state**: seats free up one at a time (a call ends, wrap-up 0); each
  ``dispatch_once`` is one atomic step that must pick the caller and the seat among 10,000
  waiting (the queue is topped up to stay at 10,000): p50/p99 latency of that decision.

Beside them, GET measured in the same run with one client, as the decisions above are made
one at a time by one client, over the same transport (TCP, or a Unix socket for a
``unix:///path`` URL): through the same client as the decisions (redis-py), and with
``redis-benchmark -q -n 100000 -c 1 -t set,get``; the decisions per second as a percentage
of each. What one steady decision costs inside Redis (its Lua call's commands and
microseconds, from INFO commandstats) beside one GET's microseconds there gives the rate
redis-benchmark's own client would reach for decisions (a projection: redis-benchmark cannot
make a decision that frees a seat first). The steady state is also measured with each
decision sent through a plain connection (no asyncio, no pool; ``Acd.dispatch_command``),
beside GET through that connection: one GET in each round (the GET and the decision first
in turn), and GETs back to back as redis-benchmark sends them.

    python -m bench.acd_routing [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import statistics
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import urlparse

import redis as redis_sync
from redis.asyncio import Redis

from agents.seats import Seat, SeatsFile, Skill
from queueing.acd import Acd

SEATS, SKILLS, CALLERS = 1000, 40, 10_000


def build_seats(rng: random.Random) -> SeatsFile:
    skills = tuple(Skill(f"skill{n:02d}", f"Skill {n}") for n in range(SKILLS))
    seats = []
    for n in range(SEATS):
        held = rng.sample(range(SKILLS), rng.randint(2, 5))
        seats.append(
            Seat(
                extension=f"{10000 + n}",
                name=f"Seat {n}",
                # a primary skill at a strong level, the others anywhere in 1-10
                skills=tuple(
                    (f"skill{s:02d}", rng.randint(1, 3) if i == 0 else rng.randint(1, 10))
                    for i, s in enumerate(held)
                ),
                languages=("zh", "en") if n % 10 == 0 else ("zh",),
                pin_hash="plain$1234",
            )
        )
    return SeatsFile(skills, ("zh", "en"), tuple(seats), wrap_up_s=0, ring_timeout_s=600)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def enqueue_one(acd: Acd, rng: random.Random, n: int) -> None:
    language = "en" if rng.random() < 0.05 else "zh"
    await acd.enqueue(
        f"call-{n}",
        f"skill{rng.randrange(SKILLS):02d}",
        caller=f"138{n:08d}",
        language=language,
        priority=rng.choice((0, 0, 0, 1, 2)),
    )


async def run(url: str, steady_rounds: int, batch: int) -> dict[str, float]:
    rng = random.Random(12345)
    redis = Redis.from_url(url)
    prefix = f"bench-acd-{uuid.uuid4().hex[:8]}:"
    acd = Acd(redis, build_seats(rng), prefix=prefix, timeout_s=30)
    figures: dict[str, float] = {}
    try:
        await acd.register_seats()
        started = time.perf_counter()
        for n in range(CALLERS):
            await enqueue_one(acd, rng, n)
        figures["enqueue_per_s"] = CALLERS / (time.perf_counter() - started)
        for seat in acd.seats.seats:
            await acd.login(seat.extension, "1234")

        # batch: all 1,000 seats available at once
        latencies, assigned = [], []
        started = time.perf_counter()
        while True:
            t = time.perf_counter()
            got = await acd.dispatch_once(limit=batch)
            latencies.append(time.perf_counter() - t)
            if not got:
                break
            assigned.extend(got)
        elapsed = time.perf_counter() - started
        figures["batch_decisions"] = len(assigned)
        figures["batch_decisions_per_s"] = len(assigned) / elapsed
        figures["batch_step_p50_ms"] = statistics.median(latencies) * 1000
        for a in assigned:
            await acd.answered(a.call_id)
        on_call = [a.call_id for a in assigned]
        next_call = CALLERS
        for _ in assigned:  # back to 10,000 waiting
            await enqueue_one(acd, rng, next_call)
            next_call += 1

        # steady state: one seat frees up, one decision
        latencies, decided = [], 0
        commands, server_us = 0, 0.0
        for _ in range(steady_rounds):
            ending = on_call.pop(rng.randrange(len(on_call)))
            await acd.hangup(ending)
            await enqueue_one(acd, rng, next_call)  # keep 10,000 waiting
            next_call += 1
            before = await command_stats(redis)
            t = time.perf_counter()
            got = await acd.dispatch_once(limit=1)
            latencies.append(time.perf_counter() - t)
            inside, us = lua_cost(before, await command_stats(redis))
            commands, server_us = commands + inside, server_us + us
            for a in got:
                decided += 1
                await acd.answered(a.call_id)
                on_call.append(a.call_id)
        # the same, each decision (and then as many GETs) through a plain connection: no
        # asyncio, no pool, as close to redis-benchmark's client as Python gets
        plain = redis_sync.ConnectionPool.from_url(url).make_connection()
        plain.connect()
        plain.send_command("SET", f"{prefix}get", "xxx")  # what redis-benchmark GETs: 3 bytes
        plain.read_response()
        get = ["GET", f"{prefix}get"]

        def timed(command: list[Any]) -> tuple[float, Any]:
            t = time.perf_counter()
            plain.send_command(*command)
            reply = plain.read_response()
            return time.perf_counter() - t, reply

        plain_latencies, between, plain_decided = [], [], 0
        for n in range(steady_rounds):
            ending = on_call.pop(rng.randrange(len(on_call)))
            await acd.hangup(ending)
            await enqueue_one(acd, rng, next_call)
            next_call += 1
            decide = acd.dispatch_command(limit=1)
            # a GET beside each decision, each first in turn after the round's other calls
            # (whichever comes first finds Redis and the CPU caches colder)
            if n % 2:
                get_s, _ = timed(get)
                took, rows = timed(decide)
            else:
                took, rows = timed(decide)
                get_s, _ = timed(get)
            plain_latencies.append(took)
            between.append(get_s)
            for row in rows:
                plain_decided += 1
                call_id = row[0].decode()
                await acd.answered(call_id)
                on_call.append(call_id)
        get_latencies = [timed(get)[0] for _ in range(steady_rounds)]  # back to back
        plain.disconnect()
        figures["plain_decided"] = plain_decided
        figures["plain_decisions_per_s"] = plain_decided / sum(plain_latencies)
        figures["plain_p50_ms"] = percentile(plain_latencies, 0.50) * 1000
        figures["plain_p99_ms"] = percentile(plain_latencies, 0.99) * 1000
        figures["plain_get_per_s"] = len(get_latencies) / sum(get_latencies)
        figures["plain_get_p50_ms"] = percentile(get_latencies, 0.50) * 1000
        figures["between_get_per_s"] = len(between) / sum(between)
        figures["between_get_p50_ms"] = percentile(between, 0.50) * 1000

        # a new caller finds a free seat: three calls before (priority, enqueue, routing
        # step) against Acd.enter's one, alternately, each after a seat freed up
        paths: dict[str, list[float]] = {"three calls": [], "enter": []}
        for n in range(2 * steady_rounds):
            ending = on_call.pop(rng.randrange(len(on_call)))
            await acd.hangup(ending)
            call_id, number = f"call-{next_call}", f"139{next_call:08d}"
            next_call += 1
            t = time.perf_counter()
            if n % 2:
                got = (await acd.enter(call_id, "skill00", caller=number)).assignments
                paths["enter"].append(time.perf_counter() - t)
            else:
                prio = await acd.caller_priority(number)
                await acd.enqueue(call_id, "skill00", caller=number, priority=prio)
                got = await acd.dispatch_once()
                paths["three calls"].append(time.perf_counter() - t)
            for a in got:
                await acd.answered(a.call_id)
                on_call.append(a.call_id)
        for name, values in paths.items():
            figures[f"entry_{name}_p50_ms"] = percentile(values, 0.50) * 1000
            figures[f"entry_{name}_p99_ms"] = percentile(values, 0.99) * 1000
        snap = await acd.snapshot()
        figures["steady_rounds"] = steady_rounds
        figures["steady_decisions"] = decided
        figures["steady_p50_ms"] = percentile(latencies, 0.50) * 1000
        figures["steady_p99_ms"] = percentile(latencies, 0.99) * 1000
        figures["steady_decisions_per_s"] = decided / sum(latencies)
        figures["waiting_at_end"] = snap.waiting
        figures["commands_per_decision"] = commands / steady_rounds
        figures["server_us_per_decision"] = server_us / steady_rounds
        figures.update(await same_client_get(redis, prefix, steady_rounds))
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=2000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i : i + 500])
        await redis.aclose()
    return figures


async def same_client_get(redis: Redis, prefix: str, rounds: int) -> dict[str, float]:
    """GET through the client the decisions above went through (redis-py, one connection,
    one call at a time): its rate, and what one GET costs inside Redis."""
    key = f"{prefix}get"
    latencies = []
    before = await command_stats(redis)
    for _ in range(rounds):
        t = time.perf_counter()
        await redis.get(key)
        latencies.append(time.perf_counter() - t)
    after = await command_stats(redis)
    calls = after["cmdstat_get"][0] - before.get("cmdstat_get", (0, 0.0))[0]
    us = after["cmdstat_get"][1] - before.get("cmdstat_get", (0, 0.0))[1]
    return {
        "client_get_per_s": len(latencies) / sum(latencies),
        "client_get_p50_ms": percentile(latencies, 0.50) * 1000,
        "server_us_per_get": us / calls,
    }


async def command_stats(redis: Redis) -> dict[str, tuple[int, float]]:
    """Redis's INFO commandstats: command -> (calls, usec)."""
    stats = await redis.info("commandstats")
    return {name: (int(v["calls"]), float(v["usec"])) for name, v in stats.items()}


def lua_cost(
    before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]
) -> tuple[int, float]:
    """(Redis commands run inside the scripts, microseconds Redis spent on the scripts)
    between two command_stats (the INFO calls themselves left out)."""
    inside = sum(
        calls - before.get(name, (0, 0.0))[0]
        for name, (calls, _us) in after.items()
        if name not in {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_info"}
    )
    script = after.get("cmdstat_evalsha", (0, 0.0))[1] - before.get("cmdstat_evalsha", (0, 0.0))[1]
    return inside, script


def redis_benchmark(url: str, clients: int) -> dict[str, float] | None:
    tool = shutil.which("redis-benchmark")
    if tool is None:
        print("redis-benchmark: not installed (Debian package redis-tools); no ratio")
        return None
    parsed = urlparse(url)
    # the transport the decisions used: a Unix socket (unix:///path) or TCP
    if parsed.scheme == "unix":
        where = ["-s", parsed.path]
    else:
        where = ["-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    out = subprocess.run(
        [tool, *where, "-q", "-n", "100000", "-c", str(clients), "-t", "set,get"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = {}
    for line in out.replace("\r", "\n").splitlines():
        m = re.match(r"^(SET|GET): ([\d.]+) requests per second", line.strip())
        if m:
            found[m.group(1)] = float(m.group(2))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--steady-rounds", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    print(f"ACD routing: {SEATS} seats, {SKILLS} skills, {CALLERS} waiting callers")
    figures = asyncio.run(run(args.redis, args.steady_rounds, args.batch))
    print(f"  enqueue                    {figures['enqueue_per_s']:10.0f} callers/s")
    print(
        f"  batch dispatch             {figures['batch_decisions_per_s']:10.0f} decisions/s "
        f"({figures['batch_decisions']:.0f} assignments, step of {args.batch}: "
        f"p50 {figures['batch_step_p50_ms']:.2f} ms)"
    )
    print(
        f"  steady state (1 seat free) {figures['steady_decisions_per_s']:10.0f} decisions/s "
        f"({figures['steady_decisions']:.0f}/{figures['steady_rounds']:.0f} rounds decided)"
    )
    print(
        f"  decision latency           p50 {figures['steady_p50_ms']:.2f} ms, "
        f"p99 {figures['steady_p99_ms']:.2f} ms  ({figures['waiting_at_end']:.0f} waiting)"
    )
    for name in ("three calls", "enter"):
        p50, p99 = figures[f"entry_{name}_p50_ms"], figures[f"entry_{name}_p99_ms"]
        print(f"  new caller -> decision     {name:11}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    steady = figures["steady_decisions_per_s"]
    print(
        f"  one decision               1 Lua call, {figures['commands_per_decision']:.0f} Redis "
        f"commands inside, {figures['server_us_per_decision']:.0f} us of Redis time "
        f"(one GET: {figures['server_us_per_get']:.1f} us)"
    )
    if figures["steady_decisions"] < figures["steady_rounds"]:
        print("  !! some steady rounds decided nothing: the figures above are not decisions")
    # the decisions above come from one client, one call at a time: so do both GET ceilings
    print(
        f"  GET, same client (redis-py) {figures['client_get_per_s']:9.0f} requests/s "
        f"(p50 {figures['client_get_p50_ms']:.2f} ms): steady decisions "
        f"{100 * steady / figures['client_get_per_s']:.1f} % of it"
    )
    plain = figures["plain_decisions_per_s"]
    print(
        f"  plain connection: steady   {plain:10.0f} decisions/s "
        f"({figures['plain_decided']:.0f}/{figures['steady_rounds']:.0f} rounds decided, "
        f"p50 {figures['plain_p50_ms']:.3f} ms, p99 {figures['plain_p99_ms']:.3f} ms)"
    )
    for name, label in (("between", "beside the decisions"), ("plain", "back to back")):
        rate = figures[f"{name}_get_per_s"]
        print(
            f"    GET {label:20} {rate:10.0f} requests/s (p50 "
            f"{figures[f'{name}_get_p50_ms']:.3f} ms): decisions {100 * plain / rate:.1f} % of it"
        )
    ceiling = redis_benchmark(args.redis, clients=1)
    if ceiling:
        for op, rate in sorted(ceiling.items()):
            print(f"  redis-benchmark -c 1 {op}   {rate:10.0f} requests/s")
        get = ceiling.get("GET") or max(ceiling.values())
        print(
            f"  % of redis-benchmark GET (same client count, 1): batch "
            f"{100 * figures['batch_decisions_per_s'] / get:.1f} %, steady "
            f"{100 * steady / get:.1f} %, plain connection {100 * plain / get:.1f} % (goal >= "
            f"30 %); the clients' own GET: redis-py {100 * figures['client_get_per_s'] / get:.1f}"
            f" %, plain connection {100 * figures['plain_get_per_s'] / get:.1f} %"
        )
        # inside Redis: a decision's Lua call against one GET's round trip as redis-benchmark
        # sees it (its client costs next to nothing): the rate a C client could reach
        round_trip_us = 1e6 / get
        extra_us = figures["server_us_per_decision"] - figures["server_us_per_get"]
        projected_us = round_trip_us + extra_us
        print(
            f"  projected for redis-benchmark's client: 1 / ({round_trip_us:.0f} us GET round "
            f"trip + {extra_us:.0f} us more in Redis) = {1e6 / projected_us:.0f} decisions/s, "
            f"{100 * round_trip_us / projected_us:.1f} % of GET"
        )


if __name__ == "__main__":
    main()
