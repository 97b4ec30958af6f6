"""The department portal: a page for the department bound to a department user's account.

``GET /portal`` is the page (plain HTML and a small script, ``web/static``). ``GET
/api/portal`` lists the orders the department leads or assists in that still need it, each as
:meth:`~workorders.orders.WorkOrder.seen_by` shows it to a department (the number masked,
nothing of a confidential reporter) with the department's part (``lead`` or ``assisting``).
The page acts through the work-order API (sign, return, start, extension, note, reply,
assist-reply), where the service checks that the department may.

News for a department (an order dispatched or reworked to it, an urging or an escalation:
:attr:`WorkOrderService.on_department_news`) reaches its open pages live through
:mod:`web.live` (``GET /api/portal/live``, topic ``portal``), its mailbox through
:class:`~workorders.mail.DepartmentMail` and its phones through
:class:`~workorders.department_sms.DepartmentSms`, where configured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from accounts.http import current_user
from web import live
from web.live import LiveEvent, LiveHub
from web.pages import page_routes
from workorders.notices import NEWS_ZH, notices
from workorders.orders import Role, WorkOrder
from workorders.outbox import DepartmentSender
from workorders.service import WorkOrderService
from workorders.states import LABELS_ZH, State

log = logging.getLogger(__name__)

TOPIC = "portal"
#: the states in which an order still needs its departments (replied: shown until reviewed)
OWED = (State.DISPATCHED, State.SIGNED, State.IN_PROGRESS, State.EXTENSION_REQUESTED,
        State.REPLIED)  # fmt: skip


def portal_view(order: WorkOrder, department: str) -> dict[str, Any]:
    """The order as the department's page shows it."""
    view = order.seen_by(Role.DEPARTMENT)
    view["part"] = "lead" if order.lead_department == department else "assisting"
    view["label"] = LABELS_ZH[order.state]
    return view


class Portal:
    def __init__(
        self, orders: WorkOrderService, hub: LiveHub, senders: Sequence[DepartmentSender] = ()
    ) -> None:
        self.orders = orders
        self.hub = hub
        self.senders = tuple(senders)  # e-mail, SMS: those configured

    def news(self, order: WorkOrder, news: str) -> None:
        """Tell each department of ``order`` (its open pages, its mailbox and phones)."""
        for notice in notices(order, news):
            data = {**portal_view(order, notice.department), "news": news,
                    "news_label": NEWS_ZH.get(news, news)}  # fmt: skip
            # for the department's users only (no role sees it otherwise)
            self.hub.publish(
                LiveEvent(TOPIC, data, roles=frozenset(), department=notice.department)
            )
            queued = [s.outbox.channel for s in self.senders if s.post(notice)]
            log.info("work order %s %s: %s told on its live pages%s", order.number, news,
                     notice.department, "".join(f", {c} queued" for c in queued))  # fmt: skip

    def routes(self) -> list[web.RouteDef]:
        return [
            *page_routes("/portal", "portal"),
            web.get("/api/portal", self.current),
            web.get("/api/portal/live", live.stream),
        ]

    async def current(self, request: web.Request) -> web.Response:
        """The department's orders that still need it, earliest time limit first."""
        user = current_user(request)
        assert user is not None  # the access rules let department users only through
        found = await self.orders.find(states=OWED, involving=user.department, limit=500)
        found.sort(key=lambda o: (o.due_at is None, o.due_at or o.created_at))
        body = {
            "user": user.name, "department": user.department,
            "now": self.orders.clock().isoformat(),
            "timezone": self.orders.limits.timezone.key,
            "orders": [portal_view(order, user.department) for order in found],
        }  # fmt: skip
        return web.json_response(body, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application, portal: Portal) -> None:
    app.router.add_routes(portal.routes())
