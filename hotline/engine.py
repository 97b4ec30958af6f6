"""The running hotline: Asterisk, AMI, FastAGI, Redis, the database and the web service.

``Hotline.start`` brings the parts up in the order a call needs them and ``stop`` takes
them down in reverse, draining calls still in the IVR. Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from panoramisk.message import Message
from redis.exceptions import RedisError

from agents import http as seats_http
from agents.feature_codes import FeatureCodes
from agents.registration import RegistrationWatch
from agents.seats import SeatsFile, load_seats
from calls.lifecycle import CallListener
from calls.store import CallStore
from hotline.database import create_schema, make_engine, make_sessions, ping
from hotline.secrets import stored_secret
from hotline.settings import Settings
from hotline.wiring import (
    ami_secret,
    check_menu_queues,
    intake_config,
    provision_asterisk,
    reload_asterisk,
    work_order_routes,
    work_orders,
)
from intake.service import Intake
from ivr.menu import Menu, load_menu
from ivr.prompts import PromptLibrary
from ivr.session import IvrSession
from pbx.ami import AmiActionError, AmiClient, AmiUnavailable
from pbx.fastagi import FastAgiServer
from pbx.instance import AsteriskInstance
from queueing import http as stats_http
from queueing.acd import Acd
from queueing.announce import Announcer
from queueing.callback import CallbackOptions, CallbackRinger
from queueing.connector import QueueOptions, QueueRoute
from queueing.dialing import DialWatch, Listeners
from queueing.dispatcher import Dispatcher
from queueing.stats import EventLogWriter, queue_figures
from web.app import WebDeps, make_app
from workorders.service import WorkOrderService
from workorders.supervision import run_supervision

log = logging.getLogger(__name__)


@dataclass
class Hotline:
    settings: Settings
    # Told about every call connected to a seat and its end (recording, work-order intake).
    listeners: Sequence[CallListener] = ()
    menu: Menu = field(init=False)
    seats: SeatsFile = field(init=False)
    acd: Acd = field(init=False)
    dispatcher: Dispatcher = field(init=False)
    queue_route: QueueRoute = field(init=False)
    asterisk: AsteriskInstance | None = None
    ami: AmiClient = field(init=False)
    agi: FastAgiServer = field(init=False)
    calls: CallStore = field(init=False)
    work_orders: WorkOrderService = field(init=False)
    intake: Intake = field(init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.menu = load_menu(s.menu_file)  # a broken menu is refused here, with line and reason
        self.seats = load_seats(s.seats_file)  # so is a broken seats file
        check_menu_queues(self.menu, self.seats)
        log.info("menu %s loaded: %d nodes", s.menu_file, len(self.menu.nodes))
        prompts = PromptLibrary(s.prompts_dir, self.menu.voices)
        report = await prompts.ensure_async(self.menu)
        log.info(
            "prompts ready in %s: %d made, %d reused",
            s.prompts_dir,
            report.made_count,
            report.reused_count,
        )

        self._db = make_engine(s.effective_database_url)
        await create_schema(self._db)
        sessions = make_sessions(self._db)
        self.calls = CallStore(sessions)
        self.work_orders = work_orders(s, sessions)
        self._redis = aioredis.Redis.from_url(
            s.redis_url, socket_timeout=s.network_timeout_s, socket_connect_timeout=2
        )

        if s.manage_asterisk:
            self.asterisk = await asyncio.to_thread(provision_asterisk, s, self.menu, self.seats)
            await asyncio.to_thread(self.asterisk.start)

        self.ami = AmiClient(
            s.ami_host, s.ami_port, s.ami_user, ami_secret(s), timeout=s.network_timeout_s
        )
        self.ami.on("Hangup", self._on_hangup)
        # Recording, transcription and drafting of every connected call; fax intake.
        self.intake = Intake.open(intake_config(s), self.ami, sessions, self.work_orders)
        self.ami.on("ReceiveFAX", self.intake.fax.on_event)
        self.listeners = (*self.listeners, self.intake.recordings)
        self._tasks.append(
            asyncio.create_task(self.intake.run_retention(self._stopping), name="retention")
        )
        await self._start_acd(prompts, sessions)
        self._tasks.append(asyncio.create_task(self.ami.run(), name="ami"))
        if not await self.ami.wait_connected(10):
            log.warning("AMI not connected yet; the engine keeps trying (see /healthz)")

        self.agi = FastAgiServer()
        session = IvrSession(
            self.menu, prompts, self.calls, self.work_orders.status_for_phone_lookup
        )
        self.agi.add_route("ivr", session.run)
        self.agi.add_route("queue", self.queue_route.run)
        self.agi.add_route("callback", self._callbacks.run)
        self.agi.add_route(
            "seat", FeatureCodes(self.acd, self._announcer, self.dispatcher.kick).run
        )
        await self.agi.start(s.agi_host, s.agi_port)

        deps = WebDeps(
            calls=self.calls,
            health_checks={
                "asterisk": self._check_asterisk,
                "ami": self._check_ami,
                "fastagi": self._check_agi,
                "redis": self._check_redis,
                "database": lambda: ping(self._db),
            },
            supervisor_user="supervisor",
            supervisor_password=supervisor_password(s),
            timeout_s=s.network_timeout_s,
        )
        app = make_app(deps, mounts=[work_order_routes(s, self.work_orders), self._acd_routes])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, s.web_host, s.web_port).start()
        log.info(
            "web service on http://%s:%s (supervisor credentials in %s)",
            s.web_host,
            s.web_port,
            s.data_dir / "secrets.toml",
        )
        self._tasks.append(
            asyncio.create_task(
                run_supervision(self.work_orders, self._stopping, s.supervision_interval_s),
                name="supervision",
            )
        )
        log.info(
            "hotline ready: dial %s at sip:%s@%s:%s",
            s.hotline_number,
            s.hotline_number,
            s.sip_host,
            s.sip_port,
        )

    async def _start_acd(self, prompts: PromptLibrary, sessions: Any) -> None:
        s = self.settings
        self.acd = Acd(self._redis, self.seats, prefix=s.acd_prefix, timeout_s=s.network_timeout_s)
        try:
            await self.acd.register_seats()
        except (OSError, TimeoutError, RedisError) as exc:
            log.warning("Redis unreachable (%s): callers go to the native queues until it is back",
                        exc)  # fmt: skip
        self.dispatcher = Dispatcher(self.acd)
        dials = DialWatch()
        listeners = Listeners(self.listeners)
        self._announcer = Announcer(prompts)
        self.queue_route = QueueRoute(
            self.acd, self.dispatcher, dials, self._announcer, listeners,
            QueueOptions(announce_interval_s=s.queue_announce_interval_s,
                         callback_after_s=s.callback_offer_after_s),
            self._stop_playback,
        )  # fmt: skip
        self._callbacks = CallbackRinger(
            self.acd, self.ami, self.dispatcher, dials, listeners,
            CallbackOptions(agi_url=f"agi://{s.agi_host}:{s.agi_port}", dial=s.callback_dial,
                            hotline_number=s.hotline_number),
        )  # fmt: skip
        self.dispatcher.on_callback(self._callbacks.ring)
        self.registrations = RegistrationWatch(self.acd, self._end_ring)
        self.ami.on("DialEnd", dials.on_dial_end)
        self.ami.on("ContactStatus", self.registrations.on_contact_status)
        self._sessions = sessions
        self.event_log = EventLogWriter(self._redis, s.acd_prefix, sessions)
        self._tasks.append(asyncio.create_task(self.dispatcher.run(self._stopping), name="acd"))
        self._tasks.append(asyncio.create_task(self.event_log.run(self._stopping), name="acd-log"))

    async def _stop_playback(self, channel: str, who: str) -> None:
        """Cut an announcement short (the caller's seat is ringing)."""
        try:
            await self.ami.action({"Action": "ControlPlayback", "Channel": channel,
                                   "Control": "stop"})  # fmt: skip
        except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
            log.debug("%s: announcement not stopped (%s); it plays to its end", who, exc)

    async def _end_ring(self, seat: str) -> None:
        """Hang up the ring to a seat whose softphone went away (the ACD requeued the call)."""
        try:
            await self.ami.action({"Action": "Hangup", "Channel": f"/^PJSIP\\/{seat}-.*$/"})
        except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
            log.warning("seat %s: ring not ended (%s); it runs to its timeout", seat, exc)

    def _acd_routes(self, app: web.Application) -> None:
        seats_http.add_routes(app, self.acd, self.dispatcher.kick)
        stats_http.add_routes(app, self.stats)

    async def stats(self, since: float | None = None) -> dict[str, Any]:
        """Queue figures for supervisors (``GET /api/stats``, ``hotline stats``)."""
        return await queue_figures(
            self._sessions, await self.acd.snapshot(), since=since,
            service_level_s=self.settings.service_level_s,
        )  # fmt: skip

    async def reload_seats(self) -> None:
        """Apply an edited seats file: PJSIP and queues.conf by reload, the ACD by registration."""
        seats = load_seats(self.settings.seats_file)
        check_menu_queues(self.menu, seats)
        if self.asterisk is not None:
            await asyncio.to_thread(reload_asterisk, self.settings, self.menu, seats)
        await self.acd.register_seats(seats)
        self.seats = seats
        self.dispatcher.kick()

    async def stop(self) -> None:
        log.info("stopping the hotline")
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if hasattr(self, "agi"):
            await self.agi.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "intake"):
            await self.intake.close(timeout=30)
        if hasattr(self, "ami"):
            await self.ami.close()
        if self.asterisk is not None:
            await asyncio.to_thread(self.asterisk.stop)
        if hasattr(self, "_redis"):
            await self._redis.aclose()
        if hasattr(self, "_db"):
            await self._db.dispose()

    # -- AMI events -----------------------------------------------------------------------

    def _on_hangup(self, event: Message) -> None:
        uniqueid = event.get("Uniqueid", "")
        if not uniqueid or uniqueid != event.get("Linkedid", uniqueid):
            return  # only the citizen's own channel closes the call record
        cause = event.get("Cause", "")
        task = asyncio.create_task(
            self.calls.close(
                uniqueid,
                cause=int(cause) if cause.isdigit() else None,
                cause_text=event.get("Cause-txt") or None,
            )
        )
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    # -- health ---------------------------------------------------------------------------

    async def _check_asterisk(self) -> None:
        if self.asterisk is not None:
            if not await asyncio.to_thread(self.asterisk.is_running):
                raise RuntimeError("Asterisk is not running")
            return
        await self.ami.action({"Action": "Ping"})  # a remote PBX: alive if it answers

    async def _check_ami(self) -> None:
        if not self.ami.connected:
            raise RuntimeError(f"AMI not connected: {self.ami.last_error}")

    async def _check_agi(self) -> None:
        if not self.agi.serving:
            raise RuntimeError("FastAGI server not listening")

    async def _check_redis(self) -> None:
        await self._redis.ping()


def supervisor_password(settings: Settings) -> str:
    return stored_secret(settings.data_dir, "supervisor_password")
