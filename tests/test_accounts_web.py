"""Accounts through the engine's own web service (``Hotline.start`` without Asterisk: real
SQLite, Redis under a private prefix, every route the engine mounts, the accounts'
middleware): every role on every staff route (allowed, or 401 / 403 in the one error shape),
sessions from the login form, CSRF, expiry, disabled users, the audit log, the old staff file
imported at start; and in real headless Chromium: log in, land on the supervisor page, log
out, a wrong password refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from browser import browser, new_context  # noqa: F401
from conftest import running, web_engine_settings
from playwright.async_api import Browser, expect
from sqlalchemy import select, text, update
from staff import staff_token

from accounts.access import rule_for
from accounts.models import AuditRow, UserRow, WebSessionRow
from accounts.service import THROTTLE_FAILURES, THROTTLE_WINDOW, AccountService
from accounts.users import AccountRole, InvalidAccount
from db.base import utcnow
from hotline.engine import Hotline
from sipsim.ports import SHIFTS

pytestmark = pytest.mark.slow

#: keeps this engine off the e2e engine's and the fuzz engine's ports
ACCOUNTS_PORT_SHIFT = SHIFTS["accounts-web"]
PASSWORD = "correct horse battery"
YANTA = "雁塔区人民政府"
IMPORTED_TOKEN = "imported-department-token-from-staff-toml"


@dataclass
class Staff:
    hotline: Hotline
    url: str
    tokens: dict[str, str]  # user name → bearer token

    @property
    def accounts(self) -> AccountService:
        return self.hotline.accounts.accounts

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def staff(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Staff]:
    s = web_engine_settings(tmp_path_factory.mktemp("accounts"), "accounts", ACCOUNTS_PORT_SHIFT)
    s.data_dir.mkdir(parents=True)
    # an installation from before accounts: its staff file becomes accounts at start
    s.effective_staff_file.write_text(
        f'[[staff]]\ntoken = "{IMPORTED_TOKEN}"\nname = "yanta"\nrole = "department"\n'
        f'department = "{YANTA}"\n',
        "utf-8",
    )
    async with running(s) as hotline:
        accounts = hotline.accounts.accounts
        tokens = {"yanta": IMPORTED_TOKEN}
        for name, role, extension in (("op", AccountRole.OPERATOR, "8001"),
                                      ("lead", AccountRole.SUPERVISOR, ""),
                                      ("admin", AccountRole.ADMIN, "")):  # fmt: skip
            tokens[name] = await staff_token(accounts, name, role, extension=extension,
                                             password=PASSWORD)  # fmt: skip
        await accounts.set_password("yanta", PASSWORD, actor="test")
        yield Staff(hotline, f"http://{s.web_host}:{s.web_port}", tokens)


async def call(
    staff: Staff, method: str, path: str, who: str = "", **kwargs: Any
) -> tuple[int, dict[str, Any] | str, aiohttp.ClientResponse]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, staff.url + path, headers=staff.auth(who), allow_redirects=False, **kwargs
        ) as response,  # fmt: skip
    ):
        if response.content_type == "application/json":
            return response.status, await response.json(), response
        return response.status, await response.text(), response


def refused(body: object, code: str) -> bool:
    """The one error shape of web/errors.py, with this code."""
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and body["error"]["code"] == code
        and bool(body["error"]["message"])
    )


async def an_order(staff: Staff) -> str:
    """A work order led by 雁塔区 (so its department may act on it), made by the operator."""
    status, body, _ = await call(staff, "POST", "/api/workorders", "op", json={
        "channel": "phone", "category": "complaint", "subject": "噪音扰民",
        "description": "小寨附近工地夜间施工", "lead_department": YANTA})  # fmt: skip
    assert status == 201 and isinstance(body, dict), body
    return str(body["number"])


ROLES = ("op", "lead", "yanta", "admin")
SUPERVISORS = {"lead", "admin"}
# (method, path, json body, the roles the access table lets through)
ROUTES: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/supervisor", None, SUPERVISORS),
    ("GET", "/api/calls", None, SUPERVISORS),
    ("GET", "/api/stats", None, SUPERVISORS),
    ("GET", "/api/seats", None, SUPERVISORS),
    ("POST", "/api/seats/8001/pause", {"reason": "break"}, SUPERVISORS | {"op"}),  # op's seat
    ("POST", "/api/seats/8002/pause", {"reason": "break"}, SUPERVISORS),
    ("POST", "/api/seats/8001/transfer", {"to": "queue:business"}, SUPERVISORS | {"op"}),
    ("POST", "/api/seats/8002/transfer", {"to": "emergency:110"}, SUPERVISORS),
    ("GET", "/api/audit", None, {"admin"}),
    ("GET", "/api/me", None, set(ROLES)),
    ("GET", "/api/workorders", None, set(ROLES)),
    ("POST", "/api/workorders", {"channel": "phone", "description": "路灯不亮"}, set(ROLES)),
    ("GET", "/api/workorders/{n}", None, set(ROLES)),
    ("PATCH", "/api/workorders/{n}", {"note": "补充"}, set(ROLES)),
    ("POST", "/api/workorders/{n}/answer", {"answer": "已电话答复"}, set(ROLES)),
    ("GET", "/api/revisits", None, SUPERVISORS),  # an operator: the handler's 403
    ("GET", "/api/revisits?state=manual", None, SUPERVISORS | {"op"}),
    (
        "POST",
        "/api/revisits/{n}/result",
        {"resolved": True, "satisfaction": "satisfied"},
        SUPERVISORS | {"op"},
    ),  # no revisit of a fresh order: 404 from the handler
    ("GET", "/api/callbacks/failed", None, SUPERVISORS),
    ("GET", "/desk", None, {"op"}),  # the operator's desk: operators only
    ("GET", "/api/desk", None, {"op"}),
    ("POST", "/api/seats/8001/consult", {"to": "seat:8003"}, SUPERVISORS | {"op"}),
    ("POST", "/api/seats/8002/consult", {"to": "emergency:110"}, SUPERVISORS),
    ("POST", "/api/seats/8001/consult-complete", {}, SUPERVISORS | {"op"}),
    ("POST", "/api/seats/8002/consult-cancel", {}, SUPERVISORS),
    ("GET", "/api/wallboard", None, SUPERVISORS),
    ("GET", "/api/announcements", None, SUPERVISORS),
    ("GET", "/reports", None, SUPERVISORS),
    ("GET", "/api/reports/daily.json?from=2026-12-01&to=2026-12-07", None, SUPERVISORS),
    ("GET", "/portal", None, {"yanta"}),  # a department's own portal
    ("GET", "/api/portal", None, {"yanta"}),
    ("GET", "/knowledge", None, set(ROLES)),
    ("GET", "/api/knowledge?q=%E5%99%AA%E9%9F%B3", None, set(ROLES)),  # 噪音
]
#: what the work orders' own rules answer a role the access table let through
SERVICE_REFUSES = {
    ("POST", "/api/workorders", "yanta"),
    ("PATCH", "/api/workorders/{n}", "yanta"),
    ("POST", "/api/workorders/{n}/answer", "yanta"),
}


@pytest.mark.parametrize(("method", "route", "body", "allowed"), ROUTES,
                         ids=[f"{m} {r}" for m, r, _, _ in ROUTES])  # fmt: skip
async def test_every_role_on_every_staff_route(
    staff: Staff, method: str, route: str, body: dict[str, Any] | None, allowed: set[str]
) -> None:
    number = await an_order(staff) if "{n}" in route else ""
    path = route.replace("{n}", number)
    kwargs = {"json": body} if body is not None else {}
    # nobody: 401 for the API (with the scheme to use), the login page for a page
    status, answer, response = await call(staff, method, path, **kwargs)
    rule = rule_for(path.partition("?")[0])
    if rule is not None and rule.page:
        assert status == 303 and response.headers["Location"] == f"/login?next={path}"
    else:
        assert status == 401 and refused(answer, "unauthenticated"), answer
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # a token nobody was given: 401 too
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, staff.url + path, headers={"Authorization": "Bearer not-a-token"}, **kwargs
        ) as r,
    ):
        assert r.status == 401 and refused(await r.json(), "unauthenticated")
    for who in ROLES:
        if "{n}" in route:  # a fresh order per role: an action must not meet a changed state
            path = route.replace("{n}", await an_order(staff))
        status, answer, _ = await call(staff, method, path, who, **kwargs)
        if who not in allowed:
            assert status == 403 and refused(answer, "forbidden"), (who, status, answer)
        elif (method, route, who) in SERVICE_REFUSES:
            # through the door; the work orders' own rule said no, in the same shape
            assert status == 403 and refused(answer, "forbidden"), (who, status, answer)
            assert isinstance(answer, dict) and "may not" in answer["error"]["message"]
        else:
            assert status < 400 or status in (404, 409), (who, status, answer)
            if status >= 400:  # the handler answered (a seat not logged in), not the door
                assert isinstance(answer, dict)
                assert answer["error"]["code"] not in ("forbidden", "unauthenticated")


async def test_department_sees_only_its_orders_by_its_imported_token(staff: Staff) -> None:
    """The staff file's entry became an account keeping its token; the file is renamed."""
    data_dir = staff.hotline.settings.data_dir
    assert not (data_dir / "staff.toml").exists()
    assert (data_dir / "staff.toml.imported").is_file()
    user = await staff.accounts.user("yanta")
    assert (user.role, user.department) == (AccountRole.DEPARTMENT, YANTA)
    number = await an_order(staff)
    status, body, _ = await call(staff, "GET", "/api/workorders?limit=1000", "yanta")
    assert status == 200 and isinstance(body, list)
    assert number in {o["number"] for o in body}
    assert all(YANTA in (o["lead_department"], *o["assisting_departments"]) for o in body)
    entries = await staff.accounts.audit_log(1000)
    assert any(e["action"] == "staff_import" and e["detail"] == "1 token(s)" for e in entries)


async def login(http: aiohttp.ClientSession, staff: Staff, name: str, password: str) -> int:
    """The login form as a browser posts it: its token field, the cookie beside it."""
    async with http.get(staff.url + "/login") as page:
        html = await page.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    form = {"csrf_token": token.group(1), "name": name, "password": password, "next": ""}
    async with http.post(staff.url + "/login", data=form, allow_redirects=False) as r:
        return r.status


def session_cookie(http: aiohttp.ClientSession) -> str:
    return next(c.value for c in http.cookie_jar if c.key == "hotline_session")


async def test_session_cookie_csrf_and_logout(staff: Staff) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(staff.url + "/login") as page:
            login_cookie = page.cookies["hotline_login"]
        assert login_cookie["httponly"] and login_cookie["samesite"] == "Strict"
        # the login form without its own token: refused
        async with http.post(staff.url + "/login", data={"name": "lead", "password": PASSWORD,
                                                         "csrf_token": "forged"}) as r:  # fmt: skip
            assert r.status == 403 and refused(await r.json(), "csrf_failed")
        async with http.get(staff.url + "/login") as page:
            html = await page.text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token is not None
        form = {"csrf_token": token.group(1), "name": "lead", "password": PASSWORD}
        async with http.post(staff.url + "/login", data=form, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/supervisor"
            cookie = r.cookies["hotline_session"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["max-age"]
        async with http.get(staff.url + "/supervisor") as r:
            assert r.status == 200 and "/api/wallboard" in await r.text()
        async with http.get(staff.url + "/api/me") as r:
            me = await r.json()
        assert (me["name"], me["role"]) == ("lead", "supervisor") and me["csrf_token"]
        # a state change with the cookie but without the session's CSRF token: refused
        pause = staff.url + "/api/seats/8002/pause"
        async with http.post(pause, json={"reason": "break"}) as r:
            assert r.status == 403 and refused(await r.json(), "csrf_failed")
        async with http.post(pause, json={"reason": "break"},
                             headers={"X-CSRF-Token": "x" * 43}) as r:  # fmt: skip
            assert r.status == 403 and refused(await r.json(), "csrf_failed")
        async with http.post(pause, json={"reason": "break"},
                             headers={"X-CSRF-Token": me["csrf_token"]}) as r:  # fmt: skip
            body = await r.json()
            assert r.status in (200, 409) and body.get("error", {}).get("code") != "csrf_failed"
        # logging out needs the token too (a cross-site form cannot log anybody out)
        async with http.post(staff.url + "/logout", data={"csrf_token": "wrong"}) as r:
            assert r.status == 403 and refused(await r.json(), "csrf_failed")
        cookie_value = session_cookie(http)
        async with http.post(staff.url + "/logout", data={"csrf_token": me["csrf_token"]},
                             allow_redirects=False) as r:  # fmt: skip
            assert r.status == 303 and r.headers["Location"] == "/login"
    # the old cookie is dead on the server, whatever the browser kept
    async with aiohttp.ClientSession() as http:
        headers = {"Cookie": f"hotline_session={cookie_value}"}
        async with http.get(staff.url + "/api/me", headers=headers) as r:
            assert r.status == 401 and refused(await r.json(), "unauthenticated")
    actions = [(e["actor"], e["action"]) for e in await staff.accounts.audit_log(1000)]
    assert ("lead", "login") in actions and ("lead", "logout") in actions
    assert ("lead", "request") in actions  # the pause that passed the CSRF check


async def test_a_forged_or_expired_session_is_refused(staff: Staff) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, staff, "admin", PASSWORD) == 303
        cookie = session_cookie(http)
    session_id, _, signature = cookie.partition(".")
    forged = f"{session_id}.{'0' * len(signature)}"
    async with aiohttp.ClientSession() as http:
        for value, status in ((cookie, 200), (forged, 401), (session_id, 401)):
            async with http.get(staff.url + "/api/me",
                                headers={"Cookie": f"hotline_session={value}"}) as r:  # fmt: skip
                assert r.status == status, value
        # the session's time is up (as if eight hours had passed)
        async with staff.accounts.sessions.begin() as db:
            past = utcnow() - timedelta(seconds=1)
            await db.execute(update(WebSessionRow).values(expires_at=past))
        headers = {"Cookie": f"hotline_session={cookie}"}
        async with http.get(staff.url + "/api/me", headers=headers) as r:
            body = await r.json()
            assert r.status == 401 and refused(body, "unauthenticated")
            assert "expired" in body["error"]["message"]
        async with http.get(staff.url + "/supervisor", headers=headers,
                            allow_redirects=False) as r:  # fmt: skip
            assert r.status == 303 and r.headers["Location"].startswith("/login")


async def test_wrong_password_and_disabled_user_are_refused(staff: Staff) -> None:
    token = await staff_token(staff.accounts, "leaver", AccountRole.SUPERVISOR, password=PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, staff, "leaver", "wrong password!") == 401
        assert await login(http, staff, "nobody", PASSWORD) == 401
        assert await login(http, staff, "leaver", PASSWORD) == 303
        cookie = session_cookie(http)
    await staff.accounts.set_disabled("leaver", actor="admin")
    async with aiohttp.ClientSession() as http:
        async with http.get(staff.url + "/api/calls",
                            headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
            assert r.status == 401 and refused(await r.json(), "unauthenticated")
        async with http.get(staff.url + "/api/calls",
                            headers={"Cookie": f"hotline_session={cookie}"}) as r:  # fmt: skip
            assert r.status == 401 and refused(await r.json(), "unauthenticated")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, staff, "leaver", PASSWORD) == 401  # right password, disabled
    failures = [e for e in await staff.accounts.audit_log(1000) if e["action"] == "login_failed"]
    assert {(e["target"], e["detail"]) for e in failures} >= {
        ("leaver", "wrong password"),
        ("nobody", "unknown user"),
        ("leaver", "disabled"),
    }
    assert all(e["at"] for e in failures)


async def test_password_guessing_is_throttled(staff: Staff) -> None:
    """After THROTTLE_FAILURES wrong passwords within the window, even the right one is
    refused (and logged) until the window has passed; other users are not affected."""
    await staff_token(staff.accounts, "guessed", AccountRole.SUPERVISOR, password=PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for attempt in range(THROTTLE_FAILURES):
            assert await login(http, staff, "guessed", f"guess number {attempt}") == 401
        assert await login(http, staff, "guessed", PASSWORD) == 401
        assert await login(http, staff, "lead", PASSWORD) == 303
    failures = [e for e in await staff.accounts.audit_log(1000)
                if e["action"] == "login_failed" and e["target"] == "guessed"]  # fmt: skip
    assert [e["detail"] for e in failures][0] == "throttled"
    async with staff.accounts.sessions.begin() as db:  # the window has passed
        await db.execute(update(AuditRow).where(AuditRow.actor == "guessed")
                         .values(at=utcnow() - THROTTLE_WINDOW))  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, staff, "guessed", PASSWORD) == 303


async def test_passwords_are_stored_as_argon2id_hashes(staff: Staff) -> None:
    async with staff.accounts.sessions() as db:
        hashes = (await db.execute(select(UserRow.name, UserRow.password_hash))).all()
        raw = (await db.execute(text("SELECT password_hash FROM users"))).scalars().all()
        tokens = (await db.execute(text("SELECT token_hash FROM api_tokens"))).scalars().all()
    assert {name for name, _ in hashes} >= {"op", "lead", "admin", "yanta"}
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for _, h in hashes if h)
    assert not any(PASSWORD in h for h in raw)
    assert staff.tokens["op"] not in tokens
    assert all(re.fullmatch(r"[0-9a-f]{64}", t) for t in tokens)
    async with staff.accounts.sessions() as db:
        actions = set((await db.execute(select(AuditRow.action))).scalars())
    assert {"user_add", "token_issue", "user_passwd"} <= actions


# -- the pages in a real browser --------------------------------------------------------------


async def test_browser_login_supervisor_page_and_logout(staff: Staff, browser: Browser) -> None:  # noqa: F811
    context = await new_context(browser, staff.url)
    try:
        page = await context.new_page()
        await page.goto("/supervisor")
        await expect(page).to_have_url(re.compile(r"/login\?next=/supervisor$"))
        await page.fill("#name", "lead")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(staff.url + "/supervisor")
        await expect(page.locator("h1")).to_contain_text("Supervisor")
        await expect(page.locator("#who")).to_have_text("lead (supervisor)")
        await expect(page.locator("#updated")).to_contain_text("updated")  # the API answered
        cookies = {c["name"]: c for c in await context.cookies()}
        assert cookies["hotline_session"]["httpOnly"]
        assert cookies["hotline_session"]["sameSite"] == "Strict"
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
        await page.click("#logout")
        await expect(page).to_have_url(staff.url + "/login")
        await page.goto("/supervisor")
        await expect(page).to_have_url(re.compile(r"/login\?next=/supervisor$"))
    finally:
        await context.close()


async def test_browser_wrong_password_is_refused(staff: Staff, browser: Browser) -> None:  # noqa: F811
    context = await new_context(browser, staff.url)
    try:
        page = await context.new_page()
        await page.goto("/login")
        await page.fill("#name", "lead")
        await page.fill("#password", "not the password")
        async with page.expect_response(re.compile(r"/login$")) as answer:
            await page.click("button[type=submit]")
        assert (await answer.value).status == 401
        await expect(page.locator("[role=alert]")).to_contain_text("wrong name or password")
        assert "hotline_session" not in {c["name"] for c in await context.cookies()}
        await page.goto("/supervisor")
        await expect(page).to_have_url(re.compile(r"/login\?next=/supervisor$"))
    finally:
        await context.close()


async def test_browser_operator_cannot_open_the_supervisor_page(
    staff: Staff,
    browser: Browser,  # noqa: F811
) -> None:
    context = await new_context(browser, staff.url)
    try:
        page = await context.new_page()
        await page.goto("/login")
        await page.fill("#name", "op")
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(staff.url + "/desk")  # an operator lands on the desk
        await page.goto("/account")
        await expect(page.locator("#role")).to_have_text("operator")
        response = await page.goto("/supervisor")
        assert response is not None and response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"
    finally:
        await context.close()


async def test_a_supervisors_phone_is_part_of_the_account(staff: Staff) -> None:
    """A supervisor or admin is bound to the seat whose softphone is theirs (shown by
    /api/me): the one owner *25 asks (``supervisor_at``); an operator's seat, a disabled or
    unbound supervisor owns no announcement phone."""
    accounts = staff.accounts
    token = await staff_token(accounts, "boss", AccountRole.SUPERVISOR, extension="8006",
                              password=PASSWORD)  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.get(staff.url + "/api/me",
                            headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
            assert (await r.json())["extension"] == "8006"
    assert (await accounts.supervisor_at("8006")) == await accounts.user("boss")
    assert await accounts.supervisor_at("8001") is None  # the operator op's seat
    assert await accounts.supervisor_at("") is None
    with pytest.raises(InvalidAccount):
        await accounts.bind("boss", extension="9999")  # not a seat of the seats file
    await accounts.add_user("root2", AccountRole.ADMIN, extension="8005", actor="test")
    assert (await accounts.supervisor_at("8005")) == await accounts.user("root2")
    await accounts.set_disabled("root2", actor="test")
    assert await accounts.supervisor_at("8005") is None
    await accounts.bind("boss", extension="", actor="test")
    assert await accounts.supervisor_at("8006") is None
