"""The ``hotline`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accounts.cli import add_arguments as add_users_arguments
from hotline.settings import Settings, SettingsError
from knowledge.cli import add_arguments as add_knowledge_arguments
from revisit.cli import add_arguments as add_revisits_arguments

if TYPE_CHECKING:
    from hotline.instance import RunningInstance

log = logging.getLogger("hotline")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO), format=LOG_FORMAT
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up is not news
    try:
        result: int = args.func(settings, args)
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 citizen service hotline")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start Asterisk and the engine; run until Ctrl-C")
    up.set_defaults(func=_up)

    pbx = sub.add_parser("asterisk", help="the local Asterisk 22 instance")
    pbx.add_argument("action", choices=["provision", "start", "stop", "status", "reload"])
    pbx.set_defaults(func=_asterisk)

    kam = sub.add_parser("kamailio", help="the Kamailio in front of several Asterisk boxes")
    kam.add_argument("action", choices=["provision", "start", "stop", "status"])
    kam.set_defaults(func=_kamailio)

    calls = sub.add_parser("calls", help="list recent call records")
    calls.add_argument("--json", action="store_true", help="print JSON")
    calls.add_argument("--limit", type=int, default=20)
    calls.set_defaults(func=_calls)

    seats = sub.add_parser("seats", help="operator seats: list, or apply an edited seats file")
    seats.add_argument("action", choices=["list", "reload"])
    seats.add_argument("--json", action="store_true", help="print JSON")
    seats.set_defaults(func=_seats)

    stats = sub.add_parser("stats", help="live queue statistics from the ACD's event log")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.add_argument("--since", type=float, default=None, help="epoch seconds (default 24 h)")
    stats.set_defaults(func=_stats)

    transcribe = sub.add_parser(
        "transcribe", help="transcribe a folder of past recordings with Vosk (progress on stderr)"
    )
    transcribe.add_argument("folder", type=Path)
    transcribe.add_argument("--workers", type=int, default=0, help="default: the setting")
    transcribe.set_defaults(func=_transcribe)

    worker = sub.add_parser(
        "worker", help="take transcription jobs from the hotline's Redis (any machine that "
        "reaches it and the recordings folder)",
    )  # fmt: skip
    worker.add_argument("--processes", type=int, default=1, help="worker processes (one a core)")
    worker.add_argument("--parent", type=int, default=0, help=argparse.SUPPRESS)
    worker.set_defaults(func=_worker)

    users = sub.add_parser(
        "users", help="accounts: add, passwd, bind, disable, enable, list, token, audit"
    )
    add_users_arguments(users)
    users.set_defaults(func=_users)

    knowledge = sub.add_parser(
        "knowledge", help="the knowledge base: import FILE (.json, .csv) or export"
    )
    add_knowledge_arguments(knowledge)
    knowledge.set_defaults(func=_knowledge)

    revisits = sub.add_parser("revisits", help="revisit calls: list, show N, run-now")
    add_revisits_arguments(revisits)
    revisits.set_defaults(func=_revisits)

    menu = sub.add_parser("menu", help="validate the IVR menu file and synthesise its prompts")
    menu.add_argument("--check-only", action="store_true", help="validate, make no prompts")
    menu.set_defaults(func=_menu)
    return parser


def _up(settings: Settings, _args: argparse.Namespace) -> int:
    from agents.seats import SeatsError
    from hotline.engine import Hotline
    from hotline.lock import AlreadyRunning, data_dir_lock
    from ivr.menu import MenuError
    from pbx.root import ProvisionError
    from queueing.redis_server import RedisServerError

    async def run() -> None:
        hotline = Hotline(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await hotline.start()
            log.info("press Ctrl-C to stop")
            await stop.wait()
        finally:
            await hotline.stop()

    try:
        with data_dir_lock(settings.data_dir):
            _log_to_file(settings)
            asyncio.run(run())
    except AlreadyRunning as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    except MenuError as exc:
        print(f"hotline: the menu file is refused:\n{exc}", file=sys.stderr)
        return 2
    except SeatsError as exc:
        print(f"hotline: the seats file is refused: {exc}", file=sys.stderr)
        return 2
    except (ProvisionError, RedisServerError, OSError) as exc:
        # What started was taken down again (Hotline.start unwinds); one line says why.
        print(f"hotline: did not start: {exc}", file=sys.stderr)
        return 1
    return 0


def _log_to_file(settings: Settings) -> None:
    """`hotline up` logs to data_dir/hotline.log too (rotated at 10 MB, five kept)."""
    from logging.handlers import RotatingFileHandler

    from hotline.private import private_dir

    path = private_dir(settings.data_dir) / "hotline.log"
    handler = RotatingFileHandler(path, maxBytes=10_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    log.info("logging to %s", path)


def _asterisk(settings: Settings, args: argparse.Namespace) -> int:
    from hotline import wiring
    from ivr.menu import load_menu
    from pbx.config import render_all, write_config

    instance = wiring.asterisk_instance(settings)
    if args.action == "provision":
        wiring.provision_asterisk(settings, load_menu(settings.menu_file))
        print(f"Asterisk root ready; instance config in {instance.etc_dir}")
    elif args.action == "start":
        wiring.provision_asterisk(settings, load_menu(settings.menu_file))
        print(f"Asterisk running (pid {instance.start()})")
    elif args.action == "stop":
        instance.stop()
    elif args.action == "status":
        running = instance.is_running()
        print(instance.cli("core show uptime").stdout.strip() if running else "Asterisk stopped")
        return 0 if running else 3
    elif args.action == "reload":
        config = wiring.pbx_config(settings, load_menu(settings.menu_file))
        changed = write_config(instance.etc_dir, render_all(config), instance.owner())
        print(f"changed: {', '.join(changed) or 'nothing'}")
        print(instance.reload())
    return 0


def _kamailio(settings: Settings, args: argparse.Namespace) -> int:
    from hotline import wiring
    from pbx.kamailio import ping

    if args.action in {"provision", "start"}:
        proxy = wiring.provision_kamailio(settings)
        print(f"Kamailio config in {proxy.config_file}")
        if args.action == "start":
            print(f"Kamailio running (pid {proxy.start()}) on {proxy.host}:{proxy.port}")
        return 0
    proxy = wiring.kamailio_proxy(settings)
    if args.action == "stop":
        proxy.stop()
        return 0
    if not ping(proxy.host, proxy.port):
        print(f"Kamailio does not answer on {proxy.host}:{proxy.port}")
        return 3
    print(proxy.boxes())
    return 0


def _instance(settings: Settings) -> tuple[Settings, RunningInstance | None]:
    """The settings of the hotline running in ``settings.data_dir`` (else ``settings``);
    says on stderr which instance the command reads."""
    from hotline.instance import describe, running_instance

    running = running_instance(settings.data_dir)
    if running is not None:
        print(f"hotline: the hotline running as pid {running.pid}: {describe(running.settings)}",
              file=sys.stderr)  # fmt: skip
        return running.settings, running
    print(f"hotline: no hotline running in {settings.data_dir}; reading {describe(settings)}",
          file=sys.stderr)  # fmt: skip
    return settings, None


def _acd(settings: Settings) -> tuple[Any, Any]:
    import redis.asyncio as aioredis

    from agents.seats import load_seats
    from hotline.wiring import redis_url
    from queueing.acd import Acd

    redis = aioredis.Redis.from_url(redis_url(settings), socket_timeout=settings.network_timeout_s)
    return redis, Acd(redis, load_seats(settings.seats_file), prefix=settings.acd_prefix)


def _seats(settings: Settings, args: argparse.Namespace) -> int:
    from agents.seats import SeatsError
    from hotline.control import ControlError, request_seats_reload

    settings, running = _instance(settings)

    async def run() -> list[dict[str, object]]:
        if args.action == "reload":
            if running is not None:  # the engine owns its seats: it reloads them itself
                changed = await request_seats_reload(running)
                if changed["asterisk"]:
                    print(changed["asterisk"])
            else:
                changed = await _reload_without_engine(settings)
            print("seats registered in the ACD: {added} added, {updated} updated, "
                  "{removed} removed".format(**changed))  # fmt: skip
        redis, acd = _acd(settings)
        try:
            snapshot = await acd.snapshot()
        finally:
            await redis.aclose()
        return [{"extension": s.extension, "state": s.state.value, "reason": s.reason}
                for s in snapshot.seats]  # fmt: skip

    try:
        seats = asyncio.run(run())
    except (SeatsError, ControlError) as exc:
        print(f"hotline: the seats file is refused: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(seats, indent=2))
    else:
        for seat in seats:
            print(f"{seat['extension']:>8}  {seat['state']:<11} {seat['reason']}")
    return 0


async def _reload_without_engine(settings: Settings) -> dict[str, Any]:
    """No engine runs: apply the seats file to Asterisk (if it runs) and the ACD in Redis."""
    from agents.seats import load_seats
    from hotline import wiring
    from ivr.menu import load_menu

    seats = load_seats(settings.seats_file)
    asterisk = ""
    if await asyncio.to_thread(wiring.asterisk_instance(settings).is_running):
        menu = load_menu(settings.menu_file)
        asterisk = await asyncio.to_thread(wiring.reload_asterisk, settings, menu, seats)
    redis, acd = _acd(settings)
    try:
        added, updated, removed = await acd.register_seats(seats)
    finally:
        await redis.aclose()
    return {"added": added, "updated": updated, "removed": removed, "asterisk": asterisk}


def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from hotline.database import create_schema, make_engine, make_sessions
    from queueing.stats import EventLogWriter, queue_figures

    settings, _running = _instance(settings)

    async def run() -> dict[str, Any]:
        redis, acd = _acd(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.effective_database_url)
        try:
            await create_schema(engine)
            sessions = make_sessions(engine)
            writer = EventLogWriter(redis, settings.acd_prefix, sessions)
            writer.last_id = await writer._resume_point()
            await writer.catch_up()  # harmless beside a running engine's writer: same rows
            return await queue_figures(sessions, await acd.snapshot(), since=args.since,
                                       service_level_s=settings.service_level_s)  # fmt: skip
        finally:
            await redis.aclose()
            await engine.dispose()

    figures = asyncio.run(run())
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
        return 0
    for q in [figures["overall"], *figures["queues"]]:
        print(f"{q['queue']:<14} waiting {q['waiting']:>3}  answered {q['answered']:>4}  "
              f"abandoned {q['abandoned']:>4}  SL {q['service_level']}  ASA {q['asa_s']}  "
              f"AHT {q['aht_s']}")  # fmt: skip
    print("seats:", ", ".join(f"{k} {v}" for k, v in figures["seats_by_state"].items()))
    return 0


def _calls(settings: Settings, args: argparse.Namespace) -> int:
    from calls.store import CallStore
    from hotline.database import create_schema, make_engine, make_sessions

    settings, _running = _instance(settings)

    async def fetch() -> list[dict[str, Any]]:
        engine = make_engine(settings.effective_database_url)
        try:
            await create_schema(engine)
            return await CallStore(make_sessions(engine)).recent(args.limit)
        finally:
            await engine.dispose()

    calls = asyncio.run(fetch())
    if args.json:
        print(json.dumps(calls, ensure_ascii=False, indent=2))
        return 0
    for call in calls:
        ended = call["hangup_cause_text"] or ("in progress" if not call["ended_at"] else "-")
        print(
            f"{call['started_at'][:19]}  {call['caller_number'] or '(unknown)':>15}  "
            f"{call['language'] or '-':3} {call['route'] or '-':28} {ended}"
        )
    return 0


def _users(settings: Settings, args: argparse.Namespace) -> int:
    from accounts.cli import users_command
    from agents.seats import load_seats
    from hotline.database import create_schema, make_engine, make_sessions
    from hotline.private import private_dir
    from hotline.wiring import accounts_web

    settings, _running = _instance(settings)
    private_dir(settings.data_dir)  # a fresh installation: accounts before the first start

    async def run() -> int:
        engine = make_engine(settings.effective_database_url)
        try:
            await create_schema(engine)
            web = await accounts_web(
                settings, make_sessions(engine), load_seats(settings.seats_file)
            )
            return await users_command(web.accounts, args)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _knowledge(settings: Settings, args: argparse.Namespace) -> int:
    from hotline.database import create_schema, make_engine, make_sessions
    from hotline.private import private_dir
    from hotline.wiring import knowledge_base, work_orders
    from knowledge.cli import knowledge_command

    settings, _running = _instance(settings)
    private_dir(settings.data_dir)  # a fresh installation: the knowledge before the first start

    async def run() -> int:
        engine = make_engine(settings.effective_database_url)
        try:
            await create_schema(engine)
            service = await knowledge_base(work_orders(make_sessions(engine)))
            return await knowledge_command(service, args)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _revisits(settings: Settings, args: argparse.Namespace) -> int:
    from hotline.database import create_schema, make_engine, make_sessions
    from hotline.private import private_dir
    from hotline.wiring import revisits, work_orders
    from revisit.cli import revisits_command

    settings, _running = _instance(settings)
    private_dir(settings.data_dir)

    async def run() -> int:
        engine = make_engine(settings.effective_database_url)
        try:
            await create_schema(engine)
            sessions = make_sessions(engine)
            return await revisits_command(revisits(settings, sessions, work_orders(sessions)), args)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from hotline.wiring import intake_config
    from speech.batch import transcribe_command

    model = intake_config(settings).vosk_model_dir
    return transcribe_command(args.folder, model, args.workers or settings.transcription_workers)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    """One worker in this process, or ``--processes N`` of them supervised (restarted when
    one dies) until Ctrl-C or SIGTERM."""
    from hotline.wiring import local_workers, worker_config
    from speech.errors import ModelMissingError
    from speech.worker import JobWorker

    config = worker_config(settings, args.parent)
    if config is None:
        print("hotline: no Vosk model configured: set vosk_model_dir (HOTLINE_VOSK_MODEL_DIR)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.processes > 1:
        workers = local_workers(settings, args.processes)

        async def supervise() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            workers.start()
            try:
                await workers.supervise(stop)
            finally:
                await asyncio.to_thread(workers.stop)

        asyncio.run(supervise())
        return 0
    try:
        JobWorker(config).run()
    except ModelMissingError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    return 0


def _menu(settings: Settings, args: argparse.Namespace) -> int:
    from ivr.menu import MenuError, load_menu
    from ivr.order_status import DEFAULT_FILE, StatusTextError, StatusTexts
    from ivr.prompts import PromptLibrary
    from workorders.states import State

    try:
        menu = load_menu(settings.menu_file)
        # the words of 3 + number + #, in every menu language, as the engine checks at start
        StatusTexts.load(DEFAULT_FILE, languages=menu.languages, states=State)
    except (MenuError, StatusTextError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    print(f"{settings.menu_file}: {len(menu.nodes)} nodes, languages {', '.join(menu.languages)}")
    if not args.check_only:
        report = PromptLibrary(settings.prompts_dir, menu.voices).ensure(menu)
        print(f"prompts in {settings.prompts_dir}: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
