"""Turns every connected call into a drafted work order after hangup, and never loses one.

The dialplan records the call (MixMonitor, see :mod:`intake.files`); the engine needs no AMI
``system`` right. ``connected`` keeps the recording's row. ``finished`` first writes the call
to the durable outbox (:mod:`intake.outbox`), then a background job: waits until Asterisk has
closed the files, transcribes both sides (kept in the outbox file, so a retry does not
transcribe again), drafts the work order — exactly once per call, the call's uniqueid being
the key — stores the recording's row and removes the outbox file. A database that is down
is retried with backoff until it answers. :meth:`RecordingListener.recover` (at start, then
periodically) resumes the outbox and drafts calls whose recordings have no order, such as
calls that ended while the engine was down. Failures are logged with the call's uniqueid.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError

from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from db.base import utcnow
from intake.config import IntakeConfig
from intake.files import RecordingFiles, locate_recording, wait_closed, wav_duration
from intake.onward import OnwardCalls
from intake.outbox import Outbox, PendingDraft
from intake.recovery import CallLookup, live_calls, orphan_draft, unannounced
from intake.store import RecordingStore
from intake.transcription import SideTranscriber, transcribe_sides
from pbx.ami import AmiActionError, AmiUnavailable
from speech.pool import CallTranscript
from workorders.orders import WorkOrder

log = logging.getLogger(__name__)

KEEP_RESULTS = 256  # finished intakes remembered for :meth:`RecordingListener.wait_done`
# Errors of a database (or disk) that is unreachable for now: retried until it answers.
TRANSIENT = (DBAPIError, OSError, TimeoutError, ConnectionError)
T = TypeVar("T")


class AmiActions(Protocol):
    async def action(self, action: dict[str, str], *, as_list: bool = False) -> Any: ...


class CallDrafter(Protocol):
    async def draft_from_call(
        self,
        caller_phone: str,
        started_at: datetime,
        transcript_text: str,
        recording_path: str,
        call_id: str,
        *,
        seat: str = "",
        queue: str = "",
    ) -> WorkOrder: ...


class StreamedTranscripts(Protocol):
    async def transcript(self, call_id: str) -> CallTranscript | None:
        """The call's transcript streamed while it ran; None: transcribe the recording."""
        ...


@dataclass(frozen=True)
class IntakeResult:
    call_id: str
    files: RecordingFiles
    duration_s: float | None
    transcript: dict[str, Any] | None  # CallTranscript.to_dict()
    work_order_number: str
    problems: tuple[str, ...]


class RecordingListener:
    """A :class:`calls.lifecycle.CallListener`: recording, transcript and draft of each call."""

    def __init__(
        self,
        config: IntakeConfig,
        ami: AmiActions,
        store: RecordingStore,
        drafter: CallDrafter,
        transcriber: SideTranscriber | None,
        outbox: Outbox,
        calls: CallLookup | None = None,
    ) -> None:
        self.config = config
        self.calls = calls
        self.ami = ami
        self.store = store
        self.drafter = drafter
        self.transcriber = transcriber
        self.outbox = outbox
        # transferred calls: their recording ends with the citizen's channel
        self.onward = OnwardCalls(ami, calls, config.network_timeout_s)
        self.streams: StreamedTranscripts | None = None  # live transcription (intake.live)
        self._running: dict[str, asyncio.Task[IntakeResult | None]] = {}
        self._done: OrderedDict[str, IntakeResult | None] = OrderedDict()

    def files_of(self, call_id: str, connected_at: datetime) -> RecordingFiles:
        return locate_recording(self.config.recordings_dir, call_id, connected_at)

    # -- CallListener -----------------------------------------------------------------------
    async def connected(self, call: ConnectedCall) -> None:
        """Keep the recording's row (the dialplan records); a database down is caught up later."""
        files = self.files_of(call.call_id, call.connected_at)
        try:
            await self.store.started(
                call.call_id, caller_number=call.caller_number or "", seat=call.seat,
                skill=call.skill, connected_at=call.connected_at,
                paths=[str(p) for p in files.audio],
            )  # fmt: skip
        except TRANSIENT as exc:
            log.warning("call %s from %s at seat %s: recording row not stored yet (%s); "
                        "written with the draft", call.call_id, mask_number(call.caller_number),
                        call.seat, exc)  # fmt: skip

    async def finished(self, call: ConnectedCall) -> None:
        """Write the call to the outbox (durable before this returns), then draft it in the
        background: the connector is never held up by transcription or the database."""
        draft = PendingDraft.of_call(call)
        if draft.ended_at is None:
            draft = PendingDraft.of_call(ConnectedCall(**{**call.__dict__, "ended_at": utcnow()}))
        if call.call_id not in self._running:
            try:
                await asyncio.to_thread(self.outbox.put, draft)
            except OSError as exc:  # e.g. a full disk: draft it anyway, without the safety net
                log.error("call %s: draft not written to the outbox %s (%s): a crash before it "
                          "lands loses it", call.call_id, self.outbox.folder, exc)  # fmt: skip
        self.schedule(draft)

    # -- the background jobs ----------------------------------------------------------------
    def schedule(self, draft: PendingDraft) -> None:
        if draft.call_id in self._running:
            log.debug("call %s: intake already running", draft.call_id)
            return
        task = asyncio.create_task(self._intake_logged(draft), name=f"intake-{draft.call_id}")
        self._running[draft.call_id] = task

        def remember(done: asyncio.Task[IntakeResult | None]) -> None:
            self._running.pop(draft.call_id, None)
            if not done.cancelled():
                self._done[draft.call_id] = done.result()
                while len(self._done) > KEEP_RESULTS:
                    self._done.popitem(last=False)

        task.add_done_callback(remember)

    async def recover(self, settle_s: float = 60.0) -> int:
        """Resume the outbox, then draft calls whose recordings have no order and whose
        channels are gone (Asterisk asked). Returns how many calls were scheduled."""
        scheduled = 0
        for draft in await asyncio.to_thread(self.outbox.pending):
            if draft.call_id not in self._running:
                log.info("call %s: resuming its draft from the outbox", draft.call_id)
                self.schedule(draft)
                scheduled += 1
        settled = utcnow() - timedelta(seconds=settle_s)
        orphans = [orphan_draft(r) for r in await self.store.undrafted(before=settled)]
        orphans += await unannounced(self.config.recordings_dir, self.store, self.calls, settled)
        orphans = [d for d in orphans if d.call_id not in self._running and d.call_id not in
                   self.outbox]  # fmt: skip
        if not orphans:
            return scheduled
        live = await live_calls(self.ami, self.config.network_timeout_s)
        if live is None:
            log.info("%d recordings without an order: Asterisk not reachable to tell whether "
                     "their calls ended; trying again later", len(orphans))  # fmt: skip
            return scheduled
        for draft in orphans:
            if draft.call_id in live:
                continue
            log.warning("call %s from %s at seat %s: recorded but never drafted (the engine "
                        "was down when it ended, or the native queue answered it); drafting "
                        "it now", draft.call_id, mask_number(draft.caller_number),
                        draft.seat or "unknown")  # fmt: skip
            await asyncio.to_thread(self.outbox.put, draft)
            self.schedule(draft)
            scheduled += 1
        return scheduled

    async def run_recovery(self, stop: asyncio.Event) -> None:
        """:meth:`recover` at start and every ``recovery_interval_s`` until ``stop``."""
        while not stop.is_set():
            try:
                await self.recover()
            except TRANSIENT as exc:  # the outbox was resumed; orphans are looked at next time
                log.warning("intake recovery: %s; trying again in %.0f s", _short(exc),
                            self.config.recovery_interval_s)  # fmt: skip
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.config.recovery_interval_s)
            except TimeoutError:
                continue

    async def wait_done(self, call_id: str, timeout: float) -> IntakeResult | None:
        """The intake result of a finished call (None if it failed), waiting up to ``timeout``."""
        task = self._running.get(call_id)
        if task is not None:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(task)
        if call_id in self._done:
            return self._done[call_id]
        raise KeyError(f"no intake for call {call_id}")

    async def close(self, timeout: float = 30.0) -> None:
        """Let running intakes finish within ``timeout``, then cancel the rest: their drafts
        stay in the outbox and are resumed at the next start."""
        running = list(self._running.values())
        if not running:
            return
        log.info("waiting up to %.0f s for %d call intake(s)", timeout, len(running))
        _done, pending = await asyncio.wait(running, timeout=timeout)
        for task in pending:
            log.warning("%s left in the outbox at shutdown; resumed at the next start",
                        task.get_name())  # fmt: skip
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- the work ---------------------------------------------------------------------------
    async def _intake_logged(self, draft: PendingDraft) -> IntakeResult | None:
        try:
            return await self.intake(draft)
        except Exception:
            log.exception("call %s from %s at seat %s: intake failed; the draft stays in the "
                          "outbox and is tried again", draft.call_id,
                          mask_number(draft.caller_number), draft.seat)  # fmt: skip
            return None

    async def intake(self, draft: PendingDraft) -> IntakeResult:
        """Files closed, both sides transcribed, the order drafted, the outbox file removed."""
        files = self.files_of(draft.call_id, draft.connected_at)
        if not draft.transcribed:
            draft = await self._transcribe(draft, files)
            await asyncio.to_thread(self.outbox.put, draft)
        drafter = self.drafter
        order = await self._retrying(draft, "draft", lambda: drafter.draft_from_call(
            caller_phone=draft.caller_number,
            started_at=draft.connected_at,
            transcript_text=draft.transcript_text,
            recording_path=draft.recording_path,
            call_id=draft.call_id,
            seat=draft.seat,
            queue=draft.skill,
        ))  # fmt: skip
        status = _status(draft, transcribing=self.transcriber is not None)
        await self._retrying(draft, "store the recording", lambda: self.store.save(
            draft.call_id,
            caller_number=draft.caller_number, seat=draft.seat, skill=draft.skill,
            connected_at=draft.connected_at, ended_at=draft.ended_at or utcnow(),
            mix_path=str(files.mix), caller_path=str(files.caller),
            operator_path=str(files.operator),
            status=status,
            duration_s=draft.duration_s, transcript=draft.transcript,
            work_order_number=order.number, error="; ".join(draft.problems),
        ))  # fmt: skip
        await asyncio.to_thread(self.outbox.remove, draft.call_id)
        log.info(
            "call %s from %s at seat %s: %s s recorded, %d transcript turns, drafted as %s",
            draft.call_id, mask_number(draft.caller_number), draft.seat,
            f"{draft.duration_s:.1f}" if draft.duration_s is not None else "no",
            len((draft.transcript or {}).get("turns", [])), order.number,
        )  # fmt: skip
        return IntakeResult(
            call_id=draft.call_id,
            files=files,
            duration_s=draft.duration_s,
            transcript=draft.transcript,
            work_order_number=order.number,
            problems=draft.problems,
        )

    async def _transcribe(self, draft: PendingDraft, files: RecordingFiles) -> PendingDraft:
        problems: list[str] = list(draft.problems)
        streamed = None
        if draft.caller_channel and await self.onward.goes_on(draft.call_id):
            log.info("call %s from %s: transferred from seat %s; its recording goes on until "
                     "the caller hangs up", draft.call_id, mask_number(draft.caller_number),
                     draft.seat)  # fmt: skip
            await self.onward.wait_over(draft.call_id)  # streamed: the first seat's part only
            draft = replace(draft, ended_at=utcnow())
        elif self.streams is not None:  # finishes while the recording's files close
            streamed = asyncio.create_task(self.streams.transcript(draft.call_id))
        await self._stop_recording(draft)
        if not await wait_closed(files, self.config.recording_close_timeout_s):
            log.warning("call %s: recording files not closed within %.0f s; using what is there",
                        draft.call_id, self.config.recording_close_timeout_s)  # fmt: skip
        duration: float | None = None
        try:
            duration = await asyncio.to_thread(wav_duration, files.mix)
        except ValueError as exc:
            log.warning("call %s from %s: no usable recording: %s",
                        draft.call_id, mask_number(draft.caller_number), exc)  # fmt: skip
            problems.append(f"recording: {exc}")
        transcript = await streamed if streamed is not None else None
        if transcript is not None:
            log.info("call %s: streamed transcript taken (%d turns); recording not transcribed",
                     draft.call_id, len(transcript.turns))  # fmt: skip
        elif self.transcriber is not None and duration is not None:
            log.info("call %s: recording closed (%.1f s), transcribing both sides",
                     draft.call_id, duration)  # fmt: skip
            transcript, side_problems = await transcribe_sides(
                self.transcriber, files.caller, files.operator, draft.call_id,
                self.config.transcription_timeout_s,
            )  # fmt: skip
            problems.extend(side_problems)
        return draft.with_transcription(
            duration_s=duration,
            transcript=transcript.to_dict() if transcript is not None else None,
            transcript_text=transcript.text if transcript is not None else "",
            recording_path=str(files.mix) if duration is not None else "",
            problems=tuple(problems),
        )

    async def _stop_recording(self, draft: PendingDraft) -> None:
        """The seat may hang up first while the citizen's channel lives on: StopMixMonitor
        closes the files before it answers. Usually the channel is already gone (Hangup)."""
        if not draft.caller_channel:
            return
        try:
            async with asyncio.timeout(self.config.network_timeout_s):
                await self.ami.action({"Action": "StopMixMonitor", "Channel": draft.caller_channel})
        except AmiActionError as exc:  # the usual case: the citizen's channel is already gone
            log.debug("call %s: StopMixMonitor not needed: %s", draft.call_id, exc)
        except (AmiUnavailable, TimeoutError) as exc:
            log.warning("call %s: StopMixMonitor not sent (%s); waiting for the hangup to close "
                        "the recording", draft.call_id, exc or "AMI deadline passed")  # fmt: skip

    async def _retrying(
        self, draft: PendingDraft, what: str, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        """``attempt()`` until the database answers, waiting longer after each failure."""
        delay, tries = self.config.retry_initial_s, 0
        while True:
            try:
                return await attempt()
            except TRANSIENT as exc:
                tries += 1
                log.warning("call %s: cannot %s (try %d: %s); trying again in %.1f s",
                            draft.call_id, what, tries, _short(exc), delay)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.retry_max_s)


def _status(draft: PendingDraft, *, transcribing: bool) -> str:
    """transcribed; recorded (no model configured); failed (see the row's error): no usable
    recording, or neither side transcribed (e.g. Vosk workers that died twice)."""
    if draft.duration_s is None:
        return "failed"
    if draft.transcript is not None:
        return "transcribed"
    return "failed" if transcribing else "recorded"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
