"""Accounts without a running engine: the access table, the account rules, and the
``hotline users`` command on a data folder of its own (passwords from standard input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.access import allowed, rule_for
from accounts.users import AccountRole, InvalidAccount, User, check_account
from hotline.settings import PROJECT_DIR
from workorders.dispatch import DispatchRules
from workorders.orders import Role

OPERATOR = User(1, "op", AccountRole.OPERATOR, extension="8001")
DEPARTMENT = User(2, "yanta", AccountRole.DEPARTMENT, department="雁塔区人民政府")
SUPERVISOR = User(3, "lead", AccountRole.SUPERVISOR)
ADMIN = User(4, "admin", AccountRole.ADMIN)


def test_access_table() -> None:
    def may(user: User, method: str, path: str) -> bool | None:
        rule = rule_for(path)
        return None if rule is None else allowed(user, method, path, rule)

    assert may(OPERATOR, "GET", "/healthz") is None  # public
    assert may(OPERATOR, "GET", "/api/status/20261123000001") is None  # public
    assert may(OPERATOR, "GET", "/supervisorx") is None  # a prefix is a whole path segment
    for user in (SUPERVISOR, ADMIN):
        assert may(user, "GET", "/supervisor") and may(user, "POST", "/api/seats/8002/pause")
    assert not may(OPERATOR, "GET", "/supervisor") and not may(DEPARTMENT, "GET", "/api/calls")
    assert may(OPERATOR, "POST", "/api/seats/8001/pause")  # their own seat
    assert not may(OPERATOR, "POST", "/api/seats/8002/pause")
    assert not may(OPERATOR, "GET", "/api/seats")
    assert not may(OPERATOR, "POST", "/api/seats/8001/pause/x")
    unbound = User(5, "new", AccountRole.OPERATOR)
    assert not may(unbound, "POST", "/api/seats//pause")
    assert all(may(u, "GET", "/api/workorders") for u in (OPERATOR, DEPARTMENT, SUPERVISOR, ADMIN))
    assert may(ADMIN, "GET", "/api/audit") and not may(SUPERVISOR, "GET", "/api/audit")
    assert (
        ADMIN.actor().role is Role.SUPERVISOR and DEPARTMENT.actor().department == "雁塔区人民政府"
    )


def test_account_rules() -> None:
    departments = DispatchRules.load().departments
    assert {"雁塔区人民政府", "市生态环境局"} <= departments
    ok = {"departments": departments, "extensions": ("8001", "8002")}
    check_account("王敏", AccountRole.OPERATOR, "", "8001", **ok)
    check_account("yanta", AccountRole.DEPARTMENT, "雁塔区人民政府", "", **ok)
    check_account("lead", AccountRole.SUPERVISOR, "", "8002", **ok)  # the supervisor's phone
    check_account("lead", AccountRole.SUPERVISOR, "", "", **ok)  # or none
    check_account("root", AccountRole.ADMIN, "", "8001", **ok)
    for name, role, department, extension in (
        ("op", AccountRole.OPERATOR, "", ""),  # an operator needs a seat
        ("op", AccountRole.OPERATOR, "", "9999"),  # of the seats file
        ("d", AccountRole.DEPARTMENT, "", ""),  # a department user needs a department
        ("d", AccountRole.DEPARTMENT, "火星局", ""),  # of the catalogue
        ("lead", AccountRole.SUPERVISOR, "", "9999"),  # a phone: a seat of the seats file
        ("lead", AccountRole.SUPERVISOR, "雁塔区人民政府", ""),  # nobody else a department
        ("d", AccountRole.DEPARTMENT, "雁塔区人民政府", "8001"),  # nor a department a phone
        ("a b", AccountRole.ADMIN, "", ""),
        ("", AccountRole.ADMIN, "", ""),
        ("x" * 65, AccountRole.ADMIN, "", ""),
    ):
        with pytest.raises(InvalidAccount):
            check_account(name, role, department, extension, **ok)


def hotline_users(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTLINE_DATA_DIR": str(data_dir), "HOTLINE_DATABASE_URL": ""}
    code = "from hotline.cli import main; raise SystemExit(main())"
    return subprocess.run([sys.executable, "-c", code, "users", *args], input=stdin, text=True,
                          capture_output=True, env=env, cwd=PROJECT_DIR, timeout=60,
                          check=False)  # fmt: skip


def test_hotline_users_command(tmp_path: Path) -> None:
    data = tmp_path / "var"
    password = "a long enough secret"
    added = hotline_users(data, "add", "wangmin", "--role", "operator", "--extension", "8001",
                          stdin=password + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    refused = hotline_users(data, "add", "x", "--role", "operator", "--extension", "7777",
                            stdin=password + "\n")  # fmt: skip
    assert refused.returncode == 1 and "seat extension" in refused.stderr
    short = hotline_users(data, "add", "lead", "--role", "supervisor", stdin="short\n")
    assert short.returncode == 1 and "at least" in short.stderr
    assert (
        hotline_users(data, "add", "etl", "--role", "supervisor", "--no-password").returncode == 0
    )
    token = hotline_users(data, "token", "etl")
    assert token.returncode == 0 and len(token.stdout.strip()) >= 40
    assert hotline_users(data, "disable", "wangmin").returncode == 0
    assert hotline_users(data, "passwd", "etl", stdin="another long secret\n").returncode == 0
    listed = hotline_users(data, "list", "--json")
    users = {u["name"]: u for u in json.loads(listed.stdout)}
    assert users["wangmin"] == {"name": "wangmin", "role": "operator", "department": "",
                                "extension": "8001", "disabled": True}  # fmt: skip
    assert users["etl"]["role"] == "supervisor" and not users["etl"]["disabled"]
    audit = json.loads(hotline_users(data, "audit", "--json").stdout)
    assert [e["action"] for e in reversed(audit)] == [
        "user_add", "user_add", "token_issue", "user_disable", "user_passwd"]  # fmt: skip
    assert all(e["actor"] == "cli" and e["at"] for e in audit)
    # the password went through standard input only, and is nowhere in the database as text
    assert password.encode() not in (data / "hotline.db").read_bytes()
    assert token.stdout.strip().encode() not in (data / "hotline.db").read_bytes()


def test_staff_file_with_bad_entries_imports_the_good_ones(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "staff.toml").write_text(
        '[[staff]]\ntoken = "t-1"\nname = "ok"\nrole = "operator"\n'
        '[[staff]]\ntoken = "t-2"\nname = "bad"\nrole = "janitor"\n'
        '[[staff]]\ntoken = "t-3"\nname = "nodept"\nrole = "department"\n',
        "utf-8",
    )
    listed = hotline_users(data, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [u["name"] for u in json.loads(listed.stdout)] == ["ok"]
    # the imported operator had no seat: bound to one of the seats file now
    assert hotline_users(data, "bind", "ok", "--extension", "9999").returncode == 1
    assert hotline_users(data, "bind", "ok", "--extension", "8001").returncode == 0
    assert json.loads(hotline_users(data, "list", "--json").stdout)[0]["extension"] == "8001"
    assert not (data / "staff.toml").exists() and (data / "staff.toml.imported").is_file()
