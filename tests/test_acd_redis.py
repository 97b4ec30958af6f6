"""The ACD's Lua against the test Redis (``conftest.TEST_REDIS_URL``); each test under its own
key prefix."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import TEST_REDIS_URL, drop_keys
from redis.asyncio import Redis

from agents.seats import SeatsFile, load_seats, parse_seats
from agents.states import SeatState, SeatStateError
from queueing.acd import Acd
from queueing.events import read_events
from queueing.models import CallKind, LoginRefused, UnknownSkill
from queueing.rules import RelaxStep, RoutingRules

REPO = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000.0  # injected "now": no sleeping

SEATS = """
languages = ["zh", "en"]
[defaults]
wrap_up_s = 10
ring_timeout_s = 15
[skills.report]
[skills.consultation]
wrap_up_s = 0
[skills.english]
[[seat]]
extension = "8001"
pin = "1111"
languages = ["zh"]
skills = { report = 1, consultation = 5 }
[[seat]]
extension = "8002"
pin = "2222"
languages = ["zh"]
skills = { report = 2 }
[[seat]]
extension = "8003"
pin = "3333"
languages = ["zh"]
skills = { report = 8 }
[[seat]]
extension = "8004"
pin = "4444"
languages = ["zh", "en"]
skills = { english = 1, consultation = 3 }
"""


@pytest.fixture
def seats() -> SeatsFile:
    return parse_seats(SEATS)


@pytest.fixture
async def acd(redis: Redis, prefix: str, seats: SeatsFile) -> Acd:
    rules = RoutingRules(
        steps=(
            RelaxStep(after_s=0, max_level=3),
            RelaxStep(after_s=60, max_level=10),
            RelaxStep(after_s=120, max_level=10, any_skill=True),
        )
    )
    acd = Acd(redis, seats, prefix=prefix, rules=rules)
    await acd.register_seats(now=T0)
    return acd


async def _login(acd: Acd, *pairs: tuple[str, float]) -> None:
    pins = {"8001": "1111", "8002": "2222", "8003": "3333", "8004": "4444"}
    for ext, at in pairs:
        await acd.login(ext, pins[ext], now=at)


async def test_each_call_goes_to_a_seat_with_the_skill(acd: Acd) -> None:
    await _login(acd, ("8001", T0), ("8004", T0))
    await acd.enqueue("c-eng", "english", language="en", now=T0 + 1)
    await acd.enqueue("c-rep", "report", now=T0 + 2)
    got = {a.call_id: a for a in await acd.dispatch_once(now=T0 + 3)}
    assert got["c-eng"].seat == "8004" and got["c-rep"].seat == "8001"
    assert got["c-rep"].level == 1 and got["c-rep"].ring_until == T0 + 3 + 15
    assert (await acd.seat("8001")).state is SeatState.RINGING


async def test_longest_idle_seat_first(acd: Acd) -> None:
    await _login(acd, ("8002", T0 + 5), ("8001", T0 + 1))  # same band (1-3): 8001 idle longer
    await acd.enqueue("c1", "report", now=T0 + 10)
    [a] = await acd.dispatch_once(now=T0 + 11)
    assert a.seat == "8001"
    await acd.enqueue("c2", "report", now=T0 + 12)
    [b] = await acd.dispatch_once(now=T0 + 13)
    assert b.seat == "8002"


async def test_best_band_before_longer_idle_weaker_band(acd: Acd) -> None:
    await acd.register_seats(
        parse_seats(SEATS.replace("report = 2", "report = 5")), now=T0
    )  # 8002 now level 5: band 4-6
    await _login(acd, ("8002", T0), ("8001", T0 + 30))
    await acd.enqueue("c1", "report", now=T0 + 40)
    [a] = await acd.dispatch_once(now=T0 + 41)
    assert a.seat == "8001"


async def test_priority_beats_fifo_and_fifo_within_priority(acd: Acd) -> None:
    await acd.enqueue("old", "report", now=T0)
    await acd.enqueue("elderly", "report", priority=2, now=T0 + 1)
    await acd.enqueue("later", "report", now=T0 + 2)
    await acd.enqueue("repeat", "report", priority=1, now=T0 + 3)
    assert [await acd.position(c) for c in ("elderly", "repeat", "old", "later")] == [1, 2, 3, 4]
    await _login(acd, ("8001", T0))
    order = []
    for i in range(4):
        [a] = await acd.dispatch_once(now=T0 + 10 + i)
        order.append(a.call_id)
        await acd.answered(a.call_id, now=T0 + 10 + i)
        await acd.hangup(a.call_id, now=T0 + 10 + i)
        await acd.end_wrap_up("8001", now=T0 + 10 + i)
    assert order == ["elderly", "repeat", "old", "later"]


async def test_relaxation_after_the_configured_wait(acd: Acd) -> None:
    await _login(acd, ("8003", T0))  # level 8 in report: outside the first step (1-3)
    await acd.enqueue("c1", "report", now=T0)
    assert await acd.dispatch_once(now=T0 + 59) == []
    [a] = await acd.dispatch_once(now=T0 + 60)
    assert (a.seat, a.relax_step, a.level) == ("8003", 1, 8)


async def test_any_seat_with_the_language_after_the_last_step(acd: Acd) -> None:
    await _login(acd, ("8004", T0))  # speaks zh and en, no report skill
    await acd.enqueue("c1", "report", now=T0)
    assert await acd.dispatch_once(now=T0 + 119) == []
    [a] = await acd.dispatch_once(now=T0 + 120)
    assert (a.seat, a.level) == ("8004", 0)
    await acd.enqueue("c-en", "report", language="en", now=T0)
    await _login(acd, ("8001", T0))  # holds report but no English: never relaxed
    assert await acd.dispatch_once(now=T0 + 500) == []


async def test_paused_seat_gets_nothing(acd: Acd) -> None:
    await _login(acd, ("8001", T0))
    await acd.pause("8001", "lunch", now=T0 + 1)
    await acd.enqueue("c1", "report", now=T0 + 2)
    assert await acd.dispatch_once(now=T0 + 500) == []
    status = await acd.seat("8001")
    assert (status.state, status.reason) == (SeatState.PAUSED, "lunch")
    await acd.resume("8001", now=T0 + 501)
    [a] = await acd.dispatch_once(now=T0 + 502)
    assert a.seat == "8001"


async def test_a_seat_on_a_call_of_its_own_is_offered_nothing_until_it_hangs_up(
    acd: Acd,
) -> None:
    """Issue 8 item 4: a seat that resumes with *24 is still on the *24 call."""
    await _login(acd, ("8001", T0), ("8002", T0 + 1))
    await acd.pause("8001", "break", now=T0 + 2)
    await acd.enqueue("c1", "report", now=T0 + 3)
    await acd.channel_up("8001", "fc-24", now=T0 + 4)  # 8001 dials *24 ...
    await acd.resume("8001", now=T0 + 5)  # ... and resumes during that call
    await acd.channel_up("8002", "fc-23", now=T0 + 5)  # 8002, available, dials *23
    assert await acd.dispatch_once(now=T0 + 6) == []
    assert (await acd.seat("8001")).state is SeatState.AVAILABLE
    assert await acd.seat_channels() == {"8001": {"fc-24"}, "8002": {"fc-23"}}
    assert await acd.channel_down("8001", "other", now=T0 + 7) is False  # not its channel
    assert await acd.channel_down("8001", "fc-24", now=T0 + 8) is True
    [a] = await acd.dispatch_once(now=T0 + 9)
    assert (a.call_id, a.seat) == ("c1", "8001")
    # a seat whose call ends while one of its channels lives stays out until it hangs up
    await acd.answered("c1", now=T0 + 10)
    await acd.channel_up("8001", "leg-c1", now=T0 + 10)
    await acd.hangup("c1", now=T0 + 20)  # wrap-up 10 s
    await acd.enqueue("c2", "report", now=T0 + 21)
    assert await acd.channel_down("8002", "fc-23", now=T0 + 21) is True
    [b] = await acd.dispatch_once(now=T0 + 22)
    assert b.seat == "8002"
    await acd.enqueue("c3", "report", now=T0 + 23)
    assert await acd.dispatch_once(now=T0 + 40) == []  # wrap-up over, its leg still up
    assert await acd.channel_down("8001", "leg-c1", now=T0 + 41) is True
    [c] = await acd.dispatch_once(now=T0 + 42)
    assert (c.call_id, c.seat) == ("c3", "8001")


async def test_wrap_up_respected_until_it_expires(acd: Acd) -> None:
    await _login(acd, ("8001", T0))
    await acd.enqueue("c1", "report", now=T0)
    await acd.enqueue("c2", "report", now=T0 + 1)
    [a] = await acd.dispatch_once(now=T0 + 2)
    await acd.answered(a.call_id, now=T0 + 3)
    done = await acd.hangup(a.call_id, now=T0 + 63)
    assert (done.outcome, done.seat, done.duration_s) == ("completed", "8001", 60.0)
    status = await acd.seat("8001")
    assert status.state is SeatState.WRAP_UP and status.wrap_until == T0 + 73  # report: 10 s
    assert await acd.dispatch_once(now=T0 + 72.9) == []
    [b] = await acd.dispatch_once(now=T0 + 73)
    assert (b.call_id, b.seat) == ("c2", "8001")


async def test_wrap_up_per_skill(acd: Acd) -> None:
    await _login(acd, ("8004", T0))
    await acd.enqueue("c1", "consultation", now=T0)
    [a] = await acd.dispatch_once(now=T0 + 1)
    await acd.answered("c1", now=T0 + 2)
    await acd.hangup("c1", now=T0 + 3)  # consultation: wrap_up_s = 0
    assert (await acd.seat("8004")).state is SeatState.AVAILABLE


async def test_rona_requeues_at_head_and_pauses_the_seat(acd: Acd) -> None:
    await _login(acd, ("8001", T0), ("8002", T0 + 1))
    await acd.enqueue("first", "report", now=T0 + 2)
    [a] = await acd.dispatch_once(now=T0 + 3)
    await acd.pause("8002", "break", now=T0 + 3)
    await acd.enqueue("second", "report", now=T0 + 4)
    assert a.seat == "8001"
    assert await acd.expire_rings(now=T0 + 17.9) == []
    [r] = await acd.expire_rings(now=T0 + 18)
    assert (r.call_id, r.seat) == ("first", "8001")
    assert await acd.position("first") == 1 and await acd.position("second") == 2
    status = await acd.seat("8001")
    assert (status.state, status.reason) == (SeatState.PAUSED, "no-answer")
    await acd.resume("8002", now=T0 + 20)
    [b] = await acd.dispatch_once(now=T0 + 21)
    assert (b.call_id, b.seat) == ("first", "8002")


async def test_seat_unregistered_mid_ring_sends_call_back(acd: Acd) -> None:
    await _login(acd, ("8001", T0))
    await acd.enqueue("c1", "report", now=T0)
    await acd.dispatch_once(now=T0 + 1)
    requeued = await acd.unregistered("8001", now=T0 + 2)
    assert requeued is not None and await acd.position("c1") == 1
    assert (await acd.seat("8001")).reason == "unregistered"
    await acd.registered("8001", now=T0 + 3)
    assert (await acd.seat("8001")).state is SeatState.AVAILABLE


async def test_caller_hangs_up_while_ringing_releases_the_seat(acd: Acd) -> None:
    await _login(acd, ("8001", T0))
    await acd.enqueue("c1", "report", now=T0 + 1)
    await acd.dispatch_once(now=T0 + 2)
    gone = await acd.hangup("c1", now=T0 + 5)
    assert (gone.outcome, gone.seat, gone.duration_s) == ("abandoned", "8001", 4.0)
    status = await acd.seat("8001")
    assert status.state is SeatState.AVAILABLE and status.idle_since == T0  # keeps its place


async def test_abandon_while_waiting(acd: Acd) -> None:
    await acd.enqueue("c1", "report", now=T0)
    await acd.enqueue("c2", "report", now=T0 + 1)
    gone = await acd.cancel("c1", now=T0 + 30)
    assert (gone.outcome, gone.duration_s) == ("abandoned", 30.0)
    assert await acd.position("c1") is None and await acd.position("c2") == 1


async def test_callback_keeps_its_place(acd: Acd) -> None:
    await acd.enqueue("a", "report", caller="13800000001", now=T0)
    await acd.enqueue("b", "report", caller="13800000002", now=T0 + 1)
    await acd.enqueue("c", "report", caller="13800000003", now=T0 + 2)
    assert await acd.to_callback("b", "13800000002", now=T0 + 40) == 2
    await acd.enqueue("d", "report", now=T0 + 41)
    assert [await acd.position(x) for x in "abcd"] == [1, 2, 3, 4]
    assert (await acd.snapshot(now=T0 + 42)).queues[0].callbacks == 1
    kept = await acd.hangup("b", now=T0 + 41)  # the citizen hangs up, as agreed
    assert kept.outcome == "kept" and await acd.position("b") == 2
    await _login(acd, ("8001", T0 + 50), ("8002", T0 + 51))
    got = await acd.dispatch_once(now=T0 + 60)
    assert [(x.call_id, x.kind) for x in got] == [("a", CallKind.VOICE), ("b", CallKind.CALLBACK)]
    assert got[1].caller == "13800000002"  # the number to call back


async def test_cancelled_callback_leaves_the_queue(acd: Acd) -> None:
    await acd.enqueue("a", "report", now=T0)
    await acd.to_callback("a", "13800000001", now=T0 + 5)
    gone = await acd.cancel("a", now=T0 + 9)
    assert (gone.outcome, gone.duration_s) == ("abandoned", 9.0)
    assert await acd.position("a") is None


async def test_a_callback_not_reached_frees_the_seat_at_once(
    acd: Acd, redis: Redis, prefix: str
) -> None:
    """The seat answered a callback and dialled the citizen, who did not answer: the seat is
    available at once (report's wrap-up is 10 s) and takes the next callback, the moving AHT
    does not move, and the log says 'unreached', not 'complete'. A citizen reached: the call
    completes as any call (wrap-up, AHT)."""
    await _login(acd, ("8001", T0))
    await acd.enqueue("cb", "report", caller="13800000001", now=T0)
    await acd.to_callback("cb", "13800000001", now=T0 + 1)
    await acd.enqueue("cb2", "report", caller="13800000002", now=T0 + 2)
    await acd.to_callback("cb2", "13800000002", now=T0 + 3)
    [a] = await acd.dispatch_once(now=T0 + 4)
    await acd.answered(a.call_id, now=T0 + 5)
    gone = await acd.not_reached(a.call_id, now=T0 + 35)  # the citizen's phone rang 30 s
    assert (gone.outcome, gone.seat, gone.duration_s) == ("unreached", "8001", 30.0)
    status = await acd.seat("8001")
    assert status.state is SeatState.AVAILABLE and status.idle_since == T0 + 35
    assert await redis.hget(f"{prefix}aht", "report") is None
    [b] = await acd.dispatch_once(now=T0 + 35)  # offered the next callback at once
    assert (b.call_id, b.seat) == ("cb2", "8001")
    await acd.answered("cb2", now=T0 + 36)
    done = await acd.hangup("cb2", now=T0 + 96)  # this citizen answered: a minute's talk
    assert (done.outcome, done.duration_s) == ("completed", 60.0)
    assert (await acd.seat("8001")).state is SeatState.WRAP_UP
    assert float(await redis.hget(f"{prefix}aht", "report") or 0) == 70_000  # talk + wrap-up
    kinds = [(e.call_id, e.type) for e in await read_events(redis, prefix)
             if e.type in ("connect", "complete", "unreached")]  # fmt: skip
    assert kinds == [("cb", "connect"), ("cb", "unreached"), ("cb2", "connect"),
                     ("cb2", "complete")]  # fmt: skip


async def test_not_reached_applies_to_callbacks_only(acd: Acd, redis: Redis) -> None:
    """A voice caller is always reached: released so, it completes with its wrap-up."""
    await _login(acd, ("8001", T0))
    await acd.enqueue("v", "report", caller="138", now=T0)
    await acd.dispatch_once(now=T0 + 1)
    await acd.answered("v", now=T0 + 2)
    done = await acd.not_reached("v", now=T0 + 62)
    assert (done.outcome, done.duration_s) == ("completed", 60.0)
    assert (await acd.seat("8001")).state is SeatState.WRAP_UP


async def test_login_with_wrong_pin_refused(acd: Acd) -> None:
    with pytest.raises(LoginRefused):
        await acd.login("8001", "9999", now=T0)
    assert (await acd.seat("8001")).state is SeatState.LOGGED_OUT
    await acd.login("8001", "1111", now=T0)
    with pytest.raises(SeatStateError):
        await acd.login("8001", "1111", now=T0)


async def test_hashed_pin_from_default_seats_file(redis: Redis, prefix: str) -> None:
    acd = Acd(redis, load_seats(REPO / "agents" / "seats.toml"), prefix=prefix)
    await acd.register_seats(now=T0)
    await acd.login("8001", "2468", now=T0)
    with pytest.raises(LoginRefused):
        await acd.login("8002", "2469", now=T0)


async def test_snapshot_and_estimated_wait(acd: Acd) -> None:
    await _login(acd, ("8001", T0), ("8002", T0))
    await acd.pause("8002", "break", now=T0)
    for i in range(4):
        await acd.enqueue(f"c{i}", "report", now=T0 + i)
    snap = await acd.snapshot(now=T0 + 100)
    report = snap.queues[0]
    assert (report.skill, report.waiting, report.longest_wait_s, report.staffed) == (
        "report",
        4,
        100.0,
        2,
    )
    assert snap.seats_by_state == {"available": 1, "paused": 1, "logged_out": 2}
    assert await acd.estimated_wait("c3") == 4 * 180.0 / 2


async def test_redis_loss_reregisters_seats(acd: Acd, redis: Redis, prefix: str) -> None:
    await _login(acd, ("8001", T0))
    await acd.enqueue("c1", "report", now=T0)
    await drop_keys(redis, prefix)  # what a Redis restart without persistence looks like
    assert await acd.position("c1") is None
    assert await acd.enqueue("c1", "report", now=T0 + 1) == 1  # re-registers, then enqueues
    assert (await acd.seat("8001")).state is SeatState.LOGGED_OUT
    await acd.register_seats(now=T0 + 2)  # idempotent
    await _login(acd, ("8001", T0 + 3))
    assert [a.seat for a in await acd.dispatch_once(now=T0 + 4)] == ["8001"]


async def test_event_log_records_the_call(acd: Acd, redis: Redis, prefix: str) -> None:
    await _login(acd, ("8001", T0))
    await acd.enqueue("c1", "report", caller="138", now=T0)
    await acd.dispatch_once(now=T0 + 2)
    await acd.answered("c1", now=T0 + 5)
    await acd.hangup("c1", now=T0 + 65)
    events = [e for e in await read_events(redis, prefix) if e.call_id == "c1"]
    kinds = [e.type for e in events if e.type != "seat"]
    assert kinds == ["enter", "offer", "connect", "complete"]
    connect = next(e for e in events if e.type == "connect")
    assert connect.ms == 5000 and connect.seat == "8001"


WORKER = """
import asyncio, json, sys, time
from redis.asyncio import Redis
from agents.seats import parse_seats
from queueing.acd import Acd

async def main(url, prefix, seats_text, rounds):
    redis = Redis.from_url(url)
    acd = Acd(redis, parse_seats(seats_text), prefix=prefix)
    got, idle = [], 0
    while idle < rounds:
        batch = await acd.dispatch_once(limit=3)
        idle = 0 if batch else idle + 1
        for a in batch:
            got.append([a.call_id, a.seat])
            await acd.answered(a.call_id)
            await acd.hangup(a.call_id)  # wrap-up 0: the seat is available again at once
        await asyncio.sleep(0)
    await redis.aclose()
    print(json.dumps(got))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.stdin.read(), int(sys.argv[3])))
"""


@pytest.mark.slow
async def test_two_engines_never_double_assign(redis: Redis, prefix: str) -> None:
    skills = ["report", "consultation", "business"]
    lines = ['languages = ["zh"]', "[defaults]", "wrap_up_s = 0", "ring_timeout_s = 600"]
    lines += [f"[skills.{s}]" for s in skills]
    for n in range(60):
        lines += [
            "[[seat]]",
            f'extension = "9{n:03d}"',
            'pin = "1234"',
            'languages = ["zh"]',
            f"skills = {{ {skills[n % 3]} = {1 + n % 3}, {skills[(n + 1) % 3]} = 5 }}",
        ]
    text = "\n".join(lines) + "\n"
    acd = Acd(redis, parse_seats(text), prefix=prefix)
    await acd.register_seats()
    for n in range(60):
        await acd.login(f"9{n:03d}", "1234")
    calls = 1500
    for i in range(calls):
        await acd.enqueue(f"call-{i}", skills[i % 3], caller=f"138{i:08d}", priority=i % 2)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            TEST_REDIS_URL,
            prefix,
            "20",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
        for _ in range(3)
    ]
    async with asyncio.timeout(120):
        outputs = await asyncio.gather(*(p.communicate(text.encode()) for p in procs))
    assert all(p.returncode == 0 for p in procs)
    per_engine = [json.loads(out) for out, _err in outputs]
    assert all(per_engine), "every engine should have routed some calls"
    routed = [call for engine in per_engine for call, _seat in engine]
    assert len(routed) == len(set(routed)) == calls  # no call went to two seats
    # Replay the atomic event log: a seat is never offered a call while it holds another.
    holding: dict[str, str | None] = defaultdict(lambda: None)
    offers = 0
    last = "0-0"
    while True:
        batch = await read_events(redis, prefix, last, count=5000)
        if not batch:
            break
        last = batch[-1].id
        for e in batch:
            if e.type == "offer":
                assert holding[e.seat] is None, f"seat {e.seat} offered {e.call_id} while busy"
                holding[e.seat] = e.call_id
                offers += 1
            elif e.type in {"complete", "abandon", "requeue"}:
                assert holding[e.seat] == e.call_id
                holding[e.seat] = None
    assert offers == calls


async def test_repeat_caller_and_elderly_line_rank_higher(acd: Acd) -> None:
    assert await acd.caller_priority("13800000009", now=T0) == 0
    assert await acd.caller_priority("13800000009", now=T0 + 3600) == 1  # again within 24 h
    assert await acd.caller_priority("13900000000", elderly_line=True, now=T0) == 2
    assert await acd.caller_priority("", now=T0) == 0  # anonymous: never a repeat


async def test_a_caller_enters_and_is_routed_in_one_call(acd: Acd) -> None:
    """Acd.enter: the repeat-caller priority, the queue entry and the routing step in one Lua
    call (the connector's path for every voice caller)."""
    await _login(acd, ("8002", T0))
    first = await acd.enter("c1", "report", caller="13800000009", now=T0 + 1)
    assert (first.priority, first.position) == (0, 1)
    assert [(a.call_id, a.seat, a.kind) for a in first.assignments] == [
        ("c1", "8002", CallKind.VOICE)
    ]
    again = await acd.enter("c2", "report", caller="13800000009", now=T0 + 3600)
    assert (again.priority, again.position, again.assignments) == (1, 1, [])  # all seats busy
    assert (await acd.entry("c2") or {}).get("prio") == "1"
    anonymous = await acd.enter("c3", "report", caller="anonymous", now=T0 + 3601)
    assert (anonymous.priority, anonymous.position) == (0, 2)  # behind the repeat caller
    with pytest.raises(UnknownSkill):
        await acd.enter("c4", "cooking", now=T0 + 3602)


async def test_a_consultation_of_a_queue_gets_the_seat_a_caller_would_and_holds_it(
    acd: Acd, redis: Redis, prefix: str
) -> None:
    """Seat 8001 consults queue report about its call c1: the ACD chooses as for a caller
    arriving now (8002, level 2; 8003's level 8 is past the first step), that seat rings for
    the consultation and is offered no caller; freed, it keeps its place; put through, it is
    the call's seat and 8001 wraps up; the call's queue counts one connect per seat."""
    await _login(acd, ("8001", T0), ("8002", T0 + 1), ("8003", T0 + 2))
    await acd.enqueue("c1", "report", now=T0 + 3)
    [a] = await acd.dispatch_once(now=T0 + 4)
    assert a.seat == "8001"
    await acd.answered("c1", now=T0 + 5)
    assert await acd.consult_seat("c1", "8001", "report", now=T0 + 10) == "8002"
    status = await acd.seat("8002")
    assert (status.state, status.reason, status.call_id) == (SeatState.RINGING, "consult", "c1")
    await acd.enqueue("c2", "report", now=T0 + 11)
    assert await acd.dispatch_once(now=T0 + 12) == []  # 8002 held, 8003 not good enough yet
    assert await acd.expire_rings(now=T0 + 100) == []  # no RONA for a consultation
    assert await acd.consult_free("c1", "8002", now=T0 + 13)
    assert not await acd.consult_free("c1", "8002", now=T0 + 13)  # once
    status = await acd.seat("8002")
    assert status.state is SeatState.AVAILABLE and status.idle_since == T0 + 1
    await acd.cancel("c2", now=T0 + 14)

    assert await acd.consult_seat("c1", "8001", "report", now=T0 + 20) == "8002"
    assert await acd.consult_handover("c1", "8002", now=T0 + 30) == "8001"
    assert (await acd.seat("8001")).state is SeatState.WRAP_UP
    status = await acd.seat("8002")
    assert (status.state, status.call_id) == (SeatState.ON_CALL, "c1")
    assert await acd.consult_seat("c1", "8002", "report", now=T0 + 31) is None  # 8003: level 8
    done = await acd.hangup("c1", now=T0 + 60)
    assert (done.outcome, done.seat, done.duration_s) == ("completed", "8002", 30.0)
    events = [(e.type, e.seat, e.skill, e.data) for e in await read_events(redis, prefix)
              if e.call_id == "c1" and e.type in ("connect", "complete")]  # fmt: skip
    assert events == [
        ("connect", "8001", "report", "2000"), ("complete", "8001", "report", "25000"),
        ("connect", "8002", "report", "2000"), ("complete", "8002", "report", "30000"),
    ]  # fmt: skip
