"""Kamailio's rendered configuration and the seats' endpoints behind it (no network)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from conftest import PORT_OFFSET

from agents.pjsip import render_pjsip
from agents.seats import load_seats
from hotline.secrets import stored_secret
from hotline.settings import PROJECT_DIR, Settings
from hotline.wiring import provision_kamailio, reload_kamailio
from pbx.kamailio import KamailioConfig, KamailioProxy, parse_boxes
from pbx.root import ProvisionError

SEATS = load_seats(PROJECT_DIR / "agents" / "seats.toml")
PASSWORDS = {seat.extension: f"secret-{seat.extension}" for seat in SEATS.seats}


def test_seats_behind_kamailio_are_reached_through_it() -> None:
    alone = render_pjsip(SEATS, PASSWORDS)
    behind = render_pjsip(SEATS, PASSWORDS, registrar="127.0.0.1:5070")
    assert "\ncontact=" not in alone and "remove_existing=yes" in alone
    assert "contact=sip:8001@127.0.0.1:5070\n" in behind and "max_contacts" not in behind
    assert behind.count("auth=8001-auth") == 1  # a seat's own calls are still challenged


def test_boxes_are_host_and_port() -> None:
    assert parse_boxes(" 127.0.0.2:5060, 127.0.0.3:5060 ,") == ("127.0.0.2:5060", "127.0.0.3:5060")
    with pytest.raises(ProvisionError):
        parse_boxes("127.0.0.2")


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
def test_rendered_config_is_accepted_by_kamailio(tmp_path: Path) -> None:
    proxy = KamailioProxy(tmp_path / "kamailio", "127.0.0.1", 5070)
    config = KamailioConfig("127.0.0.1", 5070, ("127.0.0.2:5060", "127.0.0.3:5060"), 2, PASSWORDS)
    assert proxy.provision(config) == ["kamailio.cfg", "dispatcher.list"]  # `kamailio -c` passed
    assert (tmp_path / "kamailio" / "dispatcher.list").read_text() == (
        "1 sip:127.0.0.2:5060 0 0\n1 sip:127.0.0.3:5060 0 0\n"
    )
    assert '$sht(seats=>8001) = "secret-8001";' in proxy.config_file.read_text()
    assert proxy.config_file.stat().st_mode & 0o077 == 0  # it holds the seats' passwords
    assert proxy.provision(config) == []


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
def test_an_edited_seats_file_reaches_the_running_kamailio(tmp_path: Path) -> None:
    """`hotline seats reload` (the engine's reload_seats) gives Kamailio the seats without a
    restart: a removed seat can no longer register, the others keep their passwords."""
    settings = Settings.load(environ={}).replace(
        data_dir=tmp_path / "var", kamailio_host="127.0.0.1",
        kamailio_port=7170 + PORT_OFFSET, kamailio_boxes="127.0.0.2:5060",
    )  # fmt: skip
    proxy = provision_kamailio(settings, SEATS)
    proxy.start()
    try:
        fewer = dataclasses.replace(SEATS, seats=SEATS.seats[:-1])
        gone = SEATS.seats[-1].extension
        assert (
            reload_kamailio(settings, fewer)
            == f"Kamailio: {len(fewer.seats)} seats, removed {gone}"
        )
        with pytest.raises(ProvisionError, match="doesn't exist"):
            proxy.rpc("htable.get", "seats", f"s:{gone}")
        kept = proxy.rpc("htable.get", "seats", "s:8001")
        assert f"value: {stored_secret(settings.data_dir, 'seat-8001')}" in kept
        assert proxy.configured_seats() == {seat.extension for seat in fewer.seats}
    finally:
        proxy.stop()
