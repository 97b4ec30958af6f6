"""``/api/knowledge`` and ``/knowledge`` through the web service's own application
(``web.app.make_app``: the error middleware, the accounts' middleware and access table) with
the knowledge base mounted by the engine's wiring (``hotline.wiring.knowledge_routes``), on
SQLite and PostgreSQL migrated as the engine does: every role reads, supervisors and admins
edit, the rest are refused (401/403); bad input is 400 in the one error shape; a browser
session's change needs its CSRF token; suggestions for a work order's words."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from browser import DOCS, browser, log_in, new_context, screenshot  # noqa: F401
from knowledge_db import knowledge_db
from playwright.async_api import Browser, Dialog, expect
from sql_databases import KINDS
from web_client import KEY, LEAD, OPERATOR, SMS_SECRET, YANTA, staff_accounts

from accounts.http import AccountsWeb, actor_of
from accounts.service import AccountService
from accounts.users import AccountRole
from calls.store import CallStore
from hotline.settings import PROJECT_DIR
from hotline.wiring import knowledge_routes
from knowledge import files
from web.app import WebDeps, make_app
from workorders.http import add_routes
from workorders.orders import Actor, NewWorkOrder, Role
from workorders.service import WorkOrderService

PASSWORD = "correct horse battery"
ADMIN = {"Authorization": "Bearer admin-token"}
READERS = {"operator": OPERATOR, "supervisor": LEAD, "department": YANTA, "admin": ADMIN}
EDITORS = {"supervisor": LEAD, "admin": ADMIN}
REFUSED = {"operator": OPERATOR, "department": YANTA}
ENTRY = {
    "title": "社保卡补办流程",
    "category": "劳动保障/社保卡",
    "content": "社保卡丢失后先挂失，再携带身份证到合作银行网点补办。",
    "issuing_unit": "市人力资源和社会保障局",
    "keywords": ["补办", "挂失"],
}


@dataclass
class Api:
    client: TestClient
    orders: WorkOrderService
    accounts: AccountService


@pytest.fixture(params=KINDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    async with knowledge_db(request.param, tmp_path) as db:
        orders, kb = db.orders, db.service
        accounts = await staff_accounts(orders)
        await accounts.add_user("admin", AccountRole.ADMIN, actor="test")
        await accounts.issue_token("admin", actor="test", token="admin-token")
        await accounts.add_user("lead-web", AccountRole.SUPERVISOR, password=PASSWORD,
                                actor="test")  # fmt: skip
        await accounts.add_user("op-web", AccountRole.OPERATOR, password=PASSWORD,
                                extension="8002", actor="test")  # fmt: skip
        await kb.import_entries(files.read(PROJECT_DIR / "knowledge" / "seed.json"), "test")

        def work_order_mount(app: web.Application) -> None:
            add_routes(app, orders, api_keys=[KEY], staff=actor_of, sms_secret=SMS_SECRET,
                       jurisdiction_id="xian.gov.cn")  # fmt: skip

        deps = WebDeps(CallStore(orders.sessions), {}, AccountsWeb(accounts))
        app = make_app(deps, [work_order_mount, knowledge_routes(kb, orders)])
        async with TestClient(TestServer(app)) as client:
            yield Api(client, orders, accounts)


async def _json(client: TestClient, method: str, path: str, headers: dict[str, str],
                **kwargs: Any) -> tuple[int, Any]:  # fmt: skip
    resp = await client.request(method, path, headers=headers, **kwargs)
    return resp.status, (await resp.json() if resp.status != 204 else None)


async def test_every_staff_role_reads(api: Api) -> None:
    for role, auth in READERS.items():
        status, body = await _json(api.client, "GET", "/api/knowledge?q=社保卡补办", auth)
        assert status == 200, (role, body)
        assert body["terms"] == ["社保卡", "补办"]
        assert body["entries"][0]["title"].startswith("社保卡补办流程"), role
        assert body["entries"][0]["valid"] is True and body["entries"][0]["score"] > 0
        entry_id = body["entries"][0]["id"]
        status, one = await _json(api.client, "GET", f"/api/knowledge/{entry_id}", auth)
        assert status == 200 and one["id"] == entry_id
        page = await api.client.get("/knowledge", headers=auth)
        assert page.status == 200 and "知识库" in await page.text()
    # without q: the entries of a category, by title
    status, body = await _json(api.client, "GET", "/api/knowledge?category=供水", OPERATOR)
    assert status == 200
    assert {e["category"] for e in body["entries"]} == {"供水/停水", "供水/水质"}
    # last winter's heating season is listed only when asked for every entry
    _, valid = await _json(api.client, "GET", "/api/knowledge?q=供暖期", OPERATOR)
    _, every = await _json(api.client, "GET", "/api/knowledge?q=供暖期&all=true", OPERATOR)
    assert len(valid["entries"]) == 1 and len(every["entries"]) == 2
    assert [e["valid"] for e in every["entries"]].count(False) == 1
    # nobody: 401 in the one shape; a browser is sent to the login page
    status, body = await _json(api.client, "GET", "/api/knowledge?q=停水", {})
    assert status == 401 and body["error"]["code"] == "unauthenticated"
    page = await api.client.get("/knowledge", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login?next=/knowledge"


async def test_supervisors_and_admins_edit_the_others_are_refused(api: Api) -> None:
    for role, auth in REFUSED.items():
        status, body = await _json(api.client, "POST", "/api/knowledge", auth,
                                   json={**ENTRY, "title": f"{role} 的条目"})  # fmt: skip
        assert status == 403 and body["error"]["code"] == "forbidden", role
    for role, auth in EDITORS.items():
        status, made = await _json(api.client, "POST", "/api/knowledge", auth,
                                   json={**ENTRY, "title": f"补办指引（{role}）"})  # fmt: skip
        assert status == 201, made
        assert made["updated_by"] in ("李强", "admin") and made["keywords"] == ["补办", "挂失"]
        path = f"/api/knowledge/{made['id']}"
        for refused in REFUSED.values():
            assert (
                await api.client.patch(path, headers=refused, json={"content": "x"})
            ).status == 403
            assert (await api.client.delete(path, headers=refused)).status == 403
        status, changed = await _json(api.client, "PATCH", path, auth,
                                      json={"content": "改为线上补办：登录社保APP。"})  # fmt: skip
        assert status == 200 and changed["content"] == "改为线上补办：登录社保APP。"
        _, found = await _json(api.client, "GET", "/api/knowledge?q=线上补办", OPERATOR)
        assert [e["id"] for e in found["entries"]][:1] == [made["id"]]
        assert (await api.client.delete(path, headers=auth)).status == 204
        status, body = await _json(api.client, "GET", path, OPERATOR)
        assert status == 404 and body["error"]["code"] == "not_found"


async def test_bad_input_is_400_in_one_shape(api: Api) -> None:
    async def refused(method: str, path: str, status: int, code: str, **kwargs: Any) -> str:
        headers = {**LEAD, **kwargs.pop("headers", {})}
        got, body = await _json(api.client, method, path, headers, **kwargs)
        assert (got, body["error"]["code"]) == (status, code), (path, body)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        return str(body["error"]["message"])

    post = "/api/knowledge"
    assert "128" in await refused("POST", post, 400, "invalid_input",
                                  json={**ENTRY, "title": "长" * 129})  # fmt: skip
    await refused("POST", post, 400, "invalid_input", json={**ENTRY, "valid_to": "2026-02-30"})
    await refused("POST", post, 400, "invalid_input", json={**ENTRY, "color": "red"})
    await refused("POST", post, 400, "invalid_input", json={**ENTRY, "content": 5})
    await refused("POST", post, 400, "invalid_input", json=[ENTRY])
    await refused("POST", post, 400, "invalid_input", data=b"{not json",
                  headers={"Content-Type": "application/json"})  # fmt: skip
    await refused("POST", post, 415, "unsupported_media_type", data=b"title=x",
                  headers={"Content-Type": "text/plain"})  # fmt: skip
    seeded = "社保卡补办流程 (Social security card replacement)"
    await refused("POST", post, 409, "duplicate_title", json={**ENTRY, "title": seeded})
    await refused("GET", "/api/knowledge?q=" + "字" * 201, 400, "invalid_input")
    await refused("GET", "/api/knowledge?q=a%00b", 400, "invalid_input")
    await refused("GET", "/api/knowledge?q=x&limit=0", 400, "invalid_input")
    await refused("GET", "/api/knowledge?q=x&all=maybe", 400, "invalid_input")
    await refused("GET", "/api/knowledge/abc", 400, "invalid_input")
    await refused("GET", "/api/knowledge/１２", 400, "invalid_input")  # full-width digits
    await refused("PATCH", "/api/knowledge/999999", 404, "not_found", json={"content": "x"})
    await refused("PATCH", "/api/knowledge/1", 400, "invalid_input", json={})
    await refused("GET", "/api/knowledge/suggest", 400, "invalid_input")


async def test_a_browser_session_changes_with_its_csrf_token_only(api: Api) -> None:
    login = await api.accounts.login("lead-web", PASSWORD)
    assert login is not None
    cookie = {"Cookie": f"hotline_session={login.cookie}"}
    status, body = await _json(api.client, "POST", "/api/knowledge", cookie, json=ENTRY | {
        "title": "跨站请求"})  # fmt: skip
    assert status == 403 and body["error"]["code"] == "csrf_failed"
    csrf = {**cookie, "X-CSRF-Token": login.session.csrf_token}
    status, made = await _json(api.client, "POST", "/api/knowledge", csrf,
                               json={**ENTRY, "title": "页面里新建的条目"})  # fmt: skip
    assert status == 201 and made["updated_by"] == "lead-web"
    status, _ = await _json(api.client, "GET", "/api/knowledge?q=补办", cookie)  # reads: no token
    assert status == 200


async def test_suggestions_for_a_work_order(api: Api) -> None:
    order = await api.orders.create(
        NewWorkOrder(channel="phone", description="我家小区从昨天开始停水了，什么时候恢复供水？"),
        Actor("王敏", Role.OPERATOR),
    )
    assert order.subject == "供水"
    status, body = await _json(api.client, "GET", f"/api/knowledge/suggest?order={order.number}",
                               OPERATOR)  # fmt: skip
    assert status == 200 and body["order"] == order.number and body["match"] == "any"
    assert body["entries"][0]["title"].startswith("计划停水通知查询")
    assert len(body["entries"]) <= 5
    # a department sees suggestions only for its own orders
    status, body = await _json(api.client, "GET", f"/api/knowledge/suggest?order={order.number}",
                               YANTA)  # fmt: skip
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await _json(api.client, "GET", "/api/knowledge/suggest?order=X1", OPERATOR)
    assert status == 404


@pytest.mark.slow
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_the_knowledge_page_in_chromium(api: Api, browser: Browser) -> None:  # noqa: F811
    """An operator logs in, searches in Chinese, sees the entry; expired entries only when
    asked; an entry's text is shown as text, never as HTML."""
    tagged = {**ENTRY, "title": "<img src=x onerror=alert(1)>标签测试", "content": "<b>不粗</b>"}
    status, _ = await _json(api.client, "POST", "/api/knowledge", LEAD, json=tagged)
    assert status == 201
    base = str(api.client.make_url("")).rstrip("/")
    context = await new_context(browser, base)
    try:
        page = await context.new_page()
        await page.goto("/knowledge")
        await expect(page).to_have_url(re.compile(r"/login\?next=/knowledge$"))
        await log_in(page, "op-web", PASSWORD, then="/knowledge")
        await expect(page).to_have_url(base + "/knowledge")
        await expect(page.locator("#who")).to_have_text("op-web (operator)")
        await expect(page.locator("li.entry")).to_have_count(20)  # every valid entry, by title

        await page.fill("#q", "社保卡补办")
        await page.press("#q", "Enter")
        await expect(page.locator("#status")).to_contain_text("检索词 社保卡 补办")
        first = page.locator("li.entry").first
        await expect(first.locator(".title")).to_have_text(
            "社保卡补办流程 (Social security card replacement)"
        )
        await expect(first.locator(".content")).to_contain_text("12333")
        await expect(first.locator(".meta")).to_contain_text("市人力资源和社会保障局")

        await page.fill("#q", "供暖期")
        await page.press("#q", "Enter")
        await expect(page.locator("li.entry")).to_have_count(1)
        await page.check("#all")
        await page.click("button[type=submit]")
        await expect(page.locator("li.entry")).to_have_count(2)
        await expect(page.locator("li.entry .expired")).to_have_count(1)

        await page.fill("#q", "标签测试")
        await page.press("#q", "Enter")
        await expect(page.locator("li.entry")).to_have_count(1)
        await expect(page.locator("li.entry .title")).to_have_text(
            "<img src=x onerror=alert(1)>标签测试"
        )
        await expect(page.locator("li.entry img, li.entry b")).to_have_count(0)

        await page.fill("#q", "字" * 300)
        assert len(await page.input_value("#q")) == 200  # the API's limit: maxlength
        await page.fill("#q", "请问怎么办")
        await page.press("#q", "Enter")
        await expect(page.locator("#status")).to_contain_text("0 条")
        if os.environ.get("HOTLINE_SCREENSHOTS") == "docs":  # the README's picture
            await page.fill("#q", "噪音扰民")
            await page.uncheck("#all")
            await page.press("#q", "Enter")
            await expect(page.locator("#status")).to_contain_text("检索词")
            await page.set_viewport_size({"width": 1100, "height": 900})
            await screenshot(page, "knowledge", DOCS, full_page=False)
    finally:
        await context.close()


@pytest.mark.slow
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_a_supervisor_edits_on_the_page(api: Api, browser: Browser) -> None:  # noqa: F811
    """The page's editor goes through the API with the session's CSRF token: add, refused
    duplicate shown, change, delete; an operator gets no editor."""
    base = str(api.client.make_url("")).rstrip("/")
    context = await new_context(browser, base)
    try:
        page = await context.new_page()

        async def accept(dialog: Dialog) -> None:
            await dialog.accept()

        page.on("dialog", accept)
        await log_in(page, "lead-web", PASSWORD, then="/knowledge")
        await expect(page).to_have_url(base + "/knowledge")
        await expect(page.locator("li.entry .edit").first).to_be_visible()
        await page.click("#new")
        await page.fill("#e-title", "电动车进楼充电")
        await page.fill("#e-category", "消防安全/电动车")
        await page.select_option("#e-kind", "law")
        await page.fill("#e-unit", "市消防救援支队")
        await page.fill("#e-from", "2026-01-01")
        await page.fill("#e-keywords", "电动车; 飞线充电")
        await page.fill("#e-content", "禁止在楼道、楼梯间停放电动自行车或为其充电。")
        await page.click("#editor button[type=submit]")
        await expect(page.locator("#editor")).to_be_hidden()
        await page.fill("#q", "飞线充电")
        await page.press("#q", "Enter")
        await expect(page.locator("li.entry")).to_have_count(1)
        entry = page.locator("li.entry").first
        await expect(entry.locator(".title")).to_have_text("电动车进楼充电")
        await expect(entry.locator(".meta")).to_contain_text("有效期 2026-01-01 – …")

        await page.click("#new")  # a title taken: the API's refusal on the form
        await page.fill("#e-title", "电动车进楼充电")
        await page.fill("#e-category", "消防安全")
        await page.fill("#e-content", "重复")
        await page.click("#editor button[type=submit]")
        await expect(page.locator("#e-error")).to_contain_text("exists already")
        await page.click("#e-cancel")

        await entry.locator(".edit").click()
        await expect(page.locator("#e-keywords")).to_have_value("电动车; 飞线充电")
        await page.fill("#e-content", "电动自行车应在集中充电桩充电，禁止入户。")
        await page.click("#editor button[type=submit]")
        await expect(page.locator("#editor")).to_be_hidden()
        await page.fill("#q", "充电桩")
        await page.press("#q", "Enter")
        await expect(page.locator("li.entry .title")).to_have_text("电动车进楼充电")
        await page.locator("li.entry .delete").click()
        await expect(page.locator("li.entry")).to_have_count(0)
        _, left = await _json(api.client, "GET", "/api/knowledge?q=电动车&all=true", LEAD)
        assert left["entries"] == []

        operator = await new_context(browser, base)
        try:
            page = await operator.new_page()
            await log_in(page, "op-web", PASSWORD, then="/knowledge")
            await expect(page.locator("li.entry")).to_have_count(19)  # the seed's valid ones
            await expect(page.locator("#new")).to_be_hidden()
            await expect(page.locator("#editor")).to_be_hidden()
            await expect(page.locator("li.entry .edit")).to_have_count(0)
        finally:
            await operator.close()
    finally:
        await context.close()
