"""Feature codes dialled from a seat's softphone (FastAGI ``seat`` route).

``*21`` log in (the PIN is read by keypad, ``#`` ends it), ``*22`` log out, ``*23`` pause
(``*23<n>``: reason n of :data:`agents.states.PAUSE_REASONS`, 1-based; default "break"),
``*24`` resume. The seat is the softphone's endpoint (the channel ``PJSIP/<ext>-...``).
Each code answers with a short spoken confirmation or refusal. While the feature-code call
lasts the seat is offered no caller (:mod:`queueing.busy`): a seat that resumes with *24 is
rung once it has hung up, not during the confirmation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import RedisError

from agents.states import PAUSE_REASONS, SeatStateError
from ivr.tree import Prompt
from pbx.agi_channel import AgiChannel, CallerHungUp
from queueing.acd import Acd
from queueing.announce import Announcer
from queueing.channels import seat_of
from queueing.models import AcdError, LoginRefused

log = logging.getLogger(__name__)

_SAY = {
    "pin": "请输入密码，按井号键结束。",
    "login": "已登录。",
    "logout": "已退出。",
    "pause": "已暂停接听。",
    "resume": "已恢复接听。",
    "refused": "密码错误，登录失败。",
    "failed": "操作失败。",
}


class FeatureCodes:
    def __init__(
        self, acd: Acd, announcer: Announcer, on_change: Callable[[], None] | None = None
    ) -> None:
        self.acd, self.announcer = acd, announcer
        self._on_change = on_change

    async def run(self, agi: AgiChannel) -> None:
        call = agi.call
        seat = seat_of(call.channel)
        action = call.args[0] if call.args else ""
        who = f"seat {seat} ({call.uniqueid})"
        try:
            # busy until this channel hangs up (AMI Hangup, queueing.busy), before any change
            await self.acd.channel_up(seat, call.uniqueid)
        except (RedisError, OSError, TimeoutError, AcdError) as exc:
            log.warning("%s: the call not marked busy in the ACD (%s)", who, exc)
        try:
            await agi.command("ANSWER", deadline_s=10)
            outcome = await self._apply(agi, seat, action, who)
            await self._say(agi, outcome, who)
        except CallerHungUp:
            log.info("%s hung up during feature code %s", who, action)

    async def _apply(self, agi: AgiChannel, seat: str, action: str, who: str) -> str:
        try:
            if action == "login":
                pin_file = await self.announcer.file(Prompt("seat-pin", "zh", _SAY["pin"]), who)
                pin = await agi.get_data([pin_file or "silence/1"], 10, 12)
                await self.acd.login(seat, pin)
            elif action == "logout":
                await self.acd.logout(seat)
            elif action == "pause":
                index = int(agi.call.args[1]) if len(agi.call.args) > 1 else 1
                reason = PAUSE_REASONS[index - 1] if 1 <= index <= len(PAUSE_REASONS) else "other"
                await self.acd.pause(seat, reason)
            elif action == "resume":
                await self.acd.resume(seat)
            else:
                log.error("%s: unknown feature %r", who, action)
                return "failed"
        except LoginRefused:
            log.warning("%s: login refused (wrong PIN)", who)
            return "refused"
        except (SeatStateError, AcdError, ValueError) as exc:
            log.warning("%s: %s refused: %s", who, action, exc)
            return "failed"
        except (RedisError, OSError, TimeoutError):
            log.exception("%s: %s failed (ACD unreachable)", who, action)
            return "failed"
        log.info("%s: %s done by feature code", who, action)
        if self._on_change is not None:
            self._on_change()
        return action

    async def _say(self, agi: AgiChannel, outcome: str, who: str) -> None:
        file = await self.announcer.file(Prompt(f"seat-{outcome}", "zh", _SAY[outcome]), who)
        if file is not None:
            await agi.stream([file])
