"""Render the Asterisk configuration from the templates in ``asterisk-config/``.

Templates hold ``{{name}}`` placeholders; an unknown placeholder is an error rather than a
silently broken PBX. Asterisk's own ``${...}`` syntax is left alone.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hotline.settings import PROJECT_DIR, Settings

TEMPLATES_DIR = PROJECT_DIR / "asterisk-config"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class PbxContext:
    """What the templates need beyond the settings, assembled by the composition root.

    ``queues_conf`` / ``queuerules_conf`` / ``seats_pjsip`` come from the agents domain
    (:mod:`agents.pjsip`): the seats file is their one source."""

    ami_secret: str
    operator_queue: str = "operator"
    seats_pjsip: str = ""
    queues_conf: str = ""
    queuerules_conf: str = ""
    queue_first_band: int = 1  # QUEUE_MAX_PENALTY before the fallback Queue() relaxes it


def render_template(text: str, values: Mapping[str, object], name: str = "template") -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise TemplateError(f"{name}: unknown placeholder {{{{{key}}}}}")
        return str(values[key])

    return _PLACEHOLDER.sub(substitute, text)


def template_values(settings: Settings, context: PbxContext) -> dict[str, object]:
    return {
        "sip_host": settings.sip_host,
        "sip_port": settings.sip_port,
        "rtp_port_start": settings.rtp_port_start,
        "rtp_port_end": settings.rtp_port_end,
        "ami_host": settings.ami_host,
        "ami_port": settings.ami_port,
        "ami_user": settings.ami_user,
        "ami_secret": context.ami_secret,
        "agi_host": settings.agi_host,
        "agi_port": settings.agi_port,
        "hotline_number": settings.hotline_number,
        "citizen_networks": settings.citizen_networks,
        "operator_queue": context.operator_queue,
        "queue_max_wait_s": settings.queue_max_wait_s,
        "recordings_dir": settings.recordings_dir,
        "moh_dir": settings.moh_dir,
        "seats_pjsip": context.seats_pjsip,
        "queues": context.queues_conf,
        "queuerules": context.queuerules_conf,
        "queue_first_band": context.queue_first_band,
    }


def render_all(settings: Settings, context: PbxContext) -> dict[str, str]:
    """Every template rendered, by file name."""
    values = template_values(settings, context)
    return {
        path.name: render_template(path.read_text(encoding="utf-8"), values, path.name)
        for path in sorted(TEMPLATES_DIR.glob("*.conf"))
    }


def write_config(etc_dir: Path, rendered: Mapping[str, str]) -> list[str]:
    """Write rendered files; return the names whose content changed."""
    etc_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in rendered.items():
        target = etc_dir / name
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.write_text(text, encoding="utf-8")
        changed.append(name)
    return changed


def ensure_hold_music(moh_dir: Path) -> None:
    """Generate a soft hold melody (8 kHz mono WAV) with sox, once."""
    target = moh_dir / "hold-melody.wav"
    if target.is_file():
        return
    moh_dir.mkdir(parents=True, exist_ok=True)
    notes = ["C4", "E4", "G4", "E4", "D4", "F4", "A4", "F4"] * 4
    parts = []
    for index, note in enumerate(notes):
        part = moh_dir / f".note-{index}.wav"
        subprocess.run(
            [
                "sox",
                "-n",
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                str(part),
                "synth",
                "0.6",
                "sine",
                note,
                "fade",
                "0.05",
                "0.6",
                "0.1",
                "vol",
                "0.3",
            ],
            check=True,
            capture_output=True,
        )
        parts.append(part)
    subprocess.run(["sox", *map(str, parts), str(target)], check=True, capture_output=True)
    for part in parts:
        part.unlink()
