"""Speech: Vosk transcription of call recordings, by file, in a worker pool, or streamed.

The model is any Vosk model directory given by path; nothing is ever downloaded.
"""

from speech.errors import ModelMissingError, RecordingError, SpeechError, WorkerPoolError
from speech.model import default_test_model, load_model, locate_model
from speech.transcriber import Transcriber, Transcript, Word

__all__ = [
    "ModelMissingError",
    "RecordingError",
    "SpeechError",
    "Transcriber",
    "Transcript",
    "Word",
    "WorkerPoolError",
    "default_test_model",
    "load_model",
    "locate_model",
]
