"""Who may use which page and staff route: the one table of access rules (pure: the web
middleware in :mod:`accounts.http` applies it, tests drive it without a network)."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.users import SUPERVISORS, AccountRole, User

STAFF = frozenset(AccountRole)  # every role: what each sees is the work orders' own rule
READS = frozenset({"GET", "HEAD", "OPTIONS"})  # methods that change nothing


@dataclass(frozen=True)
class Rule:
    prefix: str
    roles: frozenset[AccountRole]
    page: bool = False  # a browser page: unauthenticated → the login page, not a 401
    writers: frozenset[AccountRole] | None = None  # who may change things (None: roles)


OPERATORS = frozenset({AccountRole.OPERATOR})
DEPARTMENTS = frozenset({AccountRole.DEPARTMENT})

RULES: tuple[Rule, ...] = (
    Rule("/supervisor", SUPERVISORS, page=True),
    Rule("/desk", OPERATORS, page=True),  # the operator's desk: the seat bound to the account
    Rule("/api/desk", OPERATORS),
    Rule("/portal", DEPARTMENTS, page=True),  # the department portal: the account's department
    Rule("/api/portal", DEPARTMENTS),  # its orders and its live news (web.portal)
    Rule("/api/live", frozenset({*SUPERVISORS, AccountRole.OPERATOR})),  # each sees their own
    Rule("/api/calls", SUPERVISORS),
    Rule("/api/stats", SUPERVISORS),
    Rule("/api/seats", SUPERVISORS),
    Rule("/api/wallboard", SUPERVISORS),
    Rule("/api/announcements", SUPERVISORS),  # broadcast before the main menu (ivr.http)
    Rule("/reports", SUPERVISORS, page=True),  # reports with charts, CSV and XLSX (reports/)
    Rule("/api/reports", SUPERVISORS),
    # /metrics: a supervisor or admin, or a scraper with the metrics token (web.metrics)
    Rule("/api/workorders", STAFF),
    Rule("/api/revisits", frozenset({*SUPERVISORS, AccountRole.OPERATOR})),
    Rule("/api/callbacks", SUPERVISORS),
    Rule("/api/audit", frozenset({AccountRole.ADMIN})),
    Rule("/api/me", STAFF),
    Rule("/knowledge", STAFF, page=True),
    Rule("/api/knowledge", STAFF, writers=SUPERVISORS),
)


def rule_for(path: str) -> Rule | None:
    """The rule of the longest prefix that covers ``path`` (None: a public path)."""
    rules = [r for r in RULES if path == r.prefix or path.startswith(r.prefix + "/")]
    return max(rules, key=lambda r: len(r.prefix)) if rules else None


def allowed(user: User, method: str, path: str, rule: Rule) -> bool:
    """Whether ``user`` may make this request. An operator changes the state of their own
    seat only (``POST /api/seats/<own extension>/<action>``)."""
    roles = rule.roles if rule.writers is None or method in READS else rule.writers
    if user.role in roles:
        return True
    if user.role is AccountRole.OPERATOR and rule.prefix == "/api/seats" and method == "POST":
        parts = path.split("/")  # "", "api", "seats", ext, action
        return len(parts) == 5 and bool(user.extension) and parts[3] == user.extension
    return False
