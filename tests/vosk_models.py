"""A Vosk model for tests that must hear the same words from the same audio twice.

Kaldi adds random noise ("dither") to every frame unless the model's mfcc.conf turns it
off, and its random state is shared by every recogniser in a process, so one recording gave
different words from one run to the next. The engine keeps dither (it keeps digital silence
from being heard as words); a test that compares two transcripts of one audio uses this view
of the model: symlinks to its files, with mfcc.conf copied plus ``--dither=0``.
"""

from __future__ import annotations

from pathlib import Path


def without_dither(model_dir: Path, into: Path) -> Path:
    """A view of ``model_dir`` at ``into`` whose features are computed without dither."""
    conf = next(model_dir / n for n in ("conf/mfcc.conf", "mfcc.conf") if (model_dir / n).is_file())
    into.mkdir(parents=True)
    _mirror(model_dir, into, conf)
    return into


def _mirror(source: Path, target: Path, conf: Path) -> None:
    for entry in source.iterdir():
        if entry == conf:
            (target / entry.name).write_text(conf.read_text().rstrip("\n") + "\n--dither=0\n")
        elif entry == conf.parent:
            (target / entry.name).mkdir()
            _mirror(entry, target / entry.name, conf)
        else:
            (target / entry.name).symlink_to(entry)
