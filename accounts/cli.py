"""``hotline users``: add, change the password of, bind (to a seat or a department), disable,
enable and list accounts, issue API tokens, read the audit log. Passwords come from a prompt
(twice) or the first line of standard input, never from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TextIO

from accounts.service import AccountService
from accounts.users import AccountError, AccountRole

ACTIONS = ("add", "passwd", "bind", "disable", "enable", "list", "token", "audit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("name", nargs="?", default="", help="the user's login name")
    parser.add_argument("--role", choices=[r.value for r in AccountRole], default="operator")
    parser.add_argument("--department", default="", help="role department: one of the catalogue")
    parser.add_argument(
        "--extension", default="", help="operator: the seat; supervisor, admin: their phone"
    )
    parser.add_argument(
        "--no-password", action="store_true", help="add: an account for API tokens only"
    )
    parser.add_argument("--json", action="store_true", help="list, audit: print JSON")
    parser.add_argument("--limit", type=int, default=50, help="audit: how many entries")


def read_password(stdin: TextIO = sys.stdin) -> str:
    """From a prompt, typed twice, on a terminal; else the first line of standard input."""
    if stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise AccountError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


async def users_command(accounts: AccountService, args: argparse.Namespace) -> int:
    """Run one ``hotline users`` action; errors are printed, the exit status is 1."""
    try:
        return await _run(accounts, args)
    except AccountError as exc:
        print(f"hotline users: {exc.message}", file=sys.stderr)
        return 1


async def _run(accounts: AccountService, args: argparse.Namespace) -> int:
    if args.action == "list":
        everyone = await accounts.users()
        if args.json:
            print(json.dumps([u.as_dict() for u in everyone], ensure_ascii=False, indent=2))
        for one in [] if args.json else everyone:
            bound = one.extension or one.department or "-"
            state = "disabled" if one.disabled else "enabled"
            print(f"{one.name:20} {one.role.value:10} {bound:24} {state}")
        return 0
    if args.action == "audit":
        entries = await accounts.audit_log(args.limit)
        if args.json:
            print(json.dumps(entries, ensure_ascii=False, indent=2))
        for e in [] if args.json else reversed(entries):
            print(f"{e['at'][:19]}  {e['actor']:20} {e['action']:14} {e['target']} {e['detail']}")
        return 0
    if not args.name:
        raise AccountError(f"`hotline users {args.action}` needs the user's name")
    if args.action == "add":
        password = "" if args.no_password else read_password()
        user = await accounts.add_user(
            args.name,
            AccountRole(args.role),
            password=password,
            department=args.department,
            extension=args.extension,
        )
        print(f"added {user.name} ({user.role.value})")
    elif args.action == "passwd":
        await accounts.set_password(args.name, read_password())
        print(f"password of {args.name} changed; their sessions ended")
    elif args.action == "bind":
        user = await accounts.bind(args.name, department=args.department, extension=args.extension)
        print(f"{user.name} bound to {user.extension or user.department}")
    elif args.action in ("disable", "enable"):
        await accounts.set_disabled(args.name, args.action == "disable")
        print(f"{args.name} {args.action}d")
    elif args.action == "token":
        token = await accounts.issue_token(args.name)
        print(f"API token for {args.name} (shown once; only its hash is kept):", file=sys.stderr)
        print(token)
    return 0
