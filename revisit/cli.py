"""``hotline revisits list|show N|run-now``: the revisit schedule from SQL.

``list [--state due|dialing|done|manual]`` prints the revisits and the day's figures; ``show N``
one order's revisit with its attempts; ``run-now`` makes every due revisit due now, so the
running engine's dialer places them at its next round (calling hours and the limit of
simultaneous calls still apply)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from revisit.rules import RevisitState
from revisit.service import RevisitService
from workorders.errors import WorkOrderError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "show", "run-now"])
    parser.add_argument("number", nargs="?", default="", help="show: the work order's number")
    parser.add_argument("--state", choices=[s.value for s in RevisitState], default=None)
    parser.add_argument("--json", action="store_true", help="print JSON")


async def revisits_command(service: RevisitService, args: argparse.Namespace) -> int:
    try:
        if args.action == "run-now":
            moved = await service.run_now()
            print(f"{moved} due revisit(s) due now; the next call may go out at "
                  f"{service.next_open().isoformat()}")  # fmt: skip
            return 0
        if args.action == "show":
            if not args.number:
                print("hotline revisits show: give the work order's number")
                return 2
            _print(await service.show(args.number), args.json)
            return 0
        figures = await service.figures()
        rows = await service.listing(args.state)
    except WorkOrderError as exc:
        print(f"hotline revisits: {exc.message}")
        return 1
    if args.json:
        _print({"figures": figures, "revisits": rows}, True)
        return 0
    for row in rows:
        result = "-"
        if row["state"] == "done":
            result = f"resolved={row['resolved']} {row['satisfaction']} by {row['result_by']}"
        why = f" ({row['manual_reason']})" if row["manual_reason"] else ""
        print(f"{row['order_number']}  {row['state']:<8}{why:<22} due {row['due_at'][:16]}  "
              f"attempts {row['attempts']}  {result}")  # fmt: skip
    print(
        f"today: called {figures['called']}, reach rate {_pct(figures['reach_rate'])}, "
        f"resolved {_pct(figures['resolved_rate'])}, satisfied "
        f"{_pct(figures['satisfaction_rate'])}; "
        + ", ".join(f"{k} {v}" for k, v in figures["by_state"].items())
    )
    return 0


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _print(value: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(value, ensure_ascii=False, indent=2))
        return
    history = value.pop("history", [])
    for key, item in value.items():
        print(f"{key:>14}: {item}")
    for attempt in history:
        print(f"  attempt {attempt['started_at'][:19]}  {attempt['outcome']:<12} "
              f"answered={attempt['answered']}  engine {attempt['engine']}")  # fmt: skip
