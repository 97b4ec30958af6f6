"""Inbound SMS from the carrier's gateway: a work order of channel "sms", answered with its
number; a follow-up from the same number within the window goes to that number's open order.

The gateway POSTs ``from`` and ``text`` (JSON object or form) and signs each request:
``X-Hotline-Timestamp`` (Unix seconds) and ``X-Hotline-Signature``, the hex HMAC-SHA256 of
``<timestamp>.<body>`` with the shared secret (``sms_gateway_secret`` in data_dir/secrets.toml).
A request older (or newer) than :data:`MAX_SKEW_S` or seen before (a replay) is refused. The
signatures seen are kept in the hotline's Redis (:class:`RedisSeen`: ``SET NX`` expiring when
the timestamp leaves the allowed skew), so every engine on that Redis refuses a request any of
them took; a Redis that cannot be asked refuses the request with 503 (the gateway retries).
The answer carries the reply text the gateway sends back to the citizen, on refusals too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from calls.callerid import mask_number, parse_caller_id
from web.errors import HttpError, error_body, refusal_of
from web.params import has_control
from workorders.errors import InvalidInput, Unauthenticated
from workorders.orders import Actor, NewWorkOrder, Role, WorkOrder
from workorders.service import WorkOrderService
from workorders.states import CLOSED, State

log = logging.getLogger(__name__)

SMS_LIMIT = 150
MAX_SKEW_S = 300
GATEWAY = Actor("sms-gateway", Role.SYSTEM)
OPEN = [s for s in State if s not in CLOSED]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature the gateway sends (and this webhook expects)."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class SeenRequests(Protocol):
    async def first(self, signature: str, ttl_s: int) -> bool:
        """True the first time ``signature`` is seen within ``ttl_s`` seconds."""
        ...


class RedisSeen:
    """Signatures seen, shared by every engine on one Redis (one key each, expiring)."""

    def __init__(self, redis: Redis, prefix: str, timeout_s: float = 5.0) -> None:
        self.redis, self.prefix, self.timeout_s = redis, f"{prefix}sms:seen:", timeout_s

    async def first(self, signature: str, ttl_s: int) -> bool:
        async with asyncio.timeout(self.timeout_s):
            return bool(await self.redis.set(self.prefix + signature, 1, nx=True, ex=ttl_s))


class LocalSeen:
    """Signatures seen by this process only: for a web service that runs without Redis."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> when it expires

    async def first(self, signature: str, ttl_s: int) -> bool:
        now = self.clock()
        for old, until in list(self._seen.items()):
            if until < now:
                del self._seen[old]
        if signature in self._seen:
            return False
        self._seen[signature] = now + ttl_s
        return True


class Signatures:
    """Checks a request's signature and freshness; refuses replays (``seen``)."""

    def __init__(
        self, secret: str, seen: SeenRequests, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret, self.seen, self.clock = secret, seen, clock

    async def check(self, timestamp: str, signature: str, body: bytes) -> None:
        now = self.clock()
        if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW_S:
            raise Unauthenticated(
                f"X-Hotline-Timestamp missing or more than {MAX_SKEW_S} s from now"
            )
        expected = sign(self.secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise Unauthenticated("bad or missing X-Hotline-Signature")
        # remembered while its timestamp is within the allowed skew: a replay after that is
        # refused as stale
        ttl_s = max(1, int(int(timestamp) + MAX_SKEW_S - now) + 1)
        try:
            first = await self.seen.first(expected, ttl_s)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("SMS replay check unavailable (%s): request refused", exc)
            raise HttpError(503, "unavailable", "the replay check is unavailable; retry later",
                            {"Retry-After": "5"}) from exc  # fmt: skip
        if not first:
            raise Unauthenticated("this signed request was already received (replay)")


class SmsIntake:
    def __init__(
        self,
        service: WorkOrderService,
        secret: str,
        followup_window: timedelta = timedelta(hours=72),
        seen: SeenRequests | None = None,
    ) -> None:
        self.service = service
        self.signatures = Signatures(secret, seen or LocalSeen())
        self.followup_window = followup_window

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/sms/inbound", self.inbound)]

    async def inbound(self, request: web.Request) -> web.Response:
        try:
            sender, text = await self._parse(request)
            follows = await self._open_order(sender)
            if follows is not None:
                order = await self.service.follow_up(follows.number, GATEWAY, text)
                log.info("SMS from %s added to work order %s", mask_number(sender), order.number)
                reply = f"您的补充已加入工单{order.number}。"
                return web.json_response({"number": order.number, "reply": reply}, dumps=_dumps)
            order = await self.service.create(
                NewWorkOrder(channel="sms", caller_phone=sender, description=text), GATEWAY
            )
        except (HttpError, InvalidInput, Unauthenticated) as exc:
            refusal = refusal_of(exc)
            assert refusal is not None
            log.info("SMS refused: %s", refusal.message)
            body = error_body(refusal.code, refusal.message) | {"reply": _refusal(exc)}
            return web.json_response(body, status=refusal.status, dumps=_dumps)
        reply = f"您的诉求已受理，工单号{order.number}，可拨打12345按3输入工单号查询进度。"
        if not order.location_text:
            reply += "请回复补充具体地点。"
        log.info("SMS from %s registered as work order %s", mask_number(sender), order.number)
        return web.json_response({"number": order.number, "reply": reply}, dumps=_dumps)

    async def _open_order(self, sender: str) -> WorkOrder | None:
        """The number's open SMS order from within the follow-up window, if any."""
        since = self.service.clock() - self.followup_window
        found = await self.service.find(
            caller_phone=sender, channel="sms", start=since, states=OPEN, limit=1
        )
        return found[0] if found else None

    async def _parse(self, request: web.Request) -> tuple[str, str]:
        body = await request.read()
        await self.signatures.check(
            request.headers.get("X-Hotline-Timestamp", ""),
            request.headers.get("X-Hotline-Signature", ""),
            body,
        )
        data = _fields(request.content_type, body)
        sender, text = data.get("from"), data.get("text")
        if not isinstance(sender, str) or not isinstance(text, str):
            raise InvalidInput("an SMS needs 'from' and 'text', both strings")
        number = parse_caller_id(sender).number
        if number is None:
            raise InvalidInput("'from' is not a phone number")
        text = text.strip()
        if not text:
            raise InvalidInput("an SMS needs 'from' and 'text'")
        if len(text) > SMS_LIMIT:
            raise InvalidInput(f"an SMS is limited to {SMS_LIMIT} characters, got {len(text)}")
        if has_control(text, multiline=True):
            raise InvalidInput("the SMS text holds control characters")
        return number, text


def _fields(content_type: str, body: bytes) -> dict[str, Any]:
    try:
        if content_type == "application/json":
            data = json.loads(body)
            if not isinstance(data, dict):
                raise InvalidInput("the body must be a JSON object")
            return data
        if content_type == "application/x-www-form-urlencoded":
            form = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
            return {k: v[0] for k, v in form.items()}
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not valid JSON or form data") from None
    raise HttpError(415, "unsupported_media_type", "send JSON or form-encoded data")


def _refusal(error: Exception) -> str:
    if isinstance(error, InvalidInput) and "limited" in error.message:
        return f"短信内容请不超过{SMS_LIMIT}字，写明诉求内容和地点后重新发送。"
    return "短信未能受理，请拨打12345。"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
