"""Records every connected call and turns it into a drafted work order after hangup.

``connected`` asks Asterisk (AMI ``MixMonitor`` on the citizen's channel) for three files:
the mix, the citizen's side (``r()``, audio read from the citizen's channel) and the
operator's side (``t()``, audio written to it). ``finished`` hands the call to a background
job: wait until the files are closed, store path and duration, transcribe both sides, draft
the work order. Failures are logged with the call's uniqueid; the call never waits on us.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from calls.lifecycle import ConnectedCall
from db.base import utcnow
from hotline.private import private_dir
from intake.config import IntakeConfig
from intake.files import RecordingFiles, recording_files, wait_closed, wav_duration
from intake.store import RecordingStore
from intake.transcription import SideTranscriber, transcribe_sides
from pbx.ami import AmiActionError, AmiUnavailable
from speech.pool import CallTranscript
from workorders.orders import WorkOrder

log = logging.getLogger(__name__)

KEEP_RESULTS = 256  # finished intakes remembered for :meth:`RecordingListener.wait_done`


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
    ) -> WorkOrder: ...


@dataclass(frozen=True)
class IntakeResult:
    call_id: str
    files: RecordingFiles
    duration_s: float | None
    transcript: CallTranscript | None
    work_order_number: str | None
    problems: tuple[str, ...]


def mixmonitor_action(channel: str, files: RecordingFiles) -> dict[str, str]:
    return {
        "Action": "MixMonitor",
        "Channel": channel,
        "File": str(files.mix),
        "Options": f"r({files.caller})t({files.operator})",
        # Run by Asterisk after it closed every file: the signal that they are complete.
        "Command": f"/bin/touch {files.closed_marker}",
    }


class RecordingListener:
    """A :class:`calls.lifecycle.CallListener`: recording, transcript and draft of each call."""

    def __init__(
        self,
        config: IntakeConfig,
        ami: AmiActions,
        store: RecordingStore,
        drafter: CallDrafter,
        transcriber: SideTranscriber | None,
    ) -> None:
        self.config = config
        self.ami = ami
        self.store = store
        self.drafter = drafter
        self.transcriber = transcriber
        self._running: dict[str, asyncio.Task[IntakeResult | None]] = {}
        self._done: OrderedDict[str, IntakeResult | None] = OrderedDict()

    def files_of(self, call: ConnectedCall) -> RecordingFiles:
        return recording_files(self.config.recordings_dir, call.call_id, call.connected_at)

    # -- CallListener -----------------------------------------------------------------------
    async def connected(self, call: ConnectedCall) -> None:
        try:
            await self._start_recording(call)
        except Exception:
            log.exception("call %s from %s at seat %s: recording setup failed",
                          call.call_id, call.caller_number, call.seat)  # fmt: skip

    async def finished(self, call: ConnectedCall) -> None:
        """Schedule the intake; returns at once so the connector is never held up."""
        if call.call_id in self._running:
            log.debug("call %s: intake already running", call.call_id)
            return
        task = asyncio.create_task(self._intake_logged(call), name=f"intake-{call.call_id}")
        self._running[call.call_id] = task

        def remember(done: asyncio.Task[IntakeResult | None]) -> None:
            self._running.pop(call.call_id, None)
            if not done.cancelled():
                self._done[call.call_id] = done.result()
                while len(self._done) > KEEP_RESULTS:
                    self._done.popitem(last=False)

        task.add_done_callback(remember)

    # -- results and shutdown ---------------------------------------------------------------
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
        """Let running intakes finish within ``timeout``, then cancel what is left."""
        running = list(self._running.values())
        if not running:
            return
        log.info("waiting up to %.0f s for %d call intake(s)", timeout, len(running))
        _done, pending = await asyncio.wait(running, timeout=timeout)
        for task in pending:
            log.warning("intake %s cancelled at shutdown", task.get_name())
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- the work ---------------------------------------------------------------------------
    async def _start_recording(self, call: ConnectedCall) -> None:
        files = self.files_of(call)
        # 0700, owned like the recordings folder: by Asterisk's user, who writes the files
        await asyncio.to_thread(private_dir, files.mix.parent)
        status, error = "recording", ""
        try:
            async with asyncio.timeout(self.config.network_timeout_s):
                await self.ami.action(mixmonitor_action(call.caller_channel, files))
        except AmiActionError as exc:  # most often: the citizen hung up before we got here
            status, error = "failed", f"MixMonitor refused: {exc}"
            log.warning("call %s from %s at seat %s: not recorded: %s",
                        call.call_id, call.caller_number, call.seat, exc)  # fmt: skip
        except (AmiUnavailable, TimeoutError) as exc:
            status, error = "failed", f"MixMonitor not sent: {exc or 'AMI deadline passed'}"
            log.error("call %s from %s at seat %s: not recorded, AMI unavailable: %s",
                      call.call_id, call.caller_number, call.seat, exc)  # fmt: skip
        else:
            log.info("call %s from %s at seat %s: recording to %s",
                     call.call_id, call.caller_number, call.seat, files.mix)  # fmt: skip
        await self.store.started(
            call.call_id,
            caller_number=call.caller_number or "",
            seat=call.seat,
            connected_at=call.connected_at,
            paths=[str(p) for p in files.audio],
            status=status,
            error=error,
        )

    async def _stop_recording(self, call: ConnectedCall) -> None:
        """The seat may hang up first while the citizen's channel lives on: close the files now."""
        try:
            async with asyncio.timeout(self.config.network_timeout_s):
                await self.ami.action({"Action": "StopMixMonitor", "Channel": call.caller_channel})
        except AmiActionError as exc:  # the usual case: the citizen's channel is already gone
            log.debug("call %s: StopMixMonitor not needed: %s", call.call_id, exc)
        except (AmiUnavailable, TimeoutError) as exc:
            log.warning("call %s: StopMixMonitor not sent (%s); waiting for the hangup to close "
                        "the recording", call.call_id, exc or "AMI deadline passed")  # fmt: skip

    async def _intake_logged(self, call: ConnectedCall) -> IntakeResult | None:
        try:
            return await self.intake(call)
        except Exception:
            log.exception("call %s from %s at seat %s: intake failed",
                          call.call_id, call.caller_number, call.seat)  # fmt: skip
            return None

    async def intake(self, call: ConnectedCall) -> IntakeResult:
        """After hangup: files closed, duration stored, both sides transcribed, order drafted."""
        files = self.files_of(call)
        problems: list[str] = []
        existing = await self.store.get(call.call_id)
        if existing is not None and existing.error:
            problems.append(existing.error)  # e.g. MixMonitor refused when the call connected
        if existing is None:  # connected() never ran (e.g. the engine restarted meanwhile)
            await self.store.started(
                call.call_id, caller_number=call.caller_number or "", seat=call.seat,
                connected_at=call.connected_at, paths=[str(p) for p in files.audio],
            )  # fmt: skip
        await self._stop_recording(call)
        if not await wait_closed(files, self.config.recording_close_timeout_s):
            log.warning("call %s: recording files not closed within %.0f s; using what is there",
                        call.call_id, self.config.recording_close_timeout_s)  # fmt: skip
        duration: float | None = None
        try:
            duration = await asyncio.to_thread(wav_duration, files.mix)
        except ValueError as exc:
            log.warning("call %s from %s: no usable recording: %s",
                        call.call_id, call.caller_number, exc)  # fmt: skip
            problems.append(f"recording: {exc}")

        transcript: CallTranscript | None = None
        if self.transcriber is not None:
            transcript, side_problems = await transcribe_sides(
                self.transcriber, files.caller, files.operator, call.call_id,
                self.config.transcription_timeout_s,
            )  # fmt: skip
            problems.extend(side_problems)

        order = await self.drafter.draft_from_call(
            caller_phone=call.caller_number or "",
            started_at=call.connected_at,
            transcript_text=transcript.text if transcript is not None else "",
            recording_path=str(files.mix) if duration is not None else "",
            call_id=call.call_id,
        )
        status = "transcribed" if transcript is not None else "recorded"
        await self.store.update(
            call.call_id,
            ended_at=call.ended_at or utcnow(),
            status=status if duration is not None else "failed",
            duration_s=duration,
            transcript=transcript.to_dict() if transcript is not None else None,
            work_order_number=order.number,
            error="; ".join(problems),
        )
        log.info(
            "call %s from %s at seat %s: %s s recorded, %d transcript turns, drafted as %s",
            call.call_id, call.caller_number, call.seat,
            f"{duration:.1f}" if duration is not None else "no",
            len(transcript.turns) if transcript is not None else 0, order.number,
        )  # fmt: skip
        return IntakeResult(
            call_id=call.call_id,
            files=files,
            duration_s=duration,
            transcript=transcript,
            work_order_number=order.number,
            problems=tuple(problems),
        )
