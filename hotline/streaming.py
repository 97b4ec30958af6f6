"""Live transcription in the running engine: the AudioSocket server, the jobs, the panel.

Started by the composition root when live transcription is on and the transcription jobs
run (a usable Vosk model is configured); the sides are transcribed by ``hotline worker``
processes (``transcribe_stream`` jobs). Anything missing is logged once and calls go on
being transcribed from their recordings after hangup (the batch path).
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from hotline.settings import Settings
from intake.live import LiveTranscription
from intake.recording import AmiActions, RecordingListener
from speech.audiosocket import AudioSocketServer
from speech.jobs import TranscriptionJobs
from web.transcript import TranscriptPanel

log = logging.getLogger(__name__)


async def start_streaming(
    settings: Settings,
    ami: AmiActions,
    recordings: RecordingListener,
    panel: TranscriptPanel,
    stack: AsyncExitStack,
    jobs: TranscriptionJobs | None,
) -> LiveTranscription | None:
    """Live transcription wired to intake and the desk's panel; None when it is off."""
    s = settings
    if not s.live_transcription or jobs is None:
        log.info("live transcription off (%s): calls are transcribed from their recordings "
                 "after hangup", "no usable Vosk model" if s.live_transcription else
                 "live_transcription = false")  # fmt: skip
        return None
    live = LiveTranscription(jobs, ami, f"{s.audiosocket_host}:{s.audiosocket_port}",
                             on_heard=panel.heard, timeout_s=s.network_timeout_s)  # fmt: skip
    server = AudioSocketServer(live.sink)
    try:
        await server.start(s.audiosocket_host, s.audiosocket_port)
    except OSError as exc:
        log.error("live transcription off: AudioSocket server not started on %s:%s (%s)",
                  s.audiosocket_host, s.audiosocket_port, exc)  # fmt: skip
        return None
    stack.push_async_callback(server.stop)
    stack.push_async_callback(live.close)
    recordings.streams = live
    panel.live = live
    return live
