"""``GET /metrics`` in Prometheus' text format, with the official client library.

Every gauge is read at scrape time from the part that owns the fact (:mod:`hotline.readings`)
through one custom collector: no counter here keeps a second copy of the ACD's or the work
orders' state. Beside it: the ACD's decision latency histogram (observed by the routing loop,
:mod:`queueing.dispatcher`) and the client's default process, platform and GC collectors.

Never public: a scraper sends ``Authorization: Bearer <metrics token>`` (the ``metrics_token``
setting, else generated once into ``data_dir/secrets.toml``); a logged-in supervisor or admin
may open it in the browser (:mod:`accounts.access`'s roles).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from accounts.http import current_user
from accounts.users import SUPERVISORS
from agents.states import SeatState
from hotline.readings import Readings
from web.errors import HttpError
from workorders.states import State

log = logging.getLogger(__name__)

ReadingsRead = Callable[[], Awaitable[Readings]]

# today's queue figures (queueing.stats.QueueFigures fields) exported as calls by outcome
QUEUE_OUTCOMES = ("offered", "answered", "abandoned", "answered_within_sl", "callbacks_unreached")
# today's queue ratios and averages: (field, metric name, help)
QUEUE_FIGURES = (
    ("service_level", "hotline_queue_service_level_ratio",
     "Answered within the service-level time over answered + abandoned, today"),
    ("answer_rate", "hotline_queue_answer_rate_ratio", "Answered over answered + abandoned, today"),
    ("asa_s", "hotline_queue_asa_seconds", "Average speed of answer (wait of the answered), today"),
    ("aht_s", "hotline_queue_aht_seconds", "Average handling (talk) time, today"),
)  # fmt: skip


class ReadingsCollector(Collector):
    """The figures of one scrape as metric families."""

    def __init__(self, readings: Readings) -> None:
        self.r = readings

    def collect(self) -> Iterable[Metric]:
        r = self.r
        live = {
            name: GaugeMetricFamily(name, help_, labels=["queue"])
            for name, help_ in (
                ("hotline_queue_waiting", "Callers waiting in the queue now"),
                ("hotline_queue_callbacks_waiting", "Callbacks keeping their place in the queue"),
                ("hotline_queue_longest_wait_seconds", "How long the oldest caller has waited"),
                ("hotline_queue_seats_staffed", "Logged-in seats holding the queue's skill"),
                ("hotline_queue_seats_available", "Of those, available now"),
            )
        }
        for q in r.acd.queues:
            for name, value in zip(live, (q.waiting, q.callbacks, q.longest_wait_s, q.staffed,
                                          q.available), strict=True):  # fmt: skip
                live[name].add_metric([q.skill], value)
        yield from live.values()

        outcomes = GaugeMetricFamily("hotline_queue_calls_today",
                                     "ACD calls since local midnight by queue and outcome",
                                     labels=["queue", "outcome"])  # fmt: skip
        ratios = {f: GaugeMetricFamily(n, h, labels=["queue"]) for f, n, h in QUEUE_FIGURES}
        for fig in r.figures["queues"]:
            for outcome in QUEUE_OUTCOMES:
                outcomes.add_metric([fig["queue"], outcome], fig[outcome])
            for field_, family in ratios.items():
                if fig[field_] is not None:  # no call closed today: no ratio, not zero
                    family.add_metric([fig["queue"]], fig[field_])
        yield outcomes
        yield from ratios.values()

        seats = GaugeMetricFamily("hotline_seats", "Seats by state", labels=["state"])
        for seat_state in SeatState:
            seats.add_metric([seat_state.value], r.acd.seats_by_state.get(seat_state.value, 0))
        yield seats

        calls = GaugeMetricFamily("hotline_calls_today",
                                  "Calls started since local midnight by IVR route and outcome",
                                  labels=["route", "outcome"])  # fmt: skip
        for (route, outcome), n in sorted(r.calls.items()):
            calls.add_metric([route, outcome], n)
        yield calls

        yield GaugeMetricFamily("hotline_transcription_backlog",
                                "Recordings waiting for their transcript",
                                value=r.transcription_backlog)  # fmt: skip
        recordings = GaugeMetricFamily("hotline_recordings", "Call recordings by status",
                                       labels=["status"])  # fmt: skip
        for status, n in sorted(r.recordings.items()):
            recordings.add_metric([status], n)
        yield recordings

        orders = GaugeMetricFamily("hotline_work_orders", "Work orders by state", labels=["state"])
        for state in State:
            orders.add_metric([state.value], r.orders_by_state.get(state.value, 0))
        yield orders
        yield GaugeMetricFamily("hotline_work_orders_overdue",
                                "Orders a department still owes, past their time limit",
                                value=r.overdue)  # fmt: skip
        yield GaugeMetricFamily("hotline_work_orders_near_deadline",
                                "Orders a department still owes, within the urge window",
                                value=r.near_deadline)  # fmt: skip


@dataclass(frozen=True)
class MetricsDeps:
    read: ReadingsRead
    token: str
    collectors: Sequence[Collector]  # the engine's own (the decision latency histogram)


METRICS = web.AppKey("metrics", MetricsDeps)


def _scraper(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())  # fmt: skip


async def metrics(request: web.Request) -> web.Response:
    deps = request.app[METRICS]
    if not _scraper(request, deps.token):
        user = current_user(request)
        if user is None:
            raise HttpError(
                401,
                "unauthenticated",
                "send Authorization: Bearer <metrics token>",
                headers={"WWW-Authenticate": 'Bearer realm="hotline12345"'},
            )
        if user.role not in SUPERVISORS:
            raise HttpError(403, "forbidden", f"a {user.role.value} may not read the metrics")
    readings = await read_now(deps.read)
    registry = CollectorRegistry(auto_describe=False)
    add_process_collectors(registry)
    for collector in (*deps.collectors, ReadingsCollector(readings)):
        registry.register(collector)
    return web.Response(body=generate_latest(registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip


async def read_now(read: ReadingsRead) -> Readings:
    """The figures now, or 503 in the one error shape when Redis or SQL cannot answer."""
    try:
        return await read()
    except (RedisError, SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("figures not read (%s)", exc)
        raise HttpError(503, "unavailable", f"figures not readable now: {exc}") from None


def add_process_collectors(registry: CollectorRegistry) -> None:
    """The client's default collectors (process, Python platform, GC) in one scrape's
    registry, not in the client's global one (several engines may run in one process)."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def add_routes(app: web.Application, deps: MetricsDeps) -> None:
    app[METRICS] = deps
    app.router.add_get("/metrics", metrics)
