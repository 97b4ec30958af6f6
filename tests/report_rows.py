"""Raw rows for the report tests, and the report's figures computed from them again in plain
Python (no SQL, nothing from reports/): calls with their ACD events (answered, abandoned,
requeued, some begun just before local midnight and answered after it, some put through
to a second seat, callbacks whose citizen was not reached), work orders (answered
directly, dispatched, replied late or on time, extended, reworked, merged) and revisits, on
the days around a report's range."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calls.models import CallRecord
from queueing.tables import AcdEventRow
from revisit.models import RevisitRow
from workorders.models import WorkOrderEventRow, WorkOrderRow

ZONE = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2025, 11, 27)  # rows from here; reports ask for a range inside
DAYS = 14
SEATS = ("8001", "8002", "8003")
PLACES = {"雁塔区小寨路": "雁塔区", "碑林区东大街": "碑林区", "大雁塔北广场": "雁塔区",
          "市政府门口": "(none)", "": "(none)"}  # fmt: skip
DEPARTMENTS = ("雁塔区人民政府", "市住房和城乡建设局", "")
CHANNELS = ("phone", "sms", "web", "app")
CATEGORIES = ("complaint", "consultation", "help")
SL_MS = 15_000
GRADES = ("very_satisfied", "satisfied", "dissatisfied")


@dataclass
class Seeded:
    calls: list[CallRecord] = field(default_factory=list)
    events: list[AcdEventRow] = field(default_factory=list)
    orders: list[WorkOrderRow] = field(default_factory=list)
    revisits: list[RevisitRow] = field(default_factory=list)


def local(day: date, hour: int, minute: int, second: int) -> datetime:
    return datetime.combine(day, time(hour, minute, second), ZONE).astimezone(UTC)


def make_rows(seed: int = 11) -> Seeded:
    rng = random.Random(seed)
    out = Seeded()
    ms = [1_800_000_000_000]

    def event(kind: str, at: datetime, call: str, seat: str, data: str) -> None:
        ms[0] += 1
        row = AcdEventRow(stream_ms=ms[0], stream_seq=0, type=kind, at=at.timestamp(),
                          call_id=call, seat=seat, skill="general", data=data)  # fmt: skip
        out.events.append(row)

    for i in range(160):
        day = FIRST_DAY + timedelta(days=i % DAYS)
        if i % 9 == 0:  # just before local midnight: answered or abandoned after it
            start = local(day, 23, 59, rng.randint(20, 50))
        else:
            start = local(day, rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
        uid = f"1800000000.{i}"
        out.calls.append(CallRecord(uniqueid=uid, channel=f"PJSIP/citizens-{i:08x}",
                                    caller_raw="13900000000", started_at=start,
                                    ended_at=start + timedelta(minutes=5)))  # fmt: skip
        fate = rng.random()
        if fate < 0.1:
            continue  # the IVR alone (self-service): no queue
        entered = start + timedelta(seconds=8)
        event("enter", entered, uid, "", "13900000000")
        wait = rng.randint(1_000, 45_000)
        seat = rng.choice(SEATS)
        if fate < 0.3:
            event("abandon", entered + timedelta(milliseconds=wait), uid, "", str(wait))
            continue
        if rng.random() < 0.3:  # offered to a seat that did not answer, then connected
            event("offer", entered + timedelta(seconds=1), uid, seat, "1000")
            event("requeue", entered + timedelta(seconds=3), uid, seat, "no_answer")
        event("connect", entered + timedelta(milliseconds=wait), uid, seat, str(wait))
        if rng.random() < 0.9:  # the others are still talking
            talk = rng.randint(30_000, 600_000)
            event("complete", entered + timedelta(milliseconds=wait + talk), uid, seat, str(talk))
    for k in range(10):  # answered, then put through to a seat that answers (connect again)
        day = FIRST_DAY + timedelta(days=k % DAYS)
        entered, uid = local(day, 14, 10 + k, 0), f"put-through-{k}"
        first, second = ("8003", "8001") if k % 2 else ("8001", "8003")
        event("enter", entered, uid, "", "13900000000")
        event("connect", entered + timedelta(seconds=9), uid, first, "9000")
        event("complete", entered + timedelta(seconds=69), uid, first, "60000")
        event("connect", entered + timedelta(seconds=70), uid, second, "0")
        event("complete", entered + timedelta(seconds=190), uid, second, "120000")
    for k in range(12):  # callbacks whose seat answered and whose citizen did not
        day = FIRST_DAY + timedelta(days=k % DAYS)
        entered, uid, seat = local(day, 10 + k % 8, 30, 0), f"callback-{k}", rng.choice(SEATS)
        event("enter", entered, uid, "", "13900000000")
        event("connect", entered + timedelta(seconds=5), uid, seat, "5000")
        event("unreached", entered + timedelta(seconds=35), uid, seat, "30000")
    event("seat", local(FIRST_DAY, 9, 0, 0), "", "8001", "paused lunch")

    for j in range(70):
        day = FIRST_DAY + timedelta(days=j % DAYS)
        created = (local(day, 23, 59, 59) if j % 7 == 0
                   else local(day, rng.randint(0, 23), rng.randint(0, 59), 0))  # fmt: skip
        order = WorkOrderRow(
            number=f"{day:%Y%m%d}{j:06d}", channel=rng.choice(CHANNELS), state="registered",
            created_at=created, updated_at=created, category=rng.choice(CATEGORIES),
            location_text=rng.choice(list(PLACES)), lead_department=rng.choice(DEPARTMENTS),
            seat=rng.choice((*SEATS, "")), assisting_departments=[], attributes={},
            rework_count=0, extension_days=0,
        )  # fmt: skip
        history: list[tuple[str, datetime]] = []
        kind = j % 6
        if kind == 0:
            order.state = "registered"
        elif kind == 1:  # answered directly
            order.state = "answered"
            history.append(("answer", created + timedelta(minutes=3)))
        elif kind == 5 and j % 4 == 1:  # answered directly, dissatisfied, reworked
            history.append(("answer", created + timedelta(minutes=3)))
            order.rework_count, order.state = 1, "dispatched"
            order.dispatched_at = created + timedelta(days=2)
            order.due_at = created + timedelta(days=6)
            history.append(("rework", order.dispatched_at))
        elif kind == 5:
            order.state, order.merged_into = "merged", "x"
            history.append(("merge", created + timedelta(minutes=1)))
        else:  # dispatched; replied on time, late, or not yet; some extended, some reworked
            order.dispatched_at = created + timedelta(minutes=5)
            order.state = "dispatched"
            order.due_at = created + timedelta(days=3)
            history.append(("dispatch", order.dispatched_at))
            if kind == 3:
                order.extension_days = 2
                order.due_at += timedelta(days=2)
            reply = created + timedelta(hours=rng.randint(2, 140))
            if rng.random() < 0.8:
                history.append(("reply", reply))
                order.state = "replied"
                if kind == 4 and rng.random() < 0.5:  # reworked: a new limit, replied again
                    order.rework_count = 1
                    order.due_at = reply + timedelta(days=3)
                    history.append(("rework", reply + timedelta(hours=1)))
                    history.append(("reply", reply + timedelta(hours=rng.randint(2, 90))))
        order.history = [WorkOrderEventRow(at=at, actor="test", role="operator", action=a)
                         for a, at in history]  # fmt: skip
        out.orders.append(order)
        if j % 3 == 0:
            resolved = rng.choice((True, False, None))
            out.revisits.append(RevisitRow(
                order_number=order.number, round=0, state="done" if resolved is not None else "due",
                due_at=created + timedelta(days=1), created_at=created + timedelta(hours=20),
                resolved=resolved,
                satisfaction=rng.choice(GRADES) if resolved is not None else "",
            ))  # fmt: skip
    return out


# -- the figures again, by hand ------------------------------------------------------------


def local_day(moment: datetime | float) -> date:
    if isinstance(moment, float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(ZONE).date()


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def seconds(total_ms: float, n: int) -> float | None:
    return round(total_ms / n / 1000, 2) if n else None


def expected(rows: Seeded, first: date, last: date, label: Callable[[date], str]
             ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per period label: the report's figures from the raw rows."""
    inside = lambda d: first <= d <= last  # noqa: E731
    out: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for c in rows.calls:
        if inside(local_day(c.started_at)):
            out[label(local_day(c.started_at))]["calls_in"] += 1
    by_call: dict[str, list[AcdEventRow]] = defaultdict(list)
    for e in rows.events:
        if e.type != "seat":
            by_call[e.call_id].append(e)
    waits: dict[str, list[tuple[int, str]]] = defaultdict(list)
    abandons: dict[str, list[int]] = defaultdict(list)
    talks: dict[str, list[int]] = defaultdict(list)
    for events in by_call.values():
        began = local_day(min(e.at for e in events))
        if not inside(began):
            continue
        f = out[label(began)]
        f["offered"] += 1
        connect = [e for e in events if e.type == "connect"]
        if connect and not any(e.type == "unreached" for e in events):
            waits[label(began)].append((int(connect[0].data), connect[0].seat))
        elif any(e.type == "abandon" for e in events):
            abandons[label(began)].append(int(next(e.data for e in events if e.type == "abandon")))
        talks[label(began)] += [int(e.data) for e in events if e.type == "complete"]
    for key, f in out.items():
        w, a, t = [x for x, _ in waits[key]], abandons[key], talks[key]
        f.update(answered=len(w), abandoned=len(a), within_sl=sum(x <= SL_MS for x in w),
                 answer_rate=ratio(len(w), len(w) + len(a)),
                 service_level=ratio(sum(x <= SL_MS for x in w), len(w) + len(a)),
                 asa_s=seconds(sum(w), len(w)), aht_s=seconds(sum(t), len(t)),
                 abandon_wait_avg_s=seconds(sum(a), len(a)),
                 abandon_wait_max_s=round(max(a) / 1000, 2) if a else None)  # fmt: skip
    for o in rows.orders:
        day = local_day(o.created_at)
        if not inside(day):
            continue
        f = out[label(day)]
        actions = [h.action for h in o.history]
        replies = [h.at for h in o.history if h.action == "reply"]
        f["orders"] += 1
        f["merged"] += o.state == "merged"
        f["directly"] += "answer" in actions
        f["dispatched"] += o.dispatched_at is not None
        f["replied"] += bool(replies)
        f["on_time"] += bool(replies) and o.due_at is not None and max(replies) <= o.due_at
        f["first_call"] += ("answer" in actions and o.dispatched_at is None
                            and o.rework_count == 0 and o.state != "merged")  # fmt: skip
        f["reworked"] += o.rework_count > 0
        f["extended"] += o.extension_days > 0
        for dimension, value in (
            ("channel", o.channel),
            ("category", o.category),
            ("district", PLACES[o.location_text]),
            ("lead_department", o.lead_department or "(none)"),
        ):
            f[f"{dimension}:{value}"] += 1  # fmt: skip
    for r in rows.revisits:
        day = local_day(r.created_at)
        if inside(day):
            f = out[label(day)]
            f["revisits"] += 1
            f["reached"] += r.resolved is not None
            f["satisfied"] += r.resolved is not None and r.satisfaction in GRADES[:2]
    for f in out.values():
        f["on_time_rate"] = ratio(f["on_time"], f["replied"])
        f["fcr_rate"] = ratio(f["first_call"], f["orders"] - f["merged"])
        f["reach_rate"] = ratio(f["reached"], f["revisits"])
        f["satisfaction_rate"] = ratio(f["satisfied"], f["reached"])
    return out


def expected_operators(rows: Seeded, first: date, last: date) -> dict[str, dict[str, Any]]:
    """Per seat: the calls it answered (by the call's first event) and the orders it took."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    by_call: dict[str, list[AcdEventRow]] = defaultdict(list)
    for e in rows.events:
        if e.type != "seat":
            by_call[e.call_id].append(e)
    for events in by_call.values():
        connect = [e for e in events if e.type == "connect"]
        reached = not any(e.type == "unreached" for e in events)
        if connect and reached and first <= local_day(min(e.at for e in events)) <= last:
            f = out[connect[0].seat]
            f["answered"] += 1
            f["wait_ms"] += int(connect[0].data)
            f["talk_ms"] += sum(int(e.data) for e in events if e.type == "complete")
            f["talks"] += sum(e.type == "complete" for e in events)
    for o in rows.orders:
        if o.seat and first <= local_day(o.created_at) <= last:
            f = out[o.seat]
            f["orders"] += 1
            f["directly"] += any(h.action == "answer" for h in o.history)
            f["dispatched"] += o.dispatched_at is not None
    for f in out.values():
        f["asa_s"] = seconds(f["wait_ms"], f["answered"])
        f["aht_s"] = seconds(f["talk_ms"], f["talks"])
    return out
