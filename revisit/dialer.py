"""The one outbound dialer: a supervised loop that books queue callbacks due again (their
calls to citizens are on its record, :mod:`queueing.callback_retries`, and hold its lines
while they ring), schedules closed orders, claims due revisits in SQL within the lines left
and places each by AMI ``Originate`` (the callback's dial string) into the
``hotline-revisit`` context, whose answered call runs the FastAGI ``revisit`` route.

A call that is never answered ends with a Hangup event of the channel id the dialer gave it
(``rv-<revisit>-<random>``): busy, no answer or failed, retried by the schedule's rules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from panoramisk.message import Message
from sqlalchemy.exc import SQLAlchemyError

from calls.callerid import mask_number
from ivr.prompts import PromptError, PromptLibrary
from pbx.ami import AmiActionError, AmiClient, AmiUnavailable
from pbx.outbound import OutboundDial
from queueing.callback_retries import CallbackSchedule
from revisit.rules import Outcome, outcome_of_hangup
from revisit.service import REVISITED_FROM, Claimed, RevisitService
from revisit.texts import RevisitTexts

log = logging.getLogger(__name__)

CONTEXT = "hotline-revisit"
CHANNEL_PREFIX = "rv-"


@dataclass(frozen=True)
class DialOptions:
    dial: OutboundDial  # the callback's dial string (setting callback_dial)
    hotline_number: str = "12345"
    tick_s: float = 2.0


class RevisitDialer:
    def __init__(
        self,
        service: RevisitService,
        ami: AmiClient,
        prompts: PromptLibrary,
        texts: RevisitTexts,
        options: DialOptions,
        owner: str,
        *,
        callbacks: CallbackSchedule | None = None,
    ) -> None:
        self.service, self.ami, self.prompts, self.texts = service, ami, prompts, texts
        self.options, self.owner, self.callbacks = options, owner, callbacks
        self._kick = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self._endings: set[asyncio.Task[bool]] = set()
        self._started = False

    def kick(self) -> None:
        """Look for due revisits now (``hotline revisits run-now``, tests)."""
        self._kick.set()

    async def run(self, stopping: asyncio.Event) -> None:
        if not self._started:  # once per engine start, not per restart of the loop
            await self.service.recover(self.owner, at_start=True)
            self._started = True
        while not stopping.is_set():
            await self.tick()
            self._kick.clear()
            waits = [
                asyncio.ensure_future(stopping.wait()),
                asyncio.ensure_future(self._kick.wait()),
            ]
            await asyncio.wait(
                waits, timeout=self.options.tick_s, return_when=asyncio.FIRST_COMPLETED
            )
            for wait in waits:
                wait.cancel()
        if self._calls:
            await asyncio.wait(self._calls, timeout=5)

    async def tick(self) -> list[Claimed]:
        """One round: book callbacks due again, schedule, recover dead engines' attempts,
        place what is due."""
        if self.callbacks is not None:
            try:
                await self.callbacks.book_due()
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                log.warning("callback retries not checked this round (%s)", exc)
        await self.service.schedule_closed()
        await self.service.recover(self.owner)
        if not self.ami.connected:
            return []
        claimed = await self.service.claim(self.owner)
        for call in claimed:
            task = asyncio.create_task(self.place(call))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        return claimed

    async def place(self, call: Claimed) -> None:
        who = f"revisit of {call.order_number} to {mask_number(call.phone)} ({call.channel_id})"
        try:
            order = await self.service.work_orders.get(call.order_number)
            if order.state not in REVISITED_FROM:
                await self.service.not_needed(call.channel_id, order.state.value)
                return
            language = self.texts.language(call.language)
            summary = self.texts.summary(
                language,
                order.number,
                order.category,
                order.reply,
                self.service.policy.summary_chars,
            )
            await self.prompts.speak(summary)  # ready before the citizen answers
        except (PromptError, OSError) as exc:
            log.error("%s: summary not synthesised (%s); tried again later", who, exc)
            await self.service.finish(call.channel_id, Outcome.INTERRUPTED)
            return
        except Exception:  # the order vanished, the database failed: never a silent hold
            log.exception("%s: not placed; tried again later", who)
            await self.service.finish(call.channel_id, Outcome.INTERRUPTED)
            return
        ring_s = self.service.policy.ring_s
        action = {
            "Action": "Originate",
            "Channel": self.options.dial.channel(call.phone),
            "Context": CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "Timeout": str(ring_s * 1000),
            "CallerID": f'"{self.options.hotline_number}" <{self.options.hotline_number}>',
            "Async": "true",
            "ChannelId": call.channel_id,
        }
        log.info("%s: calling", who)
        try:
            answer: Any = await self.ami.action(action)
        except TimeoutError:
            return  # ringing: the route or the channel's Hangup ends the attempt
        except (AmiActionError, AmiUnavailable) as exc:
            log.warning("%s: not placed (%s); tried again later", who, exc)
            await self.service.finish(call.channel_id, Outcome.INTERRUPTED)
            return
        replies = answer if isinstance(answer, list) else [answer]
        failed = [r for r in replies if r.get("Response") == "Failure"]
        if failed:
            reason = failed[0].get("Reason", "")
            outcome = {"5": Outcome.BUSY, "3": Outcome.NO_ANSWER}.get(reason, Outcome.FAILED)
            log.info("%s: %s (Originate reason %s)", who, outcome, reason or "-")
            await self.service.finish(call.channel_id, outcome, unanswered_only=True)

    def on_hangup(self, event: Message) -> None:
        """AMI Hangup: a revisit channel that ended before it was answered."""
        channel_id = event.get("Uniqueid", "")
        if not channel_id.startswith(CHANNEL_PREFIX):
            return
        cause = event.get("Cause", "")
        outcome = outcome_of_hangup(int(cause) if cause.isdigit() else None, answered=False)
        task = asyncio.create_task(self.service.finish(channel_id, outcome, unanswered_only=True))
        self._endings.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[bool]) -> None:
        self._endings.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("revisit attempt's end not recorded (%s); its lease runs out and it is "
                      "tried again", task.exception())  # fmt: skip
