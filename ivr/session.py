"""One call in the IVR: drive the menu walk over FastAGI and keep the call record.

The path: the dialplan runs ``AGI(agi://.../ivr)`` → :meth:`IvrSession.run` plays each
step's prompts and collects keys → the walk finishes on a route → the route goes back to
the dialplan as ``HOTLINE_ROUTE_KIND``/``HOTLINE_ROUTE_NAME``. Whatever goes wrong, the
dialplan's default (the operator queue) stays in place, so nobody hears silence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from calls.callerid import mask_number
from calls.store import CallStore, JourneyStep
from db.base import utcnow
from ivr.menu import Menu
from ivr.walk import Ask, Finish, Prompt, Route, Walk
from pbx.agi_channel import AgiChannel, AgiCommandError, CallerHungUp

log = logging.getLogger(__name__)

WORKORDER_STATUS = Route("action", "workorder-status")
HANGUP = Route("action", "hangup")

# Answers a work-order number with a short speakable status in the language given (the
# caller's), or None if there is no such order (ivr.order_status.OrderStatusReader).
StatusLookup = Callable[[str, str], Awaitable[str | None]]
# The broadcast announcements a caller hears before the main menu, each prompt with its file
# (ivr.announcements.Announcements.playable; it never raises).
AnnouncementFiles = Callable[[], Awaitable[list[tuple[Prompt, Path]]]]


class PromptFiles(Protocol):
    def path_for(self, prompt: Prompt) -> Path: ...

    async def speak(self, prompt: Prompt) -> Path:
        """Synthesise one ad-hoc prompt (e.g. a work order's status) and return its path."""
        ...


async def no_work_orders(_number: str, _language: str) -> str | None:
    return None


async def no_announcements() -> list[tuple[Prompt, Path]]:
    return []


class IvrSession:
    """The ``ivr`` FastAGI route."""

    def __init__(
        self,
        menu: Menu,
        prompts: PromptFiles,
        store: CallStore,
        status_lookup: StatusLookup = no_work_orders,
        announcements: AnnouncementFiles = no_announcements,
    ) -> None:
        self._menu = menu
        self._prompts = prompts
        self._store = store
        self._status_lookup = status_lookup
        self._announcements = announcements

    async def run(self, agi: AgiChannel) -> None:
        call = agi.call
        who = f"call {call.uniqueid} from {mask_number(call.caller.number or 'unknown')}"
        call_id = await self._store.open(call.uniqueid, call.channel, call.caller)
        log.info("%s entered the IVR (caller ID %r)", who, mask_number(call.caller.raw))
        walk = Walk(self._menu)
        journey: list[JourneyStep] = []
        finish: Finish | None = None
        route: Route | None = None
        try:
            step = walk.start()
            for prompt, path in await self._announcements():  # before the main menu; a key skips
                journey.append(JourneyStep("announcement", walk.node, prompt.id, utcnow()))
                await agi.stream([str(path)], barge_in=True)
            while isinstance(step, Ask):
                journey.append(JourneyStep("menu", step.node, walk.language, utcnow()))
                digits = await agi.get_data(
                    [self._file(p) for p in step.prompts], step.timeout_s, step.max_digits
                )
                # the moment the key was pressed (GET DATA returns on it), or the timeout
                kind = "key" if digits else "no-input"
                journey.append(JourneyStep(kind, step.node, digits, utcnow()))
                step = walk.answer(digits)
            finish = step
            if finish.prompts:
                await agi.stream([self._file(p) for p in finish.prompts], barge_in=True)
            route = finish.route
            if route == WORKORDER_STATUS:
                route = await self._tell_status(agi, finish, who, journey)
            detail = f"{route} ({finish.reason})"
            journey.append(JourneyStep("route", finish.node, detail, utcnow()))
            await agi.set_variable("HOTLINE_ROUTE_KIND", route.kind)
            await agi.set_variable("HOTLINE_ROUTE_NAME", route.name)
            await agi.set_variable("HOTLINE_LANGUAGE", walk.language)  # the ACD matches seats
            log.info("%s leaves the IVR to %s (%s)", who, route, finish.reason)
        except CallerHungUp:
            log.info("%s hung up in the IVR at node %s", who, walk.node)
            journey.append(JourneyStep("hangup", walk.node, "caller hung up in the IVR", utcnow()))
        except (AgiCommandError, TimeoutError):
            # The dialplan's default route (operator) stays set: the caller still gets a human.
            log.exception("%s: IVR failed; the dialplan sends the caller to the operator", who)
            journey.append(
                JourneyStep("error", walk.node, "IVR failed; operator fallback", utcnow())
            )
        finally:
            # the caller goes on (to the queue's music, say) while the record is written;
            # the record's close on hangup waits for these writes
            with self._store.writing(call.uniqueid):
                agi.release()
                await self._store.add_steps(call_id, journey)
                await self._store.finish_ivr(
                    call_id,
                    route=str(route) if route else None,
                    reason=finish.reason if finish else "hangup",
                    language=walk.language,
                    entered=finish.collected if finish else None,
                )

    def _file(self, prompt: Prompt) -> str:
        return str(self._prompts.path_for(prompt))

    async def _tell_status(
        self, agi: AgiChannel, finish: Finish, who: str, journey: list[JourneyStep]
    ) -> Route:
        """Read out the status of the work order the caller keyed in (3 + number + #), in
        the caller's language; the words spoken go to the call record."""
        number = finish.collected or ""
        language = finish.language
        status = await self._status_lookup(number, language) if number else None
        if status is None:
            log.info("%s asked for unknown work order %r: to the operator", who, number)
            text = self._menu.prompts.get("order-unknown")
            if text is not None:
                await agi.stream([self._file(text.prompt(language))], barge_in=True)
            return self._menu.operator_route
        log.info("%s hears the status of work order %s", who, number)
        spoken = await self._prompts.speak(Prompt(f"order-{number}", language, status))
        journey.append(JourneyStep("status", finish.node, status, utcnow()))
        await agi.stream([str(spoken)], barge_in=True)
        return HANGUP
