"""The FastAGI ``revisit`` route: the citizen answered a revisit call. They hear, in the
language of their original call, the order's summary (number digit by digit, category, the
reply cut short), then "resolved 1 / not 2" and "very satisfied 1 / satisfied 2 /
dissatisfied 3". No key or a wrong key repeats a question twice; then the survey counts as
unanswered and the revisit goes to the manual list."""

from __future__ import annotations

import logging

from ivr.prompts import PromptLibrary
from pbx.agi_channel import AgiChannel, CallerHungUp
from revisit.rules import Outcome
from revisit.service import SATISFACTION_KEYS, RevisitService
from revisit.texts import RevisitTexts

log = logging.getLogger(__name__)

TRIES = 3  # the question, and twice again


class RevisitRoute:
    def __init__(
        self,
        service: RevisitService,
        texts: RevisitTexts,
        prompts: PromptLibrary,
        *,
        key_timeout_s: float = 5.0,
    ) -> None:
        self.service, self.texts, self.prompts = service, texts, prompts
        self.key_timeout_s = key_timeout_s

    def files(self, part: str, language: str) -> list[str]:
        return [str(self.prompts.path_for(self.texts.fixed(part, language)))]

    async def run(self, agi: AgiChannel) -> None:
        channel_id = agi.call.uniqueid
        call = await self.service.answered(channel_id)
        if call is None:
            log.error("revisit route: no revisit attempt in flight for call %s", channel_id)
            return
        who = f"revisit of {call.order_number} ({channel_id})"
        language = self.texts.language(call.language)
        ended = False
        try:
            order = await self.service.work_orders.get(call.order_number)
            summary = self.texts.summary(
                language,
                order.number,
                order.category,
                order.reply,
                self.service.policy.summary_chars,
            )
            await agi.stream([str(await self.prompts.speak(summary))])
            resolved = await self._ask(agi, "resolved", language, "12")
            satisfaction = None
            if resolved is not None:
                satisfaction = await self._ask(agi, "satisfaction", language, "123")
            if resolved is None or satisfaction is None:
                ended = await self.service.finish(channel_id, Outcome.NO_SURVEY)
                log.info("%s: no answer to the survey", who)
                await agi.stream(self.files("no_answer", language))
                return
            await self.service.complete(
                channel_id, resolved == "1", SATISFACTION_KEYS[satisfaction]
            )
            ended = True
            log.info("%s: resolved %s, %s", who, resolved == "1", SATISFACTION_KEYS[satisfaction])
            await agi.stream(self.files("thanks", language))
        except CallerHungUp:
            log.info("%s: the citizen hung up%s", who, "" if ended else " before the survey's end")
        finally:
            if not ended:
                await self.service.finish(channel_id, Outcome.HUNG_UP)

    async def _ask(self, agi: AgiChannel, part: str, language: str, keys: str) -> str | None:
        for _ in range(TRIES):
            got = await agi.get_data(self.files(part, language), self.key_timeout_s, 1)
            if got and got in keys:
                return got
        return None
