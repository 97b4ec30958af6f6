"""Builds the parts of the running system from one Settings object (the composition root)."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts.http import AccountsWeb, actor_of
from accounts.service import AccountService
from accounts.staff_file import import_staff_file
from agents.pjsip import render_pjsip, render_queuerules, render_queues
from agents.seats import SeatsError, SeatsFile, load_seats
from hotline.private import private_dir
from hotline.secrets import stored_secret
from hotline.settings import Settings
from intake.config import IntakeConfig
from ivr.menu import Menu, Route
from knowledge import http as knowledge_http
from knowledge import search as knowledge_search
from knowledge.service import KnowledgeService
from pbx.ami import event_filter
from pbx.config import (
    PbxConfig,
    ensure_hold_music,
    ensure_transfer_beep,
    render_all,
    write_config,
)
from pbx.instance import AsteriskInstance
from pbx.kamailio import KamailioConfig, KamailioProxy, parse_boxes
from pbx.root import ProvisionError, build_root, is_built
from queueing.callback import callback_number_rule, may_call_back
from queueing.callback_retries import lines_in_use as callback_lines
from queueing.native import OPS as NATIVE_QUEUE_EVENTS
from queueing.redis_server import RedisServer
from queueing.rules import RoutingRules
from queueing.transfer import emergency_numbers, render_codes, transfer_codes
from revisit.rules import CallingHours, RevisitPolicy
from revisit.service import RevisitService
from speech.local_workers import LocalWorkers
from speech.worker import WorkerConfig
from web import metrics as metrics_http
from web import wallboard
from web.app import RouteMount
from workorders.department_sms import DepartmentSms, SmsSettings
from workorders.dispatch import DispatchRules
from workorders.http import add_routes
from workorders.mail import DepartmentMail, MailSettings
from workorders.outbox import Retries
from workorders.service import WorkOrderService
from workorders.sms import RedisSeen
from workorders.timelimits import TimeLimits

log = logging.getLogger(__name__)


def ami_secret(settings: Settings) -> str:
    return settings.ami_secret or stored_secret(settings.data_dir, "ami_secret")


def agi_key(settings: Settings) -> str:
    """The key every FastAGI request carries (pbx.fastagi)."""
    return settings.agi_secret or stored_secret(settings.data_dir, "agi_secret")


def redis_server(settings: Settings) -> RedisServer:
    """The hotline's own Redis (used when ``redis_url`` is empty)."""
    return RedisServer(
        settings.data_dir / "redis",
        settings.redis_port,
        stored_secret(settings.data_dir, "redis_password"),
    )


def redis_url(settings: Settings) -> str:
    """The Redis the ACD uses: ``redis_url`` if set, else the hotline's own."""
    return settings.redis_url or redis_server(settings).url


def asterisk_instance(settings: Settings) -> AsteriskInstance:
    instance = AsteriskInstance(
        cache_dir=settings.asterisk_cache_dir,
        instance_dir=settings.asterisk_dir,
        shared_dirs=(settings.prompts_dir, settings.moh_dir, settings.recordings_dir),
    )
    # Asterisk (its own user) writes calls and faxes here; nobody else reads them.
    owner = instance.owner() if is_built(settings.asterisk_cache_dir) else None
    private_dir(settings.recordings_dir, owner)
    private_dir(settings.recordings_dir / "fax", owner)
    return instance


def seat_passwords(settings: Settings, seats: SeatsFile) -> dict[str, str]:
    """Each seat's SIP password, generated once and kept in data_dir/secrets.toml."""
    return {seat.extension: stored_secret(settings.data_dir, f"seat-{seat.extension}")
            for seat in seats.seats}  # fmt: skip


def check_menu_queues(menu: Menu, seats: SeatsFile) -> tuple[str, ...]:
    """Every queue the menu routes to must be a skill of the seats file; returns them."""
    queues = sorted({route.name for route in menu_routes(menu) if route.kind == "queue"})
    skills = {skill.name for skill in seats.skills}
    missing = [queue for queue in queues if queue not in skills]
    if missing:
        raise SeatsError(
            "seats file", None,
            f"the menu routes to queue(s) {', '.join(missing)} but no skill has that name",
        )  # fmt: skip
    return tuple(queues)


# The AMI events the engine subscribes to (hotline.engine): Asterisk sends its user these
# only (manager.conf eventfilter), so every other event of every call costs nothing.
AMI_EVENTS = (
    "Hangup", "HangupRequest", "SoftHangupRequest", "Newchannel", "DialEnd", "BlindTransfer",
    "ContactStatus", "ReceiveFAX", "AttendedTransfer", *NATIVE_QUEUE_EVENTS,
)  # fmt: skip


def ami_events(settings: Settings) -> tuple[str, ...]:
    """The engine's events and the ``ami_extra_events`` setting's (tools, tests)."""
    extra = [name.strip() for name in settings.ami_extra_events.split(",") if name.strip()]
    return (*AMI_EVENTS, *extra)


def pbx_config(settings: Settings, menu: Menu, seats: SeatsFile | None = None) -> PbxConfig:
    """The values Asterisk's configuration is rendered from."""
    s = settings
    seats = seats or load_seats(s.seats_file)
    check_menu_queues(menu, seats)
    rules = RoutingRules()
    return PbxConfig(
        sip_host=s.sip_host, sip_port=s.sip_port,
        rtp_port_start=s.rtp_port_start, rtp_port_end=s.rtp_port_end,
        ami_host=s.ami_host, ami_port=s.ami_port, ami_user=s.ami_user, ami_secret=ami_secret(s),
        ami_event_filter=event_filter(ami_events(s)),
        agi_host=s.agi_host, agi_port=s.agi_port, agi_key=agi_key(s),
        hotline_number=s.hotline_number, citizen_networks=s.citizen_networks,
        queue_max_wait_s=s.queue_max_wait_s, recordings_dir=s.recordings_dir, moh_dir=s.moh_dir,
        operator_queue=menu.operator_route.name,
        seats_pjsip=render_pjsip(
            seats,
            seat_passwords(s, seats),
            qualify_frequency_s=s.seat_qualify_s,
            rewrite_contact=s.seat_rewrite_contact,
            registrar=f"{s.kamailio_host}:{s.kamailio_port}" if s.kamailio_host else "",
        ),
        queues=render_queues(seats, rules),
        queuerules=render_queuerules(rules),
        queue_first_band=rules.band_of(rules.steps[0].max_level),
        transfer_dial=s.outbound_dial.channel("${HOTLINE_TRANSFER_NUMBER}"),
        transfer_ring_s=s.transfer_ring_s,
        transfer_codes=render_codes(transfer_codes(seats, emergency_numbers(s.emergency_numbers))),
        system_name=s.asterisk_name,
    )  # fmt: skip


def menu_routes(menu: Menu) -> set[Route]:
    """Every route the menu can end on, the operator route included."""
    routes = {menu.operator_route}
    for node in menu.nodes.values():
        routes.update(option.route for option in node.options if option.route is not None)
        if node.entry is not None:
            routes.add(node.entry.route)
    return routes


def provision_asterisk(
    settings: Settings, menu: Menu, seats: SeatsFile | None = None
) -> AsteriskInstance:
    """Build (or reuse) the root, mount this instance and render its configuration."""
    build_root(settings.asterisk_cache_dir, settings.debian_mirror)
    instance = asterisk_instance(settings)
    instance.mount()
    ensure_hold_music(settings.moh_dir)
    ensure_transfer_beep(settings.moh_dir)
    write_config(instance.etc_dir, render_all(pbx_config(settings, menu, seats)), instance.owner())
    return instance


def kamailio_proxy(settings: Settings) -> KamailioProxy:
    """The Kamailio in front of the boxes (``kamailio_host`` set), provisioned from here."""
    s = settings
    if not s.kamailio_host:
        raise ProvisionError("kamailio_host is empty: this hotline runs one box, no Kamailio")
    return KamailioProxy(s.kamailio_dir, s.kamailio_host, s.kamailio_port)


def provision_kamailio(settings: Settings, seats: SeatsFile | None = None) -> KamailioProxy:
    """Render Kamailio's configuration: the boxes and the seats' passwords of this data
    folder (every box's data folder holds the same ``secrets.toml``)."""
    s = settings
    proxy = kamailio_proxy(s)
    seats = seats or load_seats(s.seats_file)
    boxes = parse_boxes(s.kamailio_boxes) or (f"{s.sip_host}:{s.sip_port}",)
    config = KamailioConfig(s.kamailio_host, s.kamailio_port, boxes, s.kamailio_probe_s,
                            seat_passwords(s, seats))  # fmt: skip
    changed = proxy.provision(config)
    log.info("Kamailio configuration changed: %s", ", ".join(changed) or "nothing")
    return proxy


def reload_kamailio(settings: Settings, seats: SeatsFile) -> str:
    """Re-render Kamailio's configuration and give the running Kamailio the seats (added,
    changed, removed) without a restart; returns what changed."""
    previous = kamailio_proxy(settings).configured_seats()
    proxy = provision_kamailio(settings, seats)
    passwords = seat_passwords(settings, seats)
    proxy.update_seats(passwords, previous)
    gone = sorted(previous - set(passwords))
    return f"Kamailio: {len(passwords)} seats" + (f", removed {', '.join(gone)}" if gone else "")


def reload_asterisk(settings: Settings, menu: Menu, seats: SeatsFile | None = None) -> str:
    """Re-render the configuration (seats included) and reload Asterisk: no restart."""
    instance = asterisk_instance(settings)
    changed = write_config(
        instance.etc_dir, render_all(pbx_config(settings, menu, seats)), instance.owner()
    )
    log.info("Asterisk configuration changed: %s", ", ".join(changed) or "nothing")
    return instance.reload()


def intake_config(settings: Settings) -> IntakeConfig:
    model = settings.vosk_model_dir
    return IntakeConfig(
        recordings_dir=settings.recordings_dir,
        outbox_dir=settings.data_dir / "intake-outbox",
        vosk_model_dir=Path(model).expanduser() if model else None,
        transcription_workers=settings.transcription_workers,
        transcription_timeout_s=settings.transcription_timeout_s,
        recording_retention_days=settings.recording_retention_days,
        network_timeout_s=settings.network_timeout_s,
    )


def worker_config(settings: Settings, parent_pid: int = 0) -> WorkerConfig | None:
    """What a `hotline worker` on this machine needs; None without a model configured."""
    if not settings.vosk_model_dir:
        return None
    return WorkerConfig(
        redis_url=redis_url(settings), prefix=settings.acd_prefix,
        recordings_dir=settings.recordings_dir,
        model_dir=Path(settings.vosk_model_dir).expanduser(),
        lease_s=settings.transcription_lease_s, parent_pid=parent_pid,
    )  # fmt: skip


def local_workers(settings: Settings, count: int) -> LocalWorkers:
    """``count`` `hotline worker` processes with these settings (passed as HOTLINE_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env |= settings.to_environ() | {"HOTLINE_REDIS_URL": redis_url(settings)}
    return LocalWorkers(count, env)


def work_orders(sessions: async_sessionmaker[AsyncSession]) -> WorkOrderService:
    return WorkOrderService(sessions, DispatchRules.load(), TimeLimits.load())


def department_mail(settings: Settings, limits: TimeLimits) -> DepartmentMail | None:
    """E-mail to departments through the SMTP gateway of the settings (None: no host set)."""
    s = settings
    if not s.smtp_host:
        log.info("no smtp_host: departments get their news on the portal only, not by e-mail")
        return None
    addresses = MailSettings.read_addresses(_department_file(s, s.department_mail_file, "mail"))
    mail = MailSettings(
        s.smtp_host, s.smtp_port, s.smtp_from, addresses, timeout_s=s.network_timeout_s,
        retries=max(0, s.mail_retries), retry_s=s.mail_retry_interval_s,
        portal_url=f"http://{s.web_host}:{s.web_port}/portal",
    )  # fmt: skip
    log.info("department e-mail through %s:%s for %d department(s)", s.smtp_host, s.smtp_port,
             len(addresses))  # fmt: skip
    return DepartmentMail(mail, limits.timezone)


def department_sms(settings: Settings, limits: TimeLimits) -> DepartmentSms | None:
    """SMS to departments through the gateway of the settings (None: no URL set)."""
    s, url = settings, settings.department_sms_url
    if url:
        numbers = SmsSettings.read_numbers(_department_file(s, s.department_sms_file, "sms"))
        retries = Retries(s.network_timeout_s, max(0, s.mail_retries), s.mail_retry_interval_s)
        secret = stored_secret(s.data_dir, "sms_gateway_secret")  # the inbound webhook's too
        log.info("department SMS through %s for %d department(s)", url, len(numbers))
        return DepartmentSms(SmsSettings(url, secret, numbers, retries), limits.timezone)
    log.info("no department_sms_url: departments get no SMS")
    return None


def _department_file(settings: Settings, configured: str, kind: str) -> Path:
    """A department contact file: as configured, else data_dir/department-<kind>.toml."""
    return Path(configured) if configured else settings.data_dir / f"department-{kind}.toml"


def metrics_token(settings: Settings) -> str:
    """The bearer token a Prometheus scraper sends to /metrics."""
    return settings.metrics_token or stored_secret(settings.data_dir, "metrics_token")


def supervisor_routes(
    settings: Settings, read: metrics_http.ReadingsRead, collectors: list[Collector]
) -> RouteMount:
    """Mount ``/metrics`` and the wallboard's figures, both read from ``read`` when asked."""
    thresholds = wallboard.Thresholds(settings.wallboard_longest_wait_alert_s,
                                      settings.wallboard_service_level_alert)  # fmt: skip

    def mount(app: web.Application) -> None:
        metrics_http.add_routes(
            app, metrics_http.MetricsDeps(read, metrics_token(settings), tuple(collectors))
        )
        wallboard.add_routes(app, wallboard.WallboardDeps(read, thresholds))

    return mount


def work_order_routes(settings: Settings, service: WorkOrderService, redis: Redis) -> RouteMount:
    """Mount the staff API, public status, Open311 and the SMS webhook (its replay check in
    ``redis``, shared by every engine on it)."""
    keys = [k.strip() for k in settings.open311_api_keys.split(",") if k.strip()]
    api_keys = keys or [stored_secret(settings.data_dir, "open311_api_key")]

    def mount(app: web.Application) -> None:
        add_routes(
            app,
            service,
            api_keys=api_keys,
            staff=actor_of,
            sms_secret=stored_secret(settings.data_dir, "sms_gateway_secret"),
            sms_followup_window=timedelta(hours=settings.sms_followup_window_h),
            sms_seen=RedisSeen(redis, settings.acd_prefix, settings.network_timeout_s),
            jurisdiction_id=settings.open311_jurisdiction_id,
        )

    return mount


async def accounts_web(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], seats: SeatsFile
) -> AccountsWeb:
    """The accounts (users bound to the catalogue's departments and the seats file's
    extensions), with the old staff file imported once if it is still there."""
    service = AccountService(
        sessions,
        session_secret=stored_secret(settings.data_dir, "session_secret"),
        session_ttl=timedelta(minutes=settings.session_ttl_min),
        departments=DispatchRules.load().departments,
        extensions=[seat.extension for seat in seats.seats],
    )
    await import_staff_file(service, settings.effective_staff_file)
    return AccountsWeb(service, secure_cookie=settings.session_cookie_secure)


def revisit_policy(settings: Settings, limits: TimeLimits) -> RevisitPolicy:
    """The revisit schedule's rules from the settings, in the time limits' time zone."""
    s = settings
    return RevisitPolicy(
        hours=CallingHours.parse(s.revisit_calling_hours, s.revisit_calling_days),
        timezone=limits.timezone, at_once=s.revisit_at_once, calls=s.revisit_calls,
        max_attempts=max(1, s.revisit_max_attempts),
        retry_interval=timedelta(seconds=s.revisit_retry_interval_s),
        concurrency=max(1, s.revisit_concurrency), ring_s=max(5, s.revisit_ring_s),
    )  # fmt: skip


def revisits(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], orders: WorkOrderService
) -> RevisitService:
    """The revisit schedule: citizens whose number the callback may dial are called, on the
    outbound dialer's lines that queue callbacks ringing citizens leave free."""
    numbers = callback_number_rule(settings.callback_number_pattern)
    return RevisitService(
        sessions, orders, revisit_policy(settings, orders.limits),
        may_dial=lambda number: may_call_back(number, numbers), other_lines=callback_lines,
    )  # fmt: skip


async def knowledge_base(orders: WorkOrderService) -> KnowledgeService:
    """The knowledge base on the work orders' database, its entries valid by the centre's
    local day; jieba's dictionary loaded off the event loop."""
    await asyncio.to_thread(knowledge_search.warm_up)
    return KnowledgeService(orders.sessions, lambda: orders.limits.local_date(orders.clock()))


def knowledge_routes(service: KnowledgeService, orders: WorkOrderService) -> RouteMount:
    """Mount ``/api/knowledge`` (suggestions for the orders ``orders`` holds) and the page."""
    return lambda app: knowledge_http.add_routes(app, service, orders)
