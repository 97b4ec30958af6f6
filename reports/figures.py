"""The report: figures per period and per operator, read with :mod:`reports.queries` in one
database session, as tables (title, header, rows) that the page, CSV and XLSX all show.

Rates follow the wallboard's (:mod:`queueing.stats`): answer rate and service level over
the calls answered or abandoned; ASA is the answered calls' average wait, AHT the average
talk time. On-time completion is over the orders replied to (the last reply by the time
limit, extensions and rework included); first-call resolution is the orders answered
directly, never dispatched nor reworked, over the orders not merged; revisit reach is the
revisits with a result over those scheduled, satisfaction the satisfied over those reached.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reports import queries
from reports.periods import Period, Span, spans
from workorders.dispatch import DispatchRules

UNKNOWN = "(none)"

# (key, header) of the per-period table, in order.
PERIOD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("period", "period"),
    ("first", "from"),
    ("last", "to"),
    ("calls_in", "calls in"),
    ("offered", "queued"),
    ("answered", "answered"),
    ("answer_rate", "answer rate"),
    ("within_sl", "answered within SL"),
    ("service_level", "service level"),
    ("abandoned", "abandoned"),
    ("abandon_wait_avg_s", "abandoned: average wait (s)"),
    ("abandon_wait_max_s", "abandoned: longest wait (s)"),
    ("asa_s", "ASA (s)"),
    ("aht_s", "AHT (s)"),
    ("orders", "work orders"),
    ("directly", "answered directly"),
    ("dispatched", "dispatched"),
    ("replied", "replied"),
    ("on_time", "replied on time"),
    ("on_time_rate", "on-time rate"),
    ("first_call", "first-call resolved"),
    ("fcr_rate", "first-call resolution"),
    ("reworked", "reworked"),
    ("extended", "extended"),
    ("revisits", "revisits"),
    ("reached", "revisits reached"),
    ("reach_rate", "revisit reach"),
    ("satisfied", "satisfied"),
    ("satisfaction_rate", "satisfaction"),
)
OPERATOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("seat", "seat"),
    ("name", "name"),
    ("answered", "answered"),
    ("within_sl", "answered within SL"),
    ("asa_s", "ASA (s)"),
    ("aht_s", "AHT (s)"),
    ("talk_s", "talk time (s)"),
    ("orders", "work orders"),
    ("directly", "answered directly"),
    ("dispatched", "dispatched"),
)
BREAKDOWNS = (("channel", "by channel"), ("category", "by category"),
              ("district", "by district"), ("lead_department", "by department"))  # fmt: skip


def rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def mean_s(total_ms: float, count: float) -> float | None:
    return round(total_ms / count / 1000, 2) if count else None


@dataclass(frozen=True)
class Table:
    name: str
    header: tuple[str, ...]
    rows: list[list[Any]]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "header": list(self.header), "rows": self.rows}


@dataclass(frozen=True)
class Report:
    period: Period
    first: date
    last: date
    timezone: str
    service_level_s: float
    periods: list[dict[str, Any]]
    breakdowns: dict[str, dict[str, list[int]]]  # dimension -> value -> orders per period
    operators: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> list[Table]:
        labels = [p["period"] for p in self.periods]
        out = [Table("periods", tuple(h for _, h in PERIOD_COLUMNS),
                     [[p[k] for k, _ in PERIOD_COLUMNS] for p in self.periods])]  # fmt: skip
        for dimension, title in BREAKDOWNS:
            values = self.breakdowns[dimension]
            keys = sorted(values)
            rows = [[label, *(values[k][i] for k in keys)] for i, label in enumerate(labels)]
            out.append(Table(title, ("period", *keys), rows))
        operators = [[o[k] for k, _ in OPERATOR_COLUMNS] for o in self.operators]
        out.append(Table("operators", tuple(h for _, h in OPERATOR_COLUMNS), operators))
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.period.value,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "timezone": self.timezone,
            "service_level_s": self.service_level_s,
            "periods": self.periods,
            "breakdowns": self.breakdowns,
            "operators": self.operators,
            "tables": [t.as_json() for t in self.tables()],
        }


def _n(row: Any | None, name: str) -> float:
    """A sum from a result row; 0 for a period or seat with no rows (SQL's SUM gives NULL)."""
    value = getattr(row, name) if row is not None else None
    return float(value or 0)


def _queue(row: Any | None) -> dict[str, Any]:
    answered, abandoned = int(_n(row, "answered")), int(_n(row, "abandoned"))
    closed = answered + abandoned
    within = int(_n(row, "within_sl"))
    longest = row.abandon_max_ms if row is not None else None
    return {
        "offered": int(_n(row, "offered")),
        "answered": answered,
        "answer_rate": rate(answered, closed),
        "within_sl": within,
        "service_level": rate(within, closed),
        "abandoned": abandoned,
        "abandon_wait_avg_s": mean_s(_n(row, "abandon_ms"), abandoned),
        "abandon_wait_max_s": None if longest is None else round(float(longest) / 1000, 2),
        "asa_s": mean_s(_n(row, "wait_ms"), answered),
        "aht_s": mean_s(_n(row, "talk_ms"), _n(row, "talks")),
        "talk_s": round(_n(row, "talk_ms") / 1000, 2),
    }


def _orders(row: Any | None) -> dict[str, Any]:
    sums = {name: int(_n(row, name)) for name in queries.ORDER_SUMS}
    orders = int(_n(row, "orders"))
    return {
        "orders": orders,
        **{k: v for k, v in sums.items() if k != "merged"},
        "on_time_rate": rate(sums["on_time"], sums["replied"]),
        "fcr_rate": rate(sums["first_call"], orders - sums["merged"]),
    }


def _revisits(row: Any | None) -> dict[str, Any]:
    revisits, reached = int(_n(row, "revisits")), int(_n(row, "reached"))
    satisfied = int(_n(row, "satisfied"))
    return {
        "revisits": revisits,
        "reached": reached,
        "reach_rate": rate(reached, revisits),
        "satisfied": satisfied,
        "satisfaction_rate": rate(satisfied, reached),
    }


@dataclass
class ReportSource:
    """Reads reports from the engine's database; the dispatch rules name the district of an
    order's place (:meth:`DispatchRules.district_of`), ``seat_names`` the operators
    (extension -> name)."""

    sessions: async_sessionmaker[AsyncSession]
    timezone: ZoneInfo
    service_level_s: float
    rules: DispatchRules
    seat_names: Callable[[], Mapping[str, str]] = dict

    def district_of(self, place: str) -> str | None:
        district, _ = self.rules.district_of(place)
        return district.name if district else None

    def spans(self, first: date, last: date, period: Period) -> list[Span]:
        return spans(first, last, period, self.timezone)

    async def report(self, first: date, last: date, period: Period) -> Report:
        periods = self.spans(first, last, period)
        sl = self.service_level_s
        async with self.sessions() as s:
            calls = dict((p, n) for p, n in await queries.calls_in(s, periods))
            queue = {r.p: r for r in await queries.queue_by_period(s, periods, sl)}
            orders = {r.p: r for r in await queries.orders_by_period(s, periods)}
            revisits = {r.p: r for r in await queries.revisits_by_period(s, periods)}
            by = {d: await queries.orders_by(s, periods, "location_text" if d == "district" else d)
                  for d, _ in BREAKDOWNS}  # fmt: skip
            seats = await queries.queue_by_seat(s, periods, sl)
            seat_orders = {r.seat: r for r in await queries.orders_by_seat(s, periods)}
        rows = []
        for i, span in enumerate(periods):
            rows.append({
                "period": span.label, "first": span.first.isoformat(),
                "last": span.last.isoformat(), "calls_in": int(calls.get(i, 0)),
                **_queue(queue.get(i)),
                **_orders(orders.get(i)), **_revisits(revisits.get(i)),
            })  # fmt: skip
        breakdowns: dict[str, dict[str, list[int]]] = {}
        for dimension, found in by.items():
            counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(periods))
            for p, value, n in found:
                key = (self.district_of(value) if dimension == "district" else value) or UNKNOWN
                counts[key][p] += int(n)
            breakdowns[dimension] = dict(counts)
        names = self.seat_names()
        operators = []
        for ext in sorted({r.seat for r in seats if r.seat} | set(seat_orders)):
            q = _queue(next((r for r in seats if r.seat == ext), None))
            o = seat_orders.get(ext)
            operators.append({
                "seat": ext, "name": names.get(ext, ""), "answered": q["answered"],
                "within_sl": q["within_sl"], "asa_s": q["asa_s"], "aht_s": q["aht_s"],
                "talk_s": q["talk_s"], "orders": int(_n(o, "orders")),
                "directly": int(_n(o, "directly")), "dispatched": int(_n(o, "dispatched")),
            })  # fmt: skip
        return Report(period, first, last, self.timezone.key, sl, rows, breakdowns, operators)
