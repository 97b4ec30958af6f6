"""Inbound SMS from the carrier's gateway: a work order of channel "sms", answered with its number.

The gateway POSTs ``from`` and ``text`` (form or JSON) with ``X-Hotline-SMS-Token``; the answer
carries the reply text the gateway sends back to the citizen.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web

from calls.callerid import mask_number
from workorders.errors import InvalidInput, Unauthenticated, WorkOrderError, http_status
from workorders.orders import Actor, NewWorkOrder, Role
from workorders.service import WorkOrderService

log = logging.getLogger(__name__)

SMS_LIMIT = 150
GATEWAY = Actor("sms-gateway", Role.SYSTEM)


class SmsIntake:
    def __init__(self, service: WorkOrderService, token: str) -> None:
        self.service = service
        self.token = token

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/sms/inbound", self.inbound)]

    async def inbound(self, request: web.Request) -> web.Response:
        try:
            sender, text = await self._parse(request)
            order = await self.service.create(
                NewWorkOrder(channel="sms", caller_phone=sender, description=text), GATEWAY
            )
        except WorkOrderError as exc:
            log.info("SMS refused: %s", exc.message)
            body = {"error": exc.code, "message": exc.message, "reply": _refusal(exc)}
            return web.json_response(body, status=http_status(exc), dumps=_dumps)
        reply = f"您的诉求已受理，工单号{order.number}，可拨打12345按3输入工单号查询进度。"
        if not order.location_text:
            reply += "请回复补充具体地点。"
        log.info("SMS from %s registered as work order %s", mask_number(sender), order.number)
        return web.json_response({"number": order.number, "reply": reply}, dumps=_dumps)

    async def _parse(self, request: web.Request) -> tuple[str, str]:
        given = request.headers.get("X-Hotline-SMS-Token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Unauthenticated("bad or missing X-Hotline-SMS-Token")
        data: Any
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                raise InvalidInput("the body must be JSON") from None
        else:
            data = await request.post()
        sender, text = str(data.get("from", "")).strip(), str(data.get("text", "")).strip()
        if not sender or not text:
            raise InvalidInput("an SMS needs 'from' and 'text'")
        if len(text) > SMS_LIMIT:
            raise InvalidInput(f"an SMS is limited to {SMS_LIMIT} characters, got {len(text)}")
        return sender, text


def _refusal(error: WorkOrderError) -> str:
    if isinstance(error, InvalidInput) and "limited" in error.message:
        return f"短信内容请不超过{SMS_LIMIT}字，写明诉求内容和地点后重新发送。"
    return "短信未能受理，请拨打12345。"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
