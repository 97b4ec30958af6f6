"""Live events for the staff's pages: a small server-sent-events hub in the engine.

Parts of the engine :meth:`LiveHub.publish` a :class:`LiveEvent` under a topic (``call``:
a caller put through to a seat, ``call-ended``, ``consult``: a seat rings for another
seat's consultation, ``order``: a call's work order drafted or updated, ``revisit``: a
revisit changed, and ``announcement``: a broadcast announcement added or removed, to
supervisors; ``portal``: a department's news) and
the ACD's own event log arrives as ``acd`` (seat states and queue moves, as the Lua wrote
them, whichever engine or feature code made them). ``GET /api/live?topics=call,order``
streams them to one browser as ``text/event-stream``; each subscriber gets only what its
user may see: an event bound to a seat reaches that seat's operator, one bound to a
department that department's users, and supervisors and admins see every other event. Slow
subscribers are cut off (their queue is bounded); the browser's ``EventSource`` reconnects
by itself.

With several engines on one Redis, :attr:`LiveHub.fanout` (:mod:`web.fanout`) carries what
this engine publishes to every engine's hub, this one's included, so a page sees the same
events whichever engine serves it; without it (tests of the hub alone) events are delivered
here only. The hub is a :class:`~calls.lifecycle.CallListener` (connected and finished calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from accounts.http import current_user
from accounts.users import SUPERVISORS, AccountRole, User
from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from queueing.events import AcdEvent
from workorders.orders import Role, WorkOrder

log = logging.getLogger(__name__)

QUEUE_SIZE = 256  # events a subscriber may lag behind before it is cut off
HEARTBEAT_S = 15.0  # a comment line keeps proxies from closing an idle stream
RETRY_MS = 1000  # what the browser waits before reconnecting


@dataclass(frozen=True)
class LiveEvent:
    topic: str
    data: dict[str, Any]
    seat: str = ""  # the seat it concerns: its operator receives it
    roles: frozenset[AccountRole] = SUPERVISORS  # who else receives it
    department: str = ""  # the department it concerns: its users receive it

    def for_user(self, user: User) -> bool:
        if user.role in self.roles:
            return True
        if self.department and user.role is AccountRole.DEPARTMENT:
            return user.department == self.department
        return bool(self.seat) and user.role is AccountRole.OPERATOR and user.extension == self.seat


@dataclass(eq=False)  # each subscription is its own (hashed by identity)
class Subscription:
    user: User
    topics: frozenset[str]  # empty: every topic
    queue: asyncio.Queue[LiveEvent | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )

    def wants(self, event: LiveEvent) -> bool:
        return (not self.topics or event.topic in self.topics) and event.for_user(self.user)


#: how the desk reads a call's context when it is put through (see web.desk)
CallContext = Callable[[ConnectedCall], Awaitable[dict[str, Any]]]


class Fanout(Protocol):
    """Carries an event to every engine's hub (:class:`web.fanout.RedisFanout`)."""

    def send(self, event: LiveEvent) -> None: ...


class LiveHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._closed = False
        self.call_context: CallContext | None = None  # adds the desk's facts to ``call``
        self.fanout: Fanout | None = None  # every engine's hub; None: this one only

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, user: User, topics: frozenset[str] = frozenset()) -> Subscription:
        if self._closed:
            raise web.HTTPServiceUnavailable(reason="shutting down")
        subscription = Subscription(user, topics)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def publish(self, event: LiveEvent) -> None:
        """Show ``event`` on every engine's pages (on this engine's only without a fanout)."""
        if self.fanout is not None:
            self.fanout.send(event)
        else:
            self.deliver(event)

    def deliver(self, event: LiveEvent) -> int:
        """Hand ``event`` to this engine's subscribers that may see it; returns how many."""
        sent = 0
        for subscription in list(self._subscribers):
            if not subscription.wants(event):
                continue
            try:
                subscription.queue.put_nowait(event)
                sent += 1
            except asyncio.QueueFull:
                log.warning("live events: %s fell %d events behind; stream closed",
                            subscription.user.name, QUEUE_SIZE)  # fmt: skip
                self._end(subscription)
        return sent

    def _end(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        with contextlib.suppress(asyncio.QueueEmpty):
            while subscription.queue.full():
                subscription.queue.get_nowait()
        subscription.queue.put_nowait(None)

    async def close(self) -> None:
        """End every stream (the engine stops); later subscribers are refused."""
        self._closed = True
        for subscription in list(self._subscribers):
            self._end(subscription)

    # -- the engine's events ------------------------------------------------------------------
    async def connected(self, call: ConnectedCall) -> None:
        data: dict[str, Any] = {"call_id": call.call_id, "seat": call.seat,
                                "caller_number": call.caller_number or "", "queue": call.skill,
                                "connected_at": call.connected_at.isoformat()}  # fmt: skip
        if self.call_context is not None:
            try:
                data.update(await self.call_context(call))
            except Exception:  # e.g. the database is down: the caller is still shown
                log.exception("call %s from %s at seat %s: the desk's context not gathered",
                              call.call_id, mask_number(call.caller_number), call.seat)  # fmt: skip
        self.publish(LiveEvent("call", data, seat=call.seat))
        log.info("call %s from %s at seat %s: published to the live pages", call.call_id,
                 mask_number(call.caller_number), call.seat)  # fmt: skip

    async def finished(self, call: ConnectedCall) -> None:
        data = {"call_id": call.call_id, "seat": call.seat,
                "ended_at": call.ended_at.isoformat() if call.ended_at else None}  # fmt: skip
        self.publish(LiveEvent("call-ended", data, seat=call.seat))

    def consultation(self, seat: str, about: dict[str, Any]) -> None:
        """A seat chosen for another seat's consultation (queueing.consult) rings: its desk
        shows who consults about which call, not a new caller."""
        self.publish(LiveEvent("consult", about, seat=seat))

    def order_drafted(self, order: WorkOrder) -> None:
        """A call's order drafted or given its transcript: to the seat that took the call."""
        self.publish(LiveEvent("order", order.seen_by(Role.OPERATOR), seat=order.seat))

    def revisit_changed(self, number: str, state: str) -> None:
        """A revisit scheduled, tried, listed for an operator or given its result: the
        wallboard reads its revisit figures and manual list again."""
        self.publish(LiveEvent("revisit", {"order_number": number, "state": state}))

    def announcement_changed(self, announcement_id: str, change: str) -> None:
        """A broadcast announcement added (on the wallboard, the API or a supervisor's
        phone) or removed: the wallboards read the list again."""
        self.publish(LiveEvent("announcement", {"id": announcement_id, "change": change}))

    def acd_event(self, event: AcdEvent) -> None:
        """One entry of the ACD's event log (every engine reads the log: delivered here only)."""
        data = {"type": event.type, "at": event.at, "call_id": event.call_id,
                "seat": event.seat, "skill": event.skill, "data": event.data}  # fmt: skip
        if event.type == "seat":
            state, _, reason = event.data.partition(" ")
            data.update(state=state, reason=reason)
        self.deliver(LiveEvent("acd", data, seat=event.seat))


LIVE = web.AppKey("live_hub", LiveHub)


def _frame(event: LiveEvent) -> bytes:
    body = json.dumps(event.data, ensure_ascii=False, default=str)
    return f"event: {event.topic}\ndata: {body}\n\n".encode()


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/live?topics=a,b``: the user's events as server-sent events."""
    user = current_user(request)
    if user is None:  # the access rules let only users through
        raise web.HTTPUnauthorized()
    topics = frozenset(t for t in request.query.get("topics", "").split(",") if t)
    hub = request.app[LIVE]
    subscription = hub.subscribe(user, topics)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })  # fmt: skip
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MS}\n: hello {user.name}\n\n".encode())
        while True:
            try:
                event = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:  # the hub cut this stream off, or the engine stops
                break
            await response.write(_frame(event))
    except ConnectionResetError:  # the browser went away (seen at the next write)
        log.debug("live events: %s went away", user.name)
    finally:
        hub.unsubscribe(subscription)
    return response


def add_routes(app: web.Application, hub: LiveHub) -> None:
    app[LIVE] = hub
    app.router.add_get("/api/live", stream)
