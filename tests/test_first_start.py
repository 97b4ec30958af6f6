"""A new installation's first start makes the accounts a newcomer logs in with (admin, a
supervisor, an operator bound to the first seat), passwords generated into secrets.toml;
a later start, or one that finds any account, makes none."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from conftest import running, web_engine_settings

from accounts.users import AccountRole
from hotline.secrets import stored_secret
from hotline.settings import Settings
from sipsim.ports import SHIFTS

FIRST_START_PORT_SHIFT = SHIFTS["first-start"]


def settings_of(base: Path) -> Settings:
    return web_engine_settings(base, "first-start", FIRST_START_PORT_SHIFT).replace(
        first_accounts=True
    )


async def log_in(url: str, name: str, password: str) -> int:
    """The login form's answer: 303 to the role's page, 401 for a wrong password."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(url + "/login") as page:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
        assert token is not None
        form = {"csrf_token": token.group(1), "name": name, "password": password}
        async with http.post(url + "/login", data=form, allow_redirects=False) as answer:
            return answer.status


async def test_first_start_makes_the_accounts_a_newcomer_logs_in_with(tmp_path: Path) -> None:
    s = settings_of(tmp_path)
    url = f"http://{s.web_host}:{s.web_port}"
    async with running(s) as hotline:
        users = {u.name: (u.role, u.extension) for u in await hotline.accounts.accounts.users()}
        first_seat = hotline.seats.seats[0].extension
        assert users == {
            "admin": (AccountRole.ADMIN, ""),
            "lead": (AccountRole.SUPERVISOR, ""),
            f"op{first_seat}": (AccountRole.OPERATOR, first_seat),
        }
        secrets_file = s.data_dir / "secrets.toml"
        assert secrets_file.stat().st_mode & 0o777 == 0o600
        password = stored_secret(s.data_dir, "user-lead")
        assert password not in (s.data_dir / "hotline.db").read_bytes().decode("latin-1")
        assert await log_in(url, "lead", password) == 303
        assert await log_in(url, f"op{first_seat}", password) == 401  # not its password
        operator = stored_secret(s.data_dir, f"user-op{first_seat}")
        assert await log_in(url, f"op{first_seat}", operator) == 303
        await hotline.accounts.accounts.set_disabled("admin", actor="test")
    async with running(s) as hotline:  # a later start: nothing made again, nothing changed
        again = await hotline.accounts.accounts.users()
        assert sorted(u.name for u in again) == sorted(users)
        assert [u.name for u in again if u.disabled] == ["admin"]
        assert await log_in(url, "lead", password) == 303


async def test_no_first_accounts_when_switched_off(tmp_path: Path) -> None:
    async with running(settings_of(tmp_path).replace(first_accounts=False)) as hotline:
        assert await hotline.accounts.accounts.users() == []
