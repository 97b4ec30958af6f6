"""Logs an operator can read: `hotline up` writes its own log file, a missing Vosk model is
one INFO line, phone numbers are masked, and a call leaves no errors in Asterisk's log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from conftest import TEST_REDIS_URL, eventually, new_caller
from seat_calls import REPORT

from calls.callerid import mask_number
from hotline.engine import Hotline
from hotline.settings import PROJECT_DIR
from sipsim.citizen import place_call

OFFSET = int(os.environ.get("HOTLINE_TEST_PORT_OFFSET", "0"))


def test_mask_number() -> None:
    assert mask_number("13800010001") == "138****0001"
    assert mask_number("+8613800010001") == "+861******0001"
    assert mask_number("138-0001-0001") == "138****0001"
    assert mask_number("12345") == "***45"
    assert mask_number("anonymous") == "anonymous"
    assert mask_number(None) == mask_number("") == "-"


async def test_hotline_up_writes_its_log_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    web_port = 8565 + OFFSET
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(
        PYTHONPATH=str(PROJECT_DIR),
        HOTLINE_DATA_DIR=str(data_dir),
        HOTLINE_RECORDINGS_DIR=str(tmp_path / "recordings"),
        HOTLINE_MANAGE_ASTERISK="false",
        HOTLINE_REDIS_URL=TEST_REDIS_URL,
        HOTLINE_ACD_PREFIX=f"logs-{os.getpid()}:acd:",
        HOTLINE_AMI_PORT=str(5258 + OFFSET),
        HOTLINE_AGI_PORT=str(4793 + OFFSET),
        HOTLINE_WEB_PORT=str(web_port),
    )
    up = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline.cli", "up", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip

    async def answering() -> bool:
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{web_port}/healthz") as response:
                    return response.status in (200, 503)
        except aiohttp.ClientError:
            return False

    async def answering_or_exited() -> bool:
        return up.returncode is not None or await answering()

    try:
        await eventually(answering_or_exited, 90, "hotline up to serve /healthz")
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(up.communicate(), 60)
    assert up.returncode == 0, stderr.decode()[-2000:]
    log_file = data_dir / "hotline.log"
    assert f"logging to {log_file}" in stderr.decode()
    text = await asyncio.to_thread(log_file.read_text, encoding="utf-8")
    assert "hotline ready" in text and "stopping the hotline" in text
    vosk = [line for line in text.splitlines() if "no Vosk model configured" in line]
    assert len(vosk) == 1 and " INFO " in vosk[0], vosk
    assert " ERROR " not in text, text


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_call_leaves_no_full_number_and_no_asterisk_errors(
    hotline: Hotline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A citizen's call through the IVR into a queue: the engine's log names the caller only
    masked, and Asterisk's messages.log gains no ERROR or WARNING line."""
    assert hotline.asterisk is not None
    messages = hotline.asterisk.root / "var/log/asterisk/messages.log"
    before = messages.stat().st_size if messages.exists() else 0
    caller = new_caller()
    s = hotline.settings
    caplog.set_level("INFO")
    result = await place_call(
        tmp_path, sip_host=s.sip_host, sip_port=s.sip_port, service=s.hotline_number,
        caller=caller, presses=REPORT, hold_ms=4000,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    await asyncio.sleep(1)  # the hangup's events and log lines
    assert mask_number(caller) in caplog.text
    assert caller not in caplog.text
    with messages.open(encoding="utf-8", errors="replace") as log:
        log.seek(before)
        added = log.read()
    noise = [line for line in added.splitlines() if "ERROR[" in line or "WARNING[" in line]
    assert not noise, "\n".join(noise)
