"""Revisit calls through real faults and real engine processes (``hotline up`` children, so
kill -9 is real) on this module's own Asterisk and the test Redis: kill -9 of the engine
while the citizen is in the survey (the next engine on the same data folder records the
attempt as interrupted at its start and calls again; the second call completes), and two
engines on one database and one Redis, both dialling: each citizen's phone (a sipp UAS)
rings once."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import (
    PORT_OFFSET,
    TEST_ENVIRON,
    engine_ports,
    engine_settings,
    eventually,
    fast_menu,
    fast_seats,
    new_caller,
)
from sqlalchemy.ext.asyncio import async_sessionmaker
from test_revisit_calls import KEYS, answering_phone, dialled, start_phone

from hotline.child import EngineProcess
from hotline.database import create_schema, make_engine, make_sessions
from hotline.secrets import stored_secret
from hotline.settings import Settings
from hotline.wiring import provision_asterisk, revisits, work_orders
from ivr.menu import load_menu
from revisit.service import RevisitService
from sipsim.dtmf import write_dtmf_pcap
from sipsim.ports import SHIFTS
from sipsim.seat import uas_scenario
from workorders.errors import NotFound
from workorders.orders import Actor, NewWorkOrder, Role
from workorders.states import State

pytestmark = [pytest.mark.fault, pytest.mark.e2e, pytest.mark.slow]

SHIFT = SHIFTS["revisit-faults"]
PHONE_PORT = 15399 + PORT_OFFSET  # conftest's CALLBACK_PORT: the phone helpers listen there
LEAD = Actor("fault-supervisor", Role.SUPERVISOR)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Asterisk on this module's ports, no engine; revisits at once, any hour of any day."""
    if os.geteuid() != 0:
        pytest.skip("fault tests run Asterisk in a chroot: they need root")
    base = tmp_path_factory.mktemp("revisit-faults")
    settings = engine_settings(
        Settings.load(environ=TEST_ENVIRON), SHIFT,
        data_dir=base / "var", recordings_dir=base / "recordings",
        menu_file=fast_menu(base / "menu.toml"), seats_file=fast_seats(base / "seats.toml"),
        acd_prefix=f"hotline-revisit-fault-{os.getpid()}:acd:", manage_asterisk=False,
        seat_qualify_s=0, callback_dial=f"PJSIP/citizens/sip:{{number}}@127.0.0.1:{PHONE_PORT}",
        revisit_at_once=True, revisit_calling_hours="00:00-23:59", revisit_calling_days="all",
        revisit_retry_interval_s=2.0, revisit_ring_s=8, revisit_tick_s=0.5,
        rtp_port_start=12000 + 2 * (PORT_OFFSET + SHIFT),
        rtp_port_end=12999 + 2 * (PORT_OFFSET + SHIFT),
    )  # fmt: skip
    asterisk = provision_asterisk(settings, load_menu(settings.menu_file))
    try:
        asterisk.start()
        yield settings
    finally:
        asterisk.stop()
        asterisk.unmount()


@pytest_asyncio.fixture(loop_scope="session")
async def schedule(settings: Settings) -> AsyncIterator[RevisitService]:
    """The revisit schedule in the engines' database, read by the test."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    await create_schema(engine)
    sessions: async_sessionmaker[Any] = make_sessions(engine)
    yield revisits(settings, sessions, work_orders(sessions))
    await engine.dispose()


async def reviewed(schedule: RevisitService, citizen: str) -> str:
    """A work order of ``citizen`` taken to ``reviewed``: due for its revisit at once."""
    orders = schedule.work_orders
    new = NewWorkOrder(channel="phone", caller_phone=citizen, category="help",
                       description="fault", lead_department="fault")  # fmt: skip
    number = (await orders.create(new, LEAD)).number
    for step in ("dispatch", "sign"):
        await getattr(orders, step)(number, LEAD)
    await orders.reply(number, LEAD, "已处理。")
    await orders.review(number, LEAD, passed=True)
    return number


async def test_engine_killed_during_a_revisit_calls_again_after_restart(
    settings: Settings, schedule: RevisitService, tmp_path: Path
) -> None:
    first = EngineProcess(settings, tmp_path / "engine-1.log")
    second = EngineProcess(settings, tmp_path / "engine-2.log")
    silent = await start_phone(tmp_path, uas_scenario(True, 300), "silent")  # answers, no keys
    phone = None
    try:
        first.start()
        await first.ready()
        citizen = new_caller()
        number = await reviewed(schedule, citizen)

        async def in_survey() -> dict[str, Any] | None:
            try:
                view = await schedule.show(number)
            except NotFound:
                return None
            history = view["history"]
            return view if history and history[-1]["answered"] else None

        await eventually(in_survey, 60, "the citizen to answer the first call")
        first.kill()  # mid-survey: the attempt is left in flight in SQL
        view = await schedule.show(number)
        assert view["state"] == "dialing" and view["history"][0]["outcome"] == "in_flight"
        await silent.stop()
        phone = await start_phone(
            tmp_path, answering_phone(write_dtmf_pcap(tmp_path / "ones.pcap", KEYS)), "citizen"
        )
        second.start()
        await second.ready()

        async def done() -> dict[str, Any] | None:
            view = await schedule.show(number)
            return view if view["state"] == "done" else None

        view = await eventually(done, 90, "the second call's result")
    finally:
        for engine in (first, second):
            engine.stop()
        await silent.stop()
        if phone is not None:
            await phone.stop()
    assert [h["outcome"] for h in view["history"]] == ["interrupted", "completed"]
    assert view["attempts"] == 1  # the interrupted call does not count
    assert "was in flight when its engine stopped" in second.text()
    assert dialled(phone) == [citizen] and dialled(silent) == [citizen]
    order = await schedule.work_orders.get(number)
    assert order.state is State.REVISITED and order.satisfaction == "very_satisfied"


async def test_two_engines_ring_each_citizens_phone_once(
    settings: Settings, schedule: RevisitService, tmp_path: Path
) -> None:
    """Engines A and B: two processes, one SQLite database, one Redis, one Asterisk (its
    FastAGI goes to A), both dialling every half second. Orders reviewed together are each
    placed by one of them, once: the phone receives one INVITE per citizen."""
    engine_a = EngineProcess(settings, tmp_path / "engine-a.log")
    b_settings = settings.replace(
        data_dir=tmp_path / "b", database_url=settings.effective_database_url,
        agi_port=engine_ports(SHIFTS["revisit-faults-b"])["agi_port"],
        web_port=engine_ports(SHIFTS["revisit-faults-b"])["web_port"],
        ami_secret=stored_secret(settings.data_dir, "ami_secret"),
    )  # fmt: skip
    engine_b = EngineProcess(b_settings, tmp_path / "engine-b.log")
    phone = await start_phone(
        tmp_path, answering_phone(write_dtmf_pcap(tmp_path / "ones.pcap", KEYS)), "citizen"
    )
    citizens = [new_caller() for _ in range(3)]
    try:
        engine_a.start()
        await engine_a.ready()
        shutil.copytree(settings.prompts_dir, b_settings.prompts_dir)  # no second synthesis
        engine_b.start()
        await engine_b.ready()
        numbers = [await reviewed(schedule, citizen) for citizen in citizens]

        async def done() -> list[dict[str, Any]] | None:
            views = []
            for number in numbers:
                try:
                    views.append(await schedule.show(number))
                except NotFound:
                    return None
            return views if all(v["state"] == "done" for v in views) else None

        views = await eventually(done, 120, "every revisit's result")
    finally:
        for engine in (engine_a, engine_b):
            engine.stop()
        await phone.stop()
    assert sorted(dialled(phone)) == sorted(citizens)  # one INVITE each
    assert [[h["outcome"] for h in v["history"]] for v in views] == [["completed"]] * 3
    placed = engine_a.text().count(": calling") + engine_b.text().count(": calling")
    assert placed == 3, (engine_a.text()[-2000:], engine_b.text()[-2000:])
