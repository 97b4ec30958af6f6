"""Live transcription of every connected call, each side apart, while the call runs.

When a citizen is put through to a seat (:meth:`LiveTranscription.connected`) the engine
AMI-Originates two AudioSocket channels (chan_audiosocket) into the dialplan's
``hotline-stream`` context, whose ChanSpy with ``o`` hears only what the spied channel says:
the citizen's channel gives the caller's side, the seat's channel the operator's. Their
frames reach the engine's AudioSocket server (:mod:`speech.audiosocket`), which puts them
into the side's Redis stream, a batch every :data:`FEED_EVERY_S` (not one XADD per 20 ms
frame), and enqueues the side's ``transcribe_stream`` job (:mod:`speech.jobs`): a
``hotline worker`` feeds them to :func:`speech.live.consume_side` and publishes what was
heard so far to the call's transcript stream, which the engine follows for the desk's live
panel (``on_heard``, :mod:`web.transcript`).

At hangup ChanSpy ends (``E``), the streams close (their end marker goes to Redis) and
:meth:`LiveTranscription.transcript` gives intake the whole call's transcript at once: both
sides' job results. It gives None — and intake transcribes the recording instead — when a
side never streamed, broke off early, did not end in time or its job did not finish in time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from calls.callerid import mask_number
from calls.lifecycle import ConnectedCall
from db.base import utcnow
from intake.recording import AmiActions
from pbx.ami import AmiActionError, AmiUnavailable
from speech.audiosocket import AudioSink
from speech.jobs import TranscriptionJobs, transcript_key
from speech.live import FrameQueue, Heard
from speech.pool import CALLER, OPERATOR, CallTranscript, Speaker, merge_call

log = logging.getLogger(__name__)

CONTEXT = "hotline-stream"  # asterisk-config/extensions.conf
KEEP_ENDED_S = 120.0  # an ended call's streams are forgotten this long after hangup if unclaimed
# A stream that ended this long before the call did broke off (ChanSpy leaves as its channel
# hangs up, a moment before the engine sees the call end).
EARLY_END_S = 2.0
# Frames gather this long between two XADDs of a side. One XADD+EXPIRE round trip takes
# ~0.2 ms (p50; p99 ~1.4 ms) on the local Redis whatever its size (1 or 10 frames): per 20 ms
# frame that is 50 a second per side, 5,000/s and about a second of the engine's loop each
# second for 50 calls; batched, a tenth of it, for 0.2 s more delay on the desk.
FEED_EVERY_S = 0.2
FOLLOW_BLOCK_MS = 1000  # one XREAD of the transcript stream waits this long (< socket timeout)

#: (call, side, what it said so far) → the desk
OnHeard = Callable[[ConnectedCall, Speaker, Heard], None]


@dataclass
class _Side:
    speaker: Speaker
    frames: FrameQueue
    task: asyncio.Task[None]  # feeds the side's Redis stream until the side ends
    heard: Heard = Heard("", "", False)


@dataclass
class _Call:
    call: ConnectedCall
    sides: dict[Speaker, _Side] = field(default_factory=dict)
    problem: str = ""  # why streaming is not usable for this call
    follower: asyncio.Task[None] | None = None  # the transcript stream → on_heard


class LiveTranscription:
    """A :class:`calls.lifecycle.CallListener`; intake's source of streamed transcripts."""

    def __init__(
        self,
        jobs: TranscriptionJobs,
        ami: AmiActions,
        address: str,  # host:port of the engine's AudioSocket server, as Asterisk reaches it
        on_heard: OnHeard | None = None,
        timeout_s: float = 5.0,
        finish_timeout_s: float = 5.0,
        drain_timeout_s: float = 60.0,
    ) -> None:
        self.jobs, self.ami, self.address = jobs, ami, address
        self.on_heard = on_heard
        self.timeout_s = timeout_s  # AMI deadline
        self.finish_timeout_s = finish_timeout_s  # after hangup, for the streams to end
        self.drain_timeout_s = drain_timeout_s  # then for the jobs to finish what they were given
        self._calls: dict[str, _Call] = {}
        self._streams: dict[uuid.UUID, FrameQueue] = {}
        self._forget: set[asyncio.Task[None]] = set()
        self._feeders: set[asyncio.Task[None]] = set()  # also after their call was dropped

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
        """Every frame of that side received so far is in its Redis stream (or it ended)."""
        live = self._calls.get(call_id)
        frames = live.sides[speaker].frames if live is not None else None
        return frames is None or frames.idle or frames.ended.is_set()

    def call_of(self, call_id: str) -> ConnectedCall | None:
        live = self._calls.get(call_id)
        return None if live is None else live.call

    # -- CallListener -----------------------------------------------------------------------
    async def connected(self, call: ConnectedCall) -> None:
        if (known := self._calls.get(call.call_id)) is not None:
            # put through to another seat (a transfer, a consultation): the streams go on
            # (the caller's channel; the first seat's side has ended), the words reach the
            # seat talking now
            known.call = replace(known.call, seat=call.seat)
            return
        live = self._calls[call.call_id] = _Call(call)
        for speaker, channel in ((CALLER, call.caller_channel), (OPERATOR, call.seat_channel)):
            stream_id = uuid.uuid4()
            frames = self._streams[stream_id] = FrameQueue()
            task = asyncio.create_task(self._feed(live, speaker, frames),
                                       name=f"live-{call.call_id}-{speaker}")  # fmt: skip
            self._feeders.add(task)
            task.add_done_callback(self._feeders.discard)
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
        live.follower = asyncio.create_task(self._follow(live), name=f"follow-{call.call_id}")
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
        try:
            if open_streams:
                live.problem = live.problem or (
                    f"the streams did not end within {self.finish_timeout_s:.0f} s of hangup"
                )
            else:  # their feeders send what is left and the end markers (or fail)
                await asyncio.gather(*(side.task for side in sides))
            if not live.problem:
                live.problem = _incomplete(live)
            if live.problem:
                log.warning("call %s at seat %s: streamed transcript not used: %s",
                            call_id, live.call.seat, live.problem)  # fmt: skip
                return None
            caller, operator = await asyncio.gather(*(
                self.jobs.stream_result(call_id, side, self.drain_timeout_s)
                for side in (CALLER, OPERATOR)
            ))  # fmt: skip
            return merge_call(caller, operator)
        except TimeoutError:
            log.warning("call %s at seat %s: streamed transcript not used: recognition not done "
                        "within %.0f s of hangup", call_id, live.call.seat,
                        self.drain_timeout_s)  # fmt: skip
            return None
        except Exception:
            log.exception("call %s: streamed transcript failed; using the recording", call_id)
            return None
        finally:
            self._drop(call_id)

    async def close(self) -> None:
        for call_id in list(self._calls):
            self._drop(call_id)
        for task in list(self._forget):
            task.cancel()
        if self._feeders:  # the sides' end markers go out (briefly), so their jobs finish
            await asyncio.wait(list(self._feeders), timeout=self.timeout_s)

    # -- inside --------------------------------------------------------------------------------
    async def _feed(self, live: _Call, speaker: Speaker, frames: FrameQueue) -> None:
        """The side's job, and its frames into its Redis stream until the side ends."""
        call_id = live.call.call_id
        try:
            await self.jobs.start_stream(call_id, speaker)
            async for chunk in frames.batches():
                await self.jobs.feed(call_id, speaker, chunk)
                if not frames.ended.is_set():  # (at the end the end marker goes at once)
                    await asyncio.sleep(FEED_EVERY_S)  # the next frames gather meanwhile
        except Exception as exc:  # Redis away: the side is not usable, the recording is
            log.warning("call %s %s side: not streamed to the jobs (%s)", call_id, speaker, exc)
            live.problem = live.problem or f"the {speaker} side could not be fed ({exc})"
            frames.closed(live.problem)
            return
        try:
            await self.jobs.end_stream(call_id, speaker)
        except Exception as exc:
            live.problem = live.problem or f"the {speaker} side's end was not sent ({exc})"

    async def _follow(self, live: _Call) -> None:
        """What the workers heard so far (the call's transcript stream) → ``on_heard``."""
        key, last = transcript_key(self.jobs.prefix, live.call.call_id), "0"
        finals: set[str] = set()
        redis: Any = self.jobs.redis  # (its stubs' unions are of no help here)
        while finals != {CALLER, OPERATOR}:
            try:
                batch = await redis.xread({key: last}, count=100, block=FOLLOW_BLOCK_MS)
            except Exception as exc:  # Redis away a moment: the panel waits, intake does not
                log.warning("call %s: live transcript not followed (%s)", live.call.call_id, exc)
                await asyncio.sleep(1)
                continue
            for _key, entries in batch or []:
                for entry_id, fields in entries:
                    last = entry_id
                    side, kind, text, partial = (_text(fields, name) for name in
                                                 ("side", "kind", "text", "partial"))  # fmt: skip
                    if side not in live.sides:
                        continue
                    if kind == "final":
                        finals.add(side)
                    else:
                        self._heard(live, side, text, partial)

    def _heard(self, live: _Call, speaker: Speaker, text: str, partial: str) -> None:
        before = live.sides[speaker].heard
        heard = live.sides[speaker].heard = Heard(text, partial, text != before.text)
        if self.on_heard is not None:
            try:
                self.on_heard(live.call, speaker, heard)
            except Exception:  # the desk's trouble never stops the transcript
                log.exception("call %s: live transcript not shown", live.call.call_id)

    async def _forget_later(self, call_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self._drop(call_id)

    def _drop(self, call_id: str) -> None:
        live = self._calls.pop(call_id, None)
        if live is None:
            return
        if live.follower is not None:
            live.follower.cancel()
        for side in live.sides.values():
            for stream_id in [k for k, v in self._streams.items() if v is side.frames]:
                del self._streams[stream_id]
            side.frames.closed("the call was dropped")  # its feeder sends the end marker


def _text(fields: dict[Any, Any], name: str) -> str:
    value = fields.get(name.encode(), fields.get(name, ""))
    return value.decode() if isinstance(value, bytes) else str(value)


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
