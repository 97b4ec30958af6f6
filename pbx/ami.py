"""The engine's AMI connection (panoramisk), supervised: reconnects with backoff.

panoramisk's Manager reconnects on its own at a fixed interval and queues actions while
down; here the supervisor owns reconnection (exponential backoff, state logged once per
change) and an action sent while down fails at once instead of waiting forever. Every
action has a deadline. Events reach subscribers as typed objects (see :mod:`pbx.events`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

log = logging.getLogger(__name__)

EventHandler = Callable[[Message], None]


# Events panoramisk itself waits for (an Async Originate's answer): always let through.
_ACTION_EVENTS = ("OriginateResponse",)


def event_filter(events: Iterable[str]) -> str:
    """manager.conf lines for the engine's AMI user: Asterisk sends it only ``events`` (and
    the ones its own actions wait for), not the dozens of others every call raises."""
    names = sorted({*events, *_ACTION_EVENTS})
    return "\n".join(f"eventfilter(action(include),name({name})) =" for name in names)


class AmiUnavailable(ConnectionError):
    """The AMI connection is down; the action was not sent."""


class AmiActionError(RuntimeError):
    """Asterisk answered an action with an error."""


class _SupervisedManager(Manager):  # type: ignore[misc]
    """A Manager that reports connection loss instead of reconnecting by itself."""

    def __init__(self, on_lost: Callable[[BaseException | None], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled() or f.exception() is not None:
            return  # the supervisor awaits the same future and handles the failure
        super().connection_made(f)

    def connection_lost(self, exc: BaseException | None) -> None:
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        self._on_lost(exc)


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        timeout: float = 5.0,
        max_backoff: float = 10.0,
        events: Iterable[str] | None = None,
    ) -> None:
        """``events``: the only ones Asterisk sends this user (its manager.conf filter, see
        :func:`event_filter`); subscribing to any other is a mistake caught at once."""
        self._config = {"host": host, "port": port, "username": username, "secret": secret}
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._handlers: list[tuple[str, EventHandler]] = []
        self._events = None if events is None else frozenset(events)
        self._manager: _SupervisedManager | None = None
        self._logged_in = asyncio.Event()
        self._lost = asyncio.Event()
        self.last_error: str = "not connected yet"

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    def on(self, event: str, handler: EventHandler) -> None:
        """Call ``handler`` for every event named ``event``."""
        if self._events is not None and event not in self._events:
            raise ValueError(
                f"AMI event {event} is filtered out for the engine: add it to "
                "hotline.wiring.AMI_EVENTS or the ami_extra_events setting"
            )
        self._handlers.append((event, handler))
        if self._manager is not None:
            self._manager.register_event(event, _adapt(handler))

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._logged_in.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Keep the connection up until cancelled."""
        backoff = 0.5
        reported_down = False
        while True:
            try:
                await self._connect_once()
            except (OSError, TimeoutError, AmiActionError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                if not reported_down:
                    log.warning(
                        "AMI %s:%s unreachable (%s); retrying with backoff up to %.0f s",
                        self._config["host"],
                        self._config["port"],
                        self.last_error,
                        self._max_backoff,
                    )
                    reported_down = True
                else:
                    log.debug("AMI still unreachable: %s", self.last_error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            log.info("AMI connected to %s:%s", self._config["host"], self._config["port"])
            reported_down = False
            backoff = 0.5
            await self._lost.wait()
            self._logged_in.clear()
            self.last_error = "connection lost"
            log.warning("AMI connection lost; reconnecting")
            reported_down = True

    async def _connect_once(self) -> None:
        self._lost.clear()
        loop = asyncio.get_running_loop()
        manager = _SupervisedManager(
            on_lost=lambda _exc: self._lost.set(),
            loop=loop,
            events="on",
            ping_delay=10,
            ping_interval=10,
            on_login=lambda _m: self._logged_in.set(),
            **self._config,
        )
        for pattern, handler in self._handlers:
            manager.register_event(pattern, _adapt(handler))
        try:
            await asyncio.wait_for(manager.connect(), self._timeout)
            login = asyncio.ensure_future(self._logged_in.wait())
            lost = asyncio.ensure_future(self._lost.wait())
            done, pending = await asyncio.wait(
                {login, lost}, timeout=self._timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if login not in done:
                raise AmiActionError("login refused or timed out (check the AMI secret)")
        except BaseException:
            manager.close()
            raise
        self._manager = manager

    async def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
        self._logged_in.clear()

    async def action(self, action: dict[str, str], *, as_list: bool = False) -> Any:
        """Send one action and return Asterisk's answer, within the deadline."""
        if self._manager is None or not self.connected:
            raise AmiUnavailable(f"AMI is down ({self.last_error})")
        answer = await asyncio.wait_for(
            self._manager.send_action(action, as_list=as_list), self._timeout
        )
        first = answer[0] if isinstance(answer, list) and answer else answer
        if isinstance(first, Message) and first.get("Response") == "Error":
            raise AmiActionError(f"{action.get('Action')}: {first.get('Message')}")
        return answer


def _adapt(handler: EventHandler) -> Callable[[Manager, Message], None]:
    def call(_manager: Manager, message: Message) -> None:
        try:
            handler(message)
        except Exception:
            log.exception("AMI event handler failed on %s", message.get("Event"))

    return call
