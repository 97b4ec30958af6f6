"""A real headless browser for page tests: Debian's chromium driven by Playwright (which
downloads no browser of its own here; scripts/setup.sh --test installs chromium).

Use it from a test module with ``from browser import browser  # noqa: F401`` and ask for the
``browser`` fixture; each test opens its own context (cookies apart) with :func:`new_page`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-background-networking",  # nothing leaves the machine
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HAVE_CHROMIUM = CHROMIUM.is_file()
DOCS = Path(__file__).resolve().parent.parent / "docs"


async def screenshot(page: Page, name: str, workdir: Path, *, full_page: bool = True) -> Path:
    """A picture of ``page``: into the test's ``workdir``, or, with
    ``HOTLINE_SCREENSHOTS=docs``, as the README's ``docs/<name>.png`` (a test run never
    changes the checkout unless asked)."""
    folder = DOCS if os.environ.get("HOTLINE_SCREENSHOTS") == "docs" else workdir
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert HAVE_CHROMIUM, f"{CHROMIUM} missing: run scripts/setup.sh --test"
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def new_context(browser: Browser, base_url: str) -> BrowserContext:
    """A fresh context (its own cookies) whose relative URLs go to ``base_url``."""
    context = await browser.new_context(base_url=base_url, locale="zh-CN")
    context.set_default_timeout(10_000)
    return context


async def log_in(page: Page, name: str, password: str, then: str = "") -> None:
    """Log in through the login form; the page lands on ``then`` (or the role's page)."""
    await page.goto(f"/login?next={then}" if then else "/login")
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
