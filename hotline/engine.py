"""The running hotline: Asterisk, AMI, FastAGI, Redis, the database and the web service.

``Hotline.start`` brings the parts up in the order a call needs them; each part puts its
own stop on one ``AsyncExitStack``, so ``stop`` (or a failure midway through ``start``)
takes down in reverse exactly what was started. Background loops run supervised
(:mod:`hotline.loops`). Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from panoramisk.message import Message
from redis.exceptions import RedisError

from accounts.first_start import make_first_accounts
from accounts.http import AccountsWeb
from agents import http as seats_http
from agents import listen_in
from agents.feature_codes import FeatureCodes
from agents.listen_in import ListenIn
from agents.pjsip import member_name
from agents.registration import RegistrationWatch
from agents.seats import SeatsFile, load_seats
from calls.hangups import HangupCauses
from calls.lifecycle import CallListener
from calls.reconcile import run as check_call_records
from calls.store import CallStore
from hotline.control import CONTROL_TOKEN, control_routes
from hotline.database import create_schema, make_engine, make_sessions, ping
from hotline.instance import remove_instance, write_instance
from hotline.loops import Loops
from hotline.readings import ReadingsSource
from hotline.secrets import stored_secret
from hotline.settings import Settings
from hotline.streaming import start_streaming
from hotline.wiring import (
    accounts_web,
    agi_key,
    ami_events,
    ami_secret,
    asterisk_instance,
    check_menu_queues,
    department_mail,
    department_sms,
    intake_config,
    knowledge_base,
    knowledge_routes,
    local_workers,
    provision_asterisk,
    provision_kamailio,
    redis_server,
    redis_url,
    reload_asterisk,
    reload_kamailio,
    revisits,
    supervisor_routes,
    work_order_routes,
    work_orders,
)
from intake.live import LiveTranscription
from intake.service import Intake
from intake.transcription import usable_model
from ivr import http as announcements_http
from ivr.announcements import Announcements
from ivr.menu import Menu, load_menu
from ivr.order_status import DEFAULT_FILE, OrderStatusReader, StatusTexts
from ivr.phone_announcements import PhoneAnnouncements
from ivr.prompts import PromptLibrary
from ivr.session import IvrSession
from knowledge.service import KnowledgeService
from pbx.ami import AmiActionError, AmiClient, AmiUnavailable
from pbx.config import TRANSFER_BEEP
from pbx.fastagi import FastAgiServer
from pbx.instance import AsteriskInstance
from pbx.kamailio import KamailioProxy
from pbx.watchdog import AsteriskWatchdog
from queueing import callback_retries
from queueing import http as stats_http
from queueing import transfer as transfer_http
from queueing.acd import Acd
from queueing.announce import Announcer
from queueing.busy import BusySeats
from queueing.callback import CallbackOptions, CallbackRinger, callback_number_rule
from queueing.callback_retries import CallbackRetryOptions, CallbackSchedule
from queueing.channels import ami_channels, seat_channel
from queueing.connector import QueueOptions, QueueRoute
from queueing.consult import Consultations
from queueing.dialing import DialWatch, Listeners
from queueing.direct import DirectSeats
from queueing.dispatcher import Dispatcher
from queueing.native import OPS as NATIVE_QUEUE_EVENTS
from queueing.native import NativeQueue
from queueing.ownership import Ownership, engine_id
from queueing.recovery import Recovery
from queueing.redis_server import RedisServer
from queueing.redis_server import watch as watch_redis
from queueing.stats import EventLogWriter, queue_figures
from queueing.transfer import Transfers, emergency_numbers
from reports import http as reports_http
from reports.figures import ReportSource
from revisit import http as revisit_http
from revisit.dialer import DialOptions, RevisitDialer
from revisit.route import RevisitRoute
from revisit.service import RevisitService
from revisit.texts import DEFAULT_FILE as REVISIT_TEXTS
from revisit.texts import RevisitTexts
from speech.jobs import TranscriptionJobs, close_broker, files_queue, make_broker
from speech.local_workers import LocalWorkers
from web import desk as desk_http
from web import live as live_http
from web import portal as portal_http
from web.app import RouteMount, WebDeps, make_app
from web.desk import Desk
from web.fanout import RedisFanout
from web.live import LiveHub
from web.portal import Portal
from web.transcript import TranscriptPanel
from workorders.dispatch import CATEGORIES
from workorders.outbox import DepartmentSender
from workorders.service import WorkOrderService
from workorders.states import State
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
    kamailio: KamailioProxy | None = None  # manage_kamailio: the one in front of the boxes
    watchdog: AsteriskWatchdog | None = None  # restarts the local Asterisk when it dies
    _redis_server: RedisServer | None = None  # the hotline's own Redis, if it manages one
    ami: AmiClient = field(init=False)
    agi: FastAgiServer = field(init=False)
    calls: CallStore = field(init=False)
    announcements: Announcements = field(init=False)
    work_orders: WorkOrderService = field(init=False)
    transfers: Transfers = field(init=False)  # of a seat's caller (desk, softphone)
    consultations: Consultations = field(init=False)  # attended transfers
    accounts: AccountsWeb = field(init=False)
    intake: Intake = field(init=False)
    transcription_workers: LocalWorkers | None = None  # this box's `hotline worker` processes
    native_queue: NativeQueue = field(init=False)
    revisits: RevisitService = field(init=False)
    knowledge: KnowledgeService = field(init=False)
    revisit_dialer: RevisitDialer = field(init=False)
    loops: Loops = field(default_factory=Loops)
    # Live events for the staff's pages (the operator's desk, the wallboard): web.live
    live: LiveHub = field(default_factory=LiveHub)
    transcripts: TranscriptPanel = field(init=False)  # the desk's live transcript panel
    streaming: LiveTranscription | None = None  # live transcription, when on
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _hangups: set[asyncio.Task[Any]] = field(default_factory=set)  # call records closing
    _hangup_causes: HangupCauses = field(default_factory=HangupCauses)

    async def start(self) -> None:
        """Bring every part up; a failure midway takes down what was already started."""
        async with AsyncExitStack() as stack:
            await self._start(stack)
            self._stack = stack.pop_all()

    async def _start(self, stack: AsyncExitStack) -> None:
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
        stack.push_async_callback(self._db.dispose)
        await create_schema(self._db)
        sessions = make_sessions(self._db)
        self.calls = CallStore(sessions)
        self.work_orders = work_orders(sessions)
        self.revisits = revisits(s, sessions, self.work_orders)
        self.accounts = await accounts_web(s, sessions, self.seats)
        if s.first_accounts and self.seats.seats:  # a new installation's first `hotline up`
            await make_first_accounts(self.accounts.accounts, s.data_dir,
                                      self.seats.seats[0].extension)  # fmt: skip
        self.knowledge = await knowledge_base(self.work_orders)
        if not s.redis_url:  # the hotline's own Redis, managed like Asterisk
            server = redis_server(s)
            await asyncio.to_thread(server.start)
            stack.push_async_callback(asyncio.to_thread, server.stop)
            self._redis_server = server
        self._redis = aioredis.Redis.from_url(
            redis_url(s), socket_timeout=s.network_timeout_s, socket_connect_timeout=2
        )
        stack.push_async_callback(self._redis.aclose)

        if s.manage_kamailio:  # the box that runs the Kamailio in front of all of them
            kamailio = await asyncio.to_thread(provision_kamailio, s, self.seats)
            await asyncio.to_thread(kamailio.start)
            stack.push_async_callback(asyncio.to_thread, kamailio.stop)
            self.kamailio = kamailio

        if s.manage_asterisk:
            asterisk = await asyncio.to_thread(provision_asterisk, s, self.menu, self.seats)
            stack.push_async_callback(asyncio.to_thread, asterisk.unmount)  # failed boot too
            await asyncio.to_thread(asterisk.start)
            self.asterisk = asterisk
            stack.push_async_callback(asyncio.to_thread, asterisk.stop)

        self.ami = AmiClient(
            s.ami_host,
            s.ami_port,
            s.ami_user,
            ami_secret(s),
            timeout=s.network_timeout_s,
            events=ami_events(s),
        )
        stack.push_async_callback(self.ami.close)
        for request in ("HangupRequest", "SoftHangupRequest"):
            self.ami.on(request, self._hangup_causes.requested)
        self.ami.on("Hangup", self._on_hangup)
        # Recording, transcription (jobs for `hotline worker` processes) and drafting of every
        # connected call; fax intake.
        transcriber = await self._start_transcription(stack)
        self.intake = Intake.open(intake_config(s), self.ami, sessions, self.work_orders,
                                  transcriber)  # fmt: skip
        stack.push_async_callback(self.intake.close, 30)
        self.ami.on("ReceiveFAX", self.intake.fax.on_event)
        self.transcripts = TranscriptPanel(self.live, self.work_orders.rules, self.knowledge.search)
        self.streaming = await start_streaming(s, self.ami, self.intake.recordings,
                                               self.transcripts, stack, transcriber)  # fmt: skip
        streams = () if self.streaming is None else (self.streaming,)
        self.listeners = (*self.listeners, *streams, self.intake.recordings, self.live)
        self.work_orders.on_drafted = self.live.order_drafted
        self.revisits.on_change = self.live.revisit_changed  # the wallboard's revisit tile
        # Background loops: supervised (restarted when they die, reported by /healthz), told
        # to stop by _stopping, cancelled after a grace period.
        stack.push_async_callback(self.loops.close)
        stack.callback(self._stopping.set)
        if self._redis_server is not None:
            managed = self._redis_server
            self.loops.start("redis-watchdog", lambda: watch_redis(managed, self._stopping))
        self.loops.start("recording-retention", lambda: self.intake.run_retention(self._stopping))
        self.loops.start("intake-recovery", lambda: self.intake.run_recovery(self._stopping))
        if self.asterisk is not None:
            watchdog = self.watchdog = AsteriskWatchdog(self.asterisk)
            self.loops.start("asterisk-watchdog", lambda: watchdog.run(self._stopping))
        await self._start_acd(prompts, sessions)
        self.loops.start("ami-connection", self.ami.run)
        if not await self.ami.wait_connected(10):
            log.warning("AMI not connected yet; the engine keeps trying (see /healthz)")

        self.agi = FastAgiServer(agi_key(s))
        texts = StatusTexts.load(DEFAULT_FILE, languages=self.menu.languages, states=State)
        order_status = OrderStatusReader(self.work_orders.phone_status, texts)
        self.announcements = Announcements(self._redis, s.acd_prefix, prompts, self.menu.languages,
                                           timeout_s=s.network_timeout_s)  # fmt: skip
        self.announcements.on_change = self.live.announcement_changed
        session = IvrSession(self.menu, prompts, self.calls, order_status,
                             self.announcements.playable)  # fmt: skip
        self.agi.add_route("ivr", session.run)
        self.agi.add_route("queue", self.queue_route.run)
        self.agi.add_route("callback", self._callbacks.run)
        self.agi.add_route(
            "seat", FeatureCodes(self.acd, self._announcer, self.dispatcher.kick).run
        )
        recorder = PhoneAnnouncements(self.announcements, self._announcer,
                                      self.accounts.accounts.supervisor_at,
                                      s.recordings_dir, s.moh_dir / TRANSFER_BEEP)  # fmt: skip
        self.agi.add_route("announcement", recorder.run)  # a supervisor's *25
        revisit_routes = await self._start_revisits(prompts)
        await self.agi.start(s.agi_host, s.agi_port)
        stack.push_async_callback(self.agi.stop)
        self.loops.start(
            "order-supervision",
            lambda: run_supervision(self.work_orders, self._stopping, s.supervision_interval_s),
        )

        deps = WebDeps(
            calls=self.calls,
            health_checks=self.loops.checks(
                {
                    "asterisk": self._check_asterisk,
                    "ami": self._check_ami,
                    "fastagi": self._check_agi,
                    "redis": self._check_redis,
                    "database": lambda: ping(self._db),
                }
            ),
            accounts=self.accounts,
            timeout_s=s.network_timeout_s,
        )
        control = control_routes(stored_secret(s.data_dir, CONTROL_TOKEN), self.reload_seats)
        orders = work_order_routes(s, self.work_orders, self._redis)
        knowledge = knowledge_routes(self.knowledge, self.work_orders)
        live = self._live_routes
        readings = ReadingsSource(self.acd, sessions, self.calls, self.intake.store,
                                  self.work_orders, s.service_level_s)  # fmt: skip
        supervisor = supervisor_routes(s, readings.read, [self.dispatcher.decision_seconds])
        reports = reports_http.mount(ReportSource(
            sessions, self.work_orders.limits.timezone, s.service_level_s, self.work_orders.rules,
            lambda: {seat.extension: seat.name for seat in self.acd.seats.seats},
        ))  # fmt: skip
        app = make_app(deps, mounts=[orders, self._acd_routes, control, revisit_routes, live,
                                     supervisor, knowledge, reports, self._supervisor_controls,
                                     self.transcripts.mount])  # fmt: skip
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        stack.push_async_callback(self.live.close)  # open streams end before the web stops
        await web.TCPSite(runner, s.web_host, s.web_port).start()
        # `hotline seats|stats|calls` find this instance (and its control endpoint) here.
        stack.callback(remove_instance, s)
        write_instance(s)
        log.info(
            "web service on http://%s:%s (log in at /login; accounts: `hotline users`)",
            s.web_host,
            s.web_port,
        )
        log.info(
            "hotline ready: dial %s at sip:%s@%s:%s",
            s.hotline_number,
            s.hotline_number,
            s.sip_host,
            s.sip_port,
        )

    async def _start_transcription(self, stack: AsyncExitStack) -> TranscriptionJobs | None:
        """The job system's client, and this box's own workers unless turned off; None
        without a usable model (said once in the log)."""
        s = self.settings
        if usable_model(intake_config(s)) is None:
            return None
        broker = make_broker(redis_url(s), s.acd_prefix, s.transcription_lease_s)
        stack.push_async_callback(asyncio.to_thread, close_broker, broker)
        jobs = TranscriptionJobs(broker, self._redis, s.acd_prefix, s.recordings_dir)
        if s.transcription_local_workers:
            workers = self.transcription_workers = local_workers(s, s.transcription_workers)
            workers.start()
            stack.push_async_callback(asyncio.to_thread, workers.stop)
            self.loops.start("transcription-workers", lambda: workers.supervise(self._stopping))
        local = s.transcription_workers if s.transcription_local_workers else 0
        log.info("transcription: jobs on %s, %d local worker(s)%s", files_queue(s.acd_prefix),
                 local, "" if local else " (`hotline worker` on other machines)")  # fmt: skip
        return jobs

    async def _start_acd(self, prompts: PromptLibrary, sessions: Any) -> None:
        s = self.settings
        self.acd = Acd(self._redis, self.seats, prefix=s.acd_prefix, timeout_s=s.network_timeout_s,
                       owner=engine_id(s.data_dir))  # fmt: skip
        try:
            await self.acd.register_seats()
        except (OSError, TimeoutError, RedisError) as exc:
            log.warning("Redis unreachable (%s): callers go to the native queues until it is back",
                        exc)  # fmt: skip
        self.ownership = Ownership(
            self._redis, s.acd_prefix, self.acd.owner, timeout_s=s.network_timeout_s
        )
        self.dispatcher = Dispatcher(self.acd, ownership=self.ownership)
        dials = DialWatch()
        listeners = Listeners(self.listeners)
        self._announcer = Announcer(prompts)
        numbers = callback_number_rule(s.callback_number_pattern)
        self.queue_route = QueueRoute(
            self.acd, self.dispatcher, dials, self._announcer, listeners,
            QueueOptions(announce_interval_s=s.queue_announce_interval_s,
                         callback_after_s=s.callback_offer_after_s, callback_numbers=numbers,
                         max_wait_s=s.acd_max_wait_s),
            self._stop_playback, self._wake_caller,
        )  # fmt: skip
        # Callbacks' calls to citizens: on the outbound dialer's record (its lines, retries
        # booked by its loop, the failed list), in SQL like the revisits.
        self.callback_retries = CallbackSchedule(
            sessions, self.acd, self.dispatcher.kick,
            CallbackRetryOptions(retries=max(0, s.callback_retries),
                                 interval_s=s.callback_retry_interval_s,
                                 ring_s=s.callback_ring_s),
            engine_id(s.data_dir),
        )  # fmt: skip
        self._callbacks = CallbackRinger(
            self.acd, self.ami, self.dispatcher, dials, listeners,
            CallbackOptions(dial=s.outbound_dial, numbers=numbers,
                            hotline_number=s.hotline_number,
                            recordings_dir=s.recordings_dir),
            self.callback_retries,
        )  # fmt: skip
        self.dispatcher.on_callback(self._callbacks.ring)
        self.registrations = RegistrationWatch(self.acd, self._end_ring)
        self.ami.on("DialEnd", dials.on_dial_end)
        list_calls = ami_channels(self.ami, s.network_timeout_s)

        async def seat_in_call(seat: str, call_id: str) -> str | None:
            """The seat's channel talking in the call (bridged: Atxfer's keys reach its
            features only then; a Dial just answered is not bridged yet)."""
            found = seat_channel(await list_calls(), seat, call_id)
            return found.name if found is not None and found.talking else None

        onward = self.intake.recordings.onward  # a transferred call's recording goes on
        self.transfers = Transfers(self.acd, self.calls, self._redirect,
                                   emergency_numbers(s.emergency_numbers), self.dispatcher.kick,
                                   originate=self._dial_into, seat_channel=seat_in_call,
                                   department_numbers=numbers,
                                   on_transferred=onward.transferred)  # fmt: skip
        self.ami.on("BlindTransfer", self.transfers.on_blind_transfer)
        direct = DirectSeats(self.calls, listeners, self.acd)  # a seat reached by name
        self.ami.on("DialEnd", direct.on_dial_end)
        self.ami.on("Hangup", direct.on_hangup)
        self.consultations = Consultations(self.transfers, self.ami.action,
                                           tell_desk=self.live.consultation,
                                           direct=direct)  # fmt: skip
        self.ami.on("AttendedTransfer", self.consultations.on_attended_transfer)
        self.ami.on("Hangup", self.consultations.on_hangup)
        self.ami.on("Newchannel", self.consultations.on_newchannel)
        self.ami.on("Hangup", onward.on_hangup)
        self.ami.on("ContactStatus", self.registrations.on_contact_status)
        self._sessions = sessions
        self.event_log = EventLogWriter(self._redis, s.acd_prefix, sessions)
        self.loops.start("acd-routing", lambda: self.dispatcher.run(self._stopping))
        # Calls the dialplan's fallback (Asterisk's Queue()) took: call records, statistics,
        # the seats' states and intake (recording, drafting) from its AMI events.
        self.native_queue = NativeQueue(
            self.acd, self.calls, listeners, self.dispatcher.kick, clock=time.time,
            queue_log=asterisk_instance(s).queue_log,
            members={member_name(seat): seat.extension for seat in self.seats.seats},
        )  # fmt: skip
        for name in NATIVE_QUEUE_EVENTS:
            self.ami.on(name, self.native_queue.on_event)
        self.ami.on("Hangup", self.native_queue.on_hangup)
        self.loops.start("native-queue", lambda: self.native_queue.run(self._stopping))
        # Call records whose Hangup the engine never heard (it was down, Asterisk restarted).
        list_channels = ami_channels(self.ami, s.network_timeout_s)

        async def live_calls() -> set[str]:
            return {channel.uniqueid for channel in await list_channels()}

        self.loops.start("call-records", lambda: check_call_records(
            self.calls, live_calls, self._stopping, lambda: self.ami.connected,
            box=s.asterisk_name))  # fmt: skip
        # Seats and callers checked against Asterisk (after a kill, a dead engine, a missed
        # event); the lease that tells other engines this one holds its callers.
        self.recovery = Recovery(
            self.acd, self.dispatcher, self.ownership,
            ami_channels(self.ami, s.network_timeout_s), dials, self._hangup_channel,
            native=self.native_queue.follows, listeners=listeners, box=s.asterisk_name,
        )  # fmt: skip
        self.ami.on("Hangup", self.recovery.on_hangup)
        self.loops.start(
            "acd-recovery", lambda: self.recovery.run(self._stopping, lambda: self.ami.connected)
        )
        self.loops.start(
            "acd-ownership", lambda: self.ownership.run(self._stopping, self.dispatcher.deliver)
        )
        self.loops.start("acd-event-log", lambda: self.event_log.run(self._stopping))
        # Live pages: what any engine publishes and the ACD's log, read by one path (web.fanout)
        fanout = RedisFanout(self.live, self._redis, s.acd_prefix, timeout_s=s.network_timeout_s)
        self.live.fanout = fanout
        self.loops.start("live-fanout", lambda: fanout.run_sender(self._stopping))
        self.loops.start("live-events", lambda: fanout.follow(self._stopping))
        # A seat on any call of its own (a feature code such as *24 included) is offered no
        # caller until that channel hangs up.
        busy = BusySeats(
            self.acd, self.dispatcher.kick, ami_channels(self.ami, s.network_timeout_s)
        )
        self.ami.on("Newchannel", busy.on_newchannel)
        self.ami.on("Hangup", busy.on_hangup)
        self.loops.start(
            "acd-busy-seats", lambda: busy.run(self._stopping, lambda: self.ami.connected)
        )

    async def _start_revisits(self, prompts: PromptLibrary) -> RouteMount:
        """Revisit calls: their words checked and synthesised, the FastAGI route, the one
        outbound dialer (a supervised loop) and its staff API."""
        s = self.settings
        texts = RevisitTexts.load(REVISIT_TEXTS, languages=self.menu.languages,
                                  categories=CATEGORIES)  # fmt: skip
        await asyncio.to_thread(prompts.synthesise, texts.all_fixed())
        self.agi.add_route("revisit", RevisitRoute(self.revisits, texts, prompts).run)
        dialer = self.revisit_dialer = RevisitDialer(
            self.revisits, self.ami, prompts, texts,
            DialOptions(dial=s.outbound_dial, hotline_number=s.hotline_number,
                        tick_s=s.revisit_tick_s),
            engine_id(s.data_dir), callbacks=self.callback_retries,
        )  # fmt: skip
        self.ami.on("Hangup", dialer.on_hangup)
        self.loops.start("revisit-dialer", lambda: dialer.run(self._stopping))
        return lambda app: revisit_http.add_routes(app, self.revisits)

    async def _stop_playback(self, channel: str, who: str) -> None:
        """Cut an announcement short (the caller's seat is ringing)."""
        try:
            await self.ami.action({"Action": "ControlPlayback", "Channel": channel,
                                   "Control": "stop"})  # fmt: skip
        except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
            log.debug("%s: announcement not stopped (%s); it plays to its end", who, exc)

    async def _wake_caller(self, channel: str, digit: str, who: str) -> None:
        """End a waiting caller's WAIT FOR DIGIT now (its seat was chosen): ``digit`` is
        queued on the channel as if received from the caller (AMI PlayDTMF, Receive)."""
        try:
            await self.ami.action({"Action": "PlayDTMF", "Channel": channel, "Digit": digit,
                                   "Duration": "100", "Receive": "true"})  # fmt: skip
        except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
            log.warning("%s: wait not ended (%s); the seat rings when it ends by itself", who,
                        exc)  # fmt: skip

    async def _redirect(self, channel: str, context: str, exten: str, extra: str = "") -> None:
        """Move a channel in the dialplan (a transfer), and ``extra`` with it to the same
        place: AMI Redirect, class call."""
        action = {"Action": "Redirect", "Channel": channel, "Context": context, "Exten": exten,
                  "Priority": "1"}  # fmt: skip
        if extra:
            action |= {"ExtraChannel": extra, "ExtraContext": context, "ExtraExten": exten,
                       "ExtraPriority": "1"}  # fmt: skip
        await self.ami.action(action)

    async def _dial_into(self, number: str, context: str, exten: str) -> None:
        """Dial ``number`` through the trunk (the callback's dial string) into the dialplan:
        AMI Originate, class originate, answered later (Async)."""
        s = self.settings
        await self.ami.action({
            "Action": "Originate", "Channel": s.outbound_dial.channel(number),
            "Context": context, "Exten": exten, "Priority": "1", "Async": "true",
            "Timeout": str(s.transfer_ring_s * 1000), "CallerID": s.hotline_number,
        })  # fmt: skip

    async def _hangup_channel(self, channel: str) -> None:
        try:
            await self.ami.action({"Action": "Hangup", "Channel": channel})
        except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
            log.warning("channel %s not hung up (%s)", channel, exc)

    async def _end_ring(self, seat: str) -> None:
        """Hang up the ring to a seat whose softphone went away (the ACD requeued the call)."""
        try:
            await self.ami.action({"Action": "Hangup", "Channel": f"/^PJSIP\\/{seat}-.*$/"})
        except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
            log.warning("seat %s: ring not ended (%s); it runs to its timeout", seat, exc)

    def _acd_routes(self, app: web.Application) -> None:
        seats_http.add_routes(app, self.acd, self.dispatcher.kick)
        stats_http.add_routes(app, self.stats)
        callback_retries.add_routes(app, self.callback_retries)
        transfer_http.add_routes(app, self.transfers)
        app.router.add_routes(self.consultations.routes())

    def _supervisor_controls(self, app: web.Application) -> None:
        """A supervisor's listen-in on a seat's call, and the announcements before the menu."""

        def phones() -> set[str]:  # the seats file's softphones, as reloaded
            return {seat.extension for seat in self.acd.seats.seats}

        audit = self.accounts.accounts.audit
        listen_in.add_routes(app, ListenIn(self.ami, self.acd, phones, audit))
        announcements_http.add_routes(app, self.announcements)

    def _live_routes(self, app: web.Application) -> None:
        """Live events, and the operator's desk that pops with each call put through."""
        live_http.add_routes(app, self.live)
        desk = Desk(self.calls, self.work_orders, self.acd, self.transfers.targets,
                    self.consultations.about)  # fmt: skip
        self.live.call_context = desk.connected
        desk_http.add_routes(app, desk)
        # The department portal: news of its orders on its page, by e-mail and by SMS.
        limits = self.work_orders.limits
        senders: list[DepartmentSender] = []
        for sender in (department_mail(self.settings, limits),
                       department_sms(self.settings, limits)):  # fmt: skip
            if sender is not None:
                senders.append(sender)
                self.loops.start(f"department-{sender.outbox.channel.lower()}",
                                 partial(sender.run, self._stopping))  # fmt: skip
        portal = Portal(self.work_orders, self.live, senders)
        self.work_orders.on_department_news = portal.news
        portal_http.add_routes(app, portal)

    async def stats(self, since: float | None = None) -> dict[str, Any]:
        """Queue figures for supervisors (``GET /api/stats``, ``hotline stats``)."""
        return await queue_figures(
            self._sessions, await self.acd.snapshot(), since=since,
            service_level_s=self.settings.service_level_s,
        )  # fmt: skip

    async def reload_seats(self) -> dict[str, Any]:
        """Apply an edited seats file: PJSIP and queues.conf by reload, the ACD by registration,
        and this engine's own seats (feature codes, routing). Returns what changed."""
        seats = load_seats(self.settings.seats_file)
        check_menu_queues(self.menu, seats)
        asterisk = ""
        if self.asterisk is not None:
            asterisk = await asyncio.to_thread(reload_asterisk, self.settings, self.menu, seats)
        if self.kamailio is not None:
            kamailio = await asyncio.to_thread(reload_kamailio, self.settings, seats)
            asterisk = f"{asterisk}\n{kamailio}".strip()
        added, updated, removed = await self.acd.register_seats(seats)
        self.seats = seats
        self.dispatcher.kick()
        log.info("seats file %s applied: %d seats", self.settings.seats_file, len(seats.seats))
        return {"added": added, "updated": updated, "removed": removed, "asterisk": asterisk}

    async def stop(self) -> None:
        """Take down, in reverse order, what :meth:`start` brought up."""
        log.info("stopping the hotline")
        await self._stack.aclose()
        if self._hangups:
            await asyncio.gather(*self._hangups, return_exceptions=True)

    # -- AMI events -----------------------------------------------------------------------

    def _on_hangup(self, event: Message) -> None:
        uniqueid = event.get("Uniqueid", "")
        if not uniqueid or uniqueid != event.get("Linkedid", uniqueid):
            return  # only the citizen's own channel closes the call record
        cause = self._hangup_causes.final(event)
        task = asyncio.create_task(
            self.calls.close(uniqueid, cause=cause.code, cause_text=cause.text)
        )
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)

    # -- health ---------------------------------------------------------------------------

    async def _check_asterisk(self) -> None:
        """A managed Asterisk: its process (the watchdog's cheap check); any Asterisk: an AMI
        Ping while AMI is up. No Asterisk command is started per check."""
        if self.watchdog is not None:
            await self.watchdog.check()
        if self.asterisk is None or self.ami.connected:
            await self.ami.action({"Action": "Ping"})

    async def _check_ami(self) -> None:
        if not self.ami.connected:
            raise RuntimeError(f"AMI not connected: {self.ami.last_error}")

    async def _check_agi(self) -> None:
        if not self.agi.serving:
            raise RuntimeError("FastAGI server not listening")

    async def _check_redis(self) -> None:
        await self._redis.ping()
