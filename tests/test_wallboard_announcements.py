"""The wallboard's announcement panel in real headless Chromium, against the engine's own web
service (``Hotline.start`` without Asterisk: the test Redis, the IVR's real synthesiser).

A supervisor types an announcement in both menu languages with an expiry in minutes and posts
it from the page (with the session's CSRF token): it is in ``GET /api/announcements`` with the
texts and that expiry, and the page lists it with the expiry in the hotline's time zone. A form
with no text shows the API's own refusal next to the form and stores nothing; the row's delete
button removes it from the store and the page. A recording (a 16 kHz stereo WAV) uploaded
from the same form is converted to the prompts' 8 kHz mono, stored in Redis beside it and
listed with its length; a file that is no WAV shows the API's refusal."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from browser import browser, log_in, new_context, screenshot  # noqa: F401
from conftest import running, web_engine_settings
from playwright.async_api import Browser, Page, expect
from staff import staff_token
from test_prompts import write_tone

from accounts.users import AccountRole
from hotline.engine import Hotline
from sipsim.ports import SHIFTS

pytestmark = pytest.mark.slow

ANNOUNCEMENT_BOARD_PORT_SHIFT = SHIFTS["wallboard-announcements"]
PASSWORD = "announcement lead password"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hotline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hotline]:
    base = tmp_path_factory.mktemp("announcement-board")
    s = web_engine_settings(base, "announcementboard", ANNOUNCEMENT_BOARD_PORT_SHIFT)
    async with running(s) as engine:
        await staff_token(engine.accounts.accounts, "announce-lead", AccountRole.SUPERVISOR,
                          password=PASSWORD)  # fmt: skip
        yield engine


@asynccontextmanager
async def lead_board(hotline: Hotline, browser: Browser) -> AsyncIterator[Page]:  # noqa: F811
    """The wallboard in a browser context of its own, the announcements' supervisor logged in."""
    s = hotline.settings
    context = await new_context(browser, f"http://{s.web_host}:{s.web_port}")
    try:
        page = await context.new_page()
        await log_in(page, "announce-lead", PASSWORD, "/supervisor")
        yield page
    finally:
        await context.close()


async def test_announcement_added_refused_and_removed_from_the_page(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = hotline.announcements
    assert await store.current() == []
    assert store.languages == ("zh", "en")
    async with lead_board(hotline, browser) as page:
        await expect(page).to_have_url(re.compile(r"/supervisor$"))
        form = page.locator("#announcement-form")
        await expect(form.locator("textarea")).to_have_count(2)  # a text per menu language
        await expect(page.locator("#announcements")).to_contain_text("无 none")

        # No text at all: the API's refusal is shown next to the form, nothing is stored.
        await form.locator("button[type=submit]").click()
        error = page.locator("#announcement-error")
        await expect(error).to_have_text("texts needs a text in at least one menu language")
        assert await store.current() == []

        # Both languages, for 90 minutes.
        await form.locator('textarea[data-lang="zh"]').fill("东城区今日停水，预计18点恢复。")
        await form.locator('textarea[data-lang="en"]').fill("Water outage in Dongcheng until 6 pm.")
        await form.locator("input[name=minutes]").fill("90")
        before = datetime.now(UTC)
        await form.locator("button[type=submit]").click()
        rows = page.locator("#announcements tr[data-announcement]")
        await expect(rows).to_have_count(1)
        after = datetime.now(UTC)
        await expect(error).to_have_text("")
        await expect(form.locator('textarea[data-lang="zh"]')).to_have_value("")

        (made,) = await store.current()
        assert dict(made.texts) == {"zh": "东城区今日停水，预计18点恢复。",
                                    "en": "Water outage in Dongcheng until 6 pm."}  # fmt: skip
        assert made.created_by == "announce-lead"
        window = timedelta(minutes=90)
        assert before + window - timedelta(seconds=2) <= made.expires_at <= after + window
        listed = await page.evaluate(
            "fetch('/api/announcements', {credentials: 'same-origin'}).then(r => r.json())"
        )
        assert listed["languages"] == ["zh", "en"]
        assert [(a["id"], a["texts"], a["expires_at"]) for a in listed["announcements"]] == [
            (made.id, dict(made.texts), made.expires_at.isoformat())
        ]

        row = page.locator(f'#announcements tr[data-announcement="{made.id}"]')
        await expect(row.locator('[data-lang="zh"]')).to_have_text(
            "中文 Chinese: 东城区今日停水，预计18点恢复。"
        )
        await expect(row.locator('[data-lang="en"]')).to_have_text(
            "英文 English: Water outage in Dongcheng until 6 pm."
        )
        zone = hotline.work_orders.limits.timezone  # the hotline's, whatever the browser's
        assert zone.utcoffset(made.expires_at.replace(tzinfo=None)) != timedelta(0)
        local = made.expires_at.astimezone(zone)
        await expect(row.locator("td.expires")).to_have_text(local.strftime("%Y/%m/%d %H:%M:%S"))
        await expect(page.locator("#announcements th").nth(1)).to_contain_text(zone.key)
        await screenshot(page, "wallboard-announcements", tmp_path)

        await row.locator("button[data-remove]").click()
        await expect(rows).to_have_count(0)
        assert await store.current() == []
        await expect(error).to_have_text("")


async def test_a_recording_uploaded_from_the_page(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = hotline.announcements
    async with lead_board(hotline, browser) as page:
        form = page.locator("#announcement-form")
        error = page.locator("#announcement-error")
        not_wav = tmp_path / "notes.wav"
        not_wav.write_text("not a recording", encoding="utf-8")
        await form.locator("input[name=recording]").set_input_files(str(not_wav))
        await form.locator("button[type=submit]").click()
        await expect(error).to_contain_text("the recording is not a WAV file")
        assert await store.current() == []

        upload = write_tone(tmp_path / "outage.wav", rate=16_000, channels=2, seconds=2.0)
        await form.locator("input[name=recording]").set_input_files(str(upload))
        await form.locator("input[name=minutes]").fill("30")
        await form.locator("button[type=submit]").click()
        rows = page.locator("#announcements tr[data-announcement]")
        await expect(rows).to_have_count(1)
        await expect(error).to_have_text("")
        (made,) = await store.current()
        assert made.recording and made.texts == {} and made.seconds == 2.0
        assert made.created_by == "announce-lead"
        await expect(rows.first).to_contain_text("录音 Recording: 2.0 s")
        stored = await hotline.acd.redis.get(store.audio_key(made.id))
        with wave.open(io.BytesIO(stored), "rb") as sound:  # the phone's format, from any WAV
            assert (sound.getframerate(), sound.getnchannels(), sound.getsampwidth()) == (
                8000,
                1,
                2,
            )
            assert sound.getnframes() == 16_000
        assert store.recorded_path(made).with_suffix(".wav").read_bytes() == stored

        await rows.first.locator("button[data-remove]").click()
        await expect(rows).to_have_count(0)
        assert await hotline.acd.redis.get(store.audio_key(made.id)) is None


async def test_the_list_follows_changes_made_elsewhere_and_expiries(
    hotline: Hotline,
    browser: Browser,  # noqa: F811
) -> None:
    """An announcement added or removed elsewhere (another supervisor, the API, a supervisor's
    phone: the engine's store those use) reaches an open wallboard without a reload, through
    the live topic ``announcement``; one that expires leaves the list by itself."""
    store = hotline.announcements
    async with lead_board(hotline, browser) as page:
        await expect(page.locator("#live")).to_have_class("on")
        await expect(page.locator("#announcements")).to_contain_text("无 none")

        later = datetime.now(UTC) + timedelta(minutes=30)
        made = await store.add({"zh": "西城区明日停电。"}, later, "elsewhere")
        row = page.locator(f'#announcements tr[data-announcement="{made.id}"]')
        await expect(row.locator('[data-lang="zh"]')).to_contain_text("西城区明日停电。")
        await store.remove(made.id)
        await expect(row).to_have_count(0)

        brief = await store.add({"en": "Short notice."}, datetime.now(UTC) + timedelta(seconds=4),
                                "elsewhere")  # fmt: skip
        row = page.locator(f'#announcements tr[data-announcement="{brief.id}"]')
        await expect(row).to_have_count(1)
        await expect(row).to_have_count(0, timeout=15_000)  # expired: read again, gone
        await expect(page.locator("#announcements")).to_contain_text("无 none")
