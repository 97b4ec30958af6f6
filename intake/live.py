"""Live transcription of every connected call, each side apart, while the call runs.

When a citizen is put through to a seat (:meth:`LiveTranscription.connected`) the engine
AMI-Originates two AudioSocket channels (chan_audiosocket) into the dialplan's
``hotline-stream`` context, whose ChanSpy with ``o`` hears only what the spied channel says:
the citizen's channel gives the caller's side, the seat's channel the operator's. Their
frames reach the engine's AudioSocket server (:mod:`speech.audiosocket`) and go through one
:class:`~speech.stream.StreamRecogniser` per side (:func:`speech.live.consume_side`); what was
heard so far goes to ``on_heard`` (the desk's live panel, :mod:`web.transcript`).

At hangup ChanSpy ends (``E``), the streams close and :meth:`LiveTranscription.transcript`
gives intake the whole call's transcript at once. It gives None — and intake transcribes the
recording instead — when a side never streamed, broke off early or did not finish in time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from db.base import utcnow
from intake.recording import AmiActions
from pbx.ami import AmiActionError, AmiUnavailable
from speech.audiosocket import AudioSink
from speech.live import FrameQueue, Heard, consume_side
from speech.pool import CALLER, OPERATOR, CallTranscript, Speaker, merge_call
from speech.stream import StreamRecogniser
from speech.transcriber import Transcript

if TYPE_CHECKING:
    import vosk

log = logging.getLogger(__name__)

CONTEXT = "hotline-stream"  # asterisk-config/extensions.conf
KEEP_ENDED_S = 120.0  # an ended call's streams are forgotten this long after hangup if unclaimed
# A stream that ended this long before the call did broke off (ChanSpy leaves as its channel
# hangs up, a moment before the engine sees the call end).
EARLY_END_S = 2.0

#: (call, side, what it said so far) → the desk
OnHeard = Callable[[ConnectedCall, Speaker, Heard], None]


@dataclass
class _Side:
    speaker: Speaker
    frames: FrameQueue
    task: asyncio.Task[Transcript]
    heard: Heard = Heard("", "", False)


@dataclass
class _Call:
    call: ConnectedCall
    sides: dict[Speaker, _Side] = field(default_factory=dict)
    problem: str = ""  # why streaming is not usable for this call


class LiveTranscription:
    """A :class:`calls.lifecycle.CallListener`; intake's source of streamed transcripts."""

    def __init__(
        self,
        model: vosk.Model,
        ami: AmiActions,
        address: str,  # host:port of the engine's AudioSocket server, as Asterisk reaches it
        on_heard: OnHeard | None = None,
        timeout_s: float = 5.0,
        finish_timeout_s: float = 5.0,
        drain_timeout_s: float = 60.0,
    ) -> None:
        self.model, self.ami, self.address = model, ami, address
        self.on_heard = on_heard
        self.timeout_s = timeout_s  # AMI deadline
        self.finish_timeout_s = finish_timeout_s  # after hangup, for the streams to end
        self.drain_timeout_s = drain_timeout_s  # then for Vosk to finish what it was given
        self._calls: dict[str, _Call] = {}
        self._streams: dict[uuid.UUID, FrameQueue] = {}
        self._forget: set[asyncio.Task[None]] = set()

    def sink(self, stream_id: uuid.UUID) -> AudioSink | None:
        """The AudioSocket server's lookup: the side a stream belongs to."""
        frames = self._streams.get(stream_id)
        if frames is not None:
            frames.opened = True
        return frames

    def heard(self, call_id: str) -> dict[Speaker, Heard] | None:
        """What each side of a running (or just ended) call said so far."""
        live = self._calls.get(call_id)
        return None if live is None else {s: side.heard for s, side in live.sides.items()}

    def caught_up(self, call_id: str, speaker: Speaker) -> bool:
        """Vosk has been given every frame of that side received so far (or it ended)."""
        live = self._calls.get(call_id)
        frames = live.sides[speaker].frames if live is not None else None
        return frames is None or frames.idle or frames.ended.is_set()

    def call_of(self, call_id: str) -> ConnectedCall | None:
        live = self._calls.get(call_id)
        return None if live is None else live.call

    # -- CallListener -----------------------------------------------------------------------
    async def connected(self, call: ConnectedCall) -> None:
        if call.call_id in self._calls:
            return
        live = self._calls[call.call_id] = _Call(call)
        for speaker, channel in ((CALLER, call.caller_channel), (OPERATOR, call.seat_channel)):
            stream_id = uuid.uuid4()
            frames = self._streams[stream_id] = FrameQueue()
            task = asyncio.create_task(self._consume(live, speaker, frames),
                                       name=f"live-{call.call_id}-{speaker}")  # fmt: skip
            live.sides[speaker] = _Side(speaker, frames, task)
            if not channel:
                live.problem = f"no {speaker} channel to listen to"
                frames.closed(live.problem)
                continue
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self.ami.action({
                        "Action": "Originate",
                        "Channel": f"AudioSocket/{self.address}/{stream_id}/c(slin)",
                        "Context": CONTEXT, "Exten": "listen", "Priority": "1",
                        "Variable": f"HOTLINE_STREAM_CHANNEL={channel}",
                        "CallerID": f'"stream {speaker}" <{call.seat}>', "Async": "true",
                    })  # fmt: skip
            except (AmiActionError, AmiUnavailable, TimeoutError) as exc:
                live.problem = f"the {speaker} side could not be streamed ({exc})"
                log.warning("call %s from %s at seat %s: %s; transcribed from the recording",
                            call.call_id, mask_number(call.caller_number), call.seat,
                            live.problem)  # fmt: skip
                frames.closed(live.problem)
        log.info("call %s from %s at seat %s: live transcription started", call.call_id,
                 mask_number(call.caller_number), call.seat)  # fmt: skip

    async def finished(self, call: ConnectedCall) -> None:
        live = self._calls.get(call.call_id)
        if live is None:
            return
        live.call = call if call.ended_at else ConnectedCall(**{**call.__dict__,
                                                                "ended_at": utcnow()})  # fmt: skip
        task = asyncio.create_task(self._forget_later(call.call_id, KEEP_ENDED_S))
        self._forget.add(task)
        task.add_done_callback(self._forget.discard)

    # -- for intake --------------------------------------------------------------------------
    async def transcript(self, call_id: str) -> CallTranscript | None:
        """The call's streamed transcript once both streams ended; None: use the recording."""
        live = self._calls.get(call_id)
        if live is None:
            return None
        sides = list(live.sides.values())
        ends = [asyncio.ensure_future(side.frames.ended.wait()) for side in sides]
        _done, open_streams = await asyncio.wait(ends, timeout=self.finish_timeout_s)
        for waiting in open_streams:
            waiting.cancel()
        recognising: set[asyncio.Task[Transcript]] = set()
        if not open_streams:  # Vosk may still be catching up with the last seconds
            _finished, recognising = await asyncio.wait(
                [side.task for side in sides], timeout=self.drain_timeout_s
            )
        try:
            if open_streams or recognising:
                live.problem = live.problem or (
                    f"the streams did not end within {self.finish_timeout_s:.0f} s of hangup"
                    if open_streams
                    else f"recognition not done within {self.drain_timeout_s:.0f} s of hangup"
                )
            if not live.problem:
                live.problem = _incomplete(live)
            if live.problem:
                log.warning("call %s at seat %s: streamed transcript not used: %s",
                            call_id, live.call.seat, live.problem)  # fmt: skip
                return None
            caller, operator = (live.sides[s].task.result() for s in (CALLER, OPERATOR))
            return merge_call(caller, operator)
        except Exception:
            log.exception("call %s: streamed transcript failed; using the recording", call_id)
            return None
        finally:
            self._drop(call_id)

    async def close(self) -> None:
        for call_id in list(self._calls):
            for side in self._calls[call_id].sides.values():
                side.frames.closed()
            self._drop(call_id)
        for task in list(self._forget):
            task.cancel()

    # -- inside --------------------------------------------------------------------------------
    async def _consume(self, live: _Call, speaker: Speaker, frames: FrameQueue) -> Transcript:
        def heard(what: Heard) -> None:
            live.sides[speaker].heard = what
            if self.on_heard is not None:
                try:
                    self.on_heard(live.call, speaker, what)
                except Exception:  # the desk's trouble never stops the transcript
                    log.exception("call %s: live transcript not shown", live.call.call_id)

        recogniser = await asyncio.to_thread(StreamRecogniser, self.model)
        return await consume_side(frames.batches(), recogniser, heard)

    async def _forget_later(self, call_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._drop(call_id)

    def _drop(self, call_id: str) -> None:
        live = self._calls.pop(call_id, None)
        if live is None:
            return
        for side in live.sides.values():
            for stream_id in [k for k, v in self._streams.items() if v is side.frames]:
                del self._streams[stream_id]
            if not side.task.done():
                side.task.cancel()


def _incomplete(live: _Call) -> str:
    """Why a side's stream does not cover the call (empty: both do). A ChanSpy on a side
    without sound sends nothing, so a stream is judged by its connection, not its bytes."""
    ended = (live.call.ended_at or utcnow()).timestamp()
    for speaker in (CALLER, OPERATOR):
        frames = live.sides[speaker].frames
        if not frames.opened:
            return f"the {speaker} side never streamed"
        if frames.error:
            return f"the {speaker} stream broke off: {frames.error}"
        if frames.ended_at is None or frames.ended_at < ended - EARLY_END_S:
            return f"the {speaker} stream ended before the call"
    return ""
