"""Render the Asterisk configuration from the templates in ``asterisk-config/``.

Templates hold ``{{name}}`` placeholders; an unknown placeholder is an error rather than a
silently broken PBX. Asterisk's own ``${...}`` syntax is left alone.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from hotline.private import Owner, private_file, write_private
from hotline.settings import PROJECT_DIR

TEMPLATES_DIR = PROJECT_DIR / "asterisk-config"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class PbxConfig:
    """The values the templates are rendered from, assembled by the composition root.

    ``seats_pjsip`` / ``queues`` / ``queuerules`` come from the agents domain
    (:mod:`agents.pjsip`): the seats file is their one source."""

    sip_host: str
    sip_port: int
    rtp_port_start: int
    rtp_port_end: int
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: str
    agi_host: str
    agi_port: int
    agi_key: str  # every AGI() URL carries it (see pbx.fastagi.route_url)
    hotline_number: str
    citizen_networks: str
    queue_max_wait_s: int
    recordings_dir: Path
    moh_dir: Path
    operator_queue: str = "operator"
    seats_pjsip: str = ""
    queues: str = ""
    queuerules: str = ""
    queue_first_band: int = 1  # QUEUE_MAX_PENALTY before the fallback Queue() relaxes it
    # Transfers (queueing/transfer.py): the outbound dial string of an emergency handover,
    # ${HOTLINE_TRANSFER_NUMBER} in place of the number, and how long it rings.
    transfer_dial: str = "PJSIP/citizens/sip:${HOTLINE_TRANSFER_NUMBER}@127.0.0.1"
    transfer_ring_s: int = 60
    transfer_codes: str = ""  # a seat's transfer codes (queueing.transfer.render_codes)
    system_name: str = "hotline12345"  # asterisk.conf: the prefix of every call id
    ami_event_filter: str = ""  # the AMI events the engine's user gets (pbx.ami.event_filter)


def render_template(text: str, values: Mapping[str, object], name: str = "template") -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise TemplateError(f"{name}: unknown placeholder {{{{{key}}}}}")
        return str(values[key])

    return _PLACEHOLDER.sub(substitute, text)


def render_all(config: PbxConfig) -> dict[str, str]:
    """Every template rendered, by file name."""
    values = asdict(config)
    return {
        path.name: render_template(path.read_text(encoding="utf-8"), values, path.name)
        for path in sorted(TEMPLATES_DIR.glob("*.conf"))
    }


def write_config(
    etc_dir: Path, rendered: Mapping[str, str], owner: Owner | None = None
) -> list[str]:
    """Write rendered files (0600: they hold the AMI and seat secrets, owned by ``owner``,
    Asterisk's user); return the names whose content changed."""
    etc_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in rendered.items():
        target = etc_dir / name
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            private_file(target, owner)
            continue
        write_private(target, text, owner)
        changed.append(name)
    return changed


# A seat's transfer prompts (features.conf), below moh_dir (not in it: hold music plays every
# file of that folder).
TRANSFER_BEEP = "sounds/transfer-beep"


def ensure_transfer_beep(moh_dir: Path) -> None:
    """A short beep (8 kHz mono WAV, sox), once: the prompt of a seat's #1 transfer."""
    target = moh_dir / f"{TRANSFER_BEEP}.wav"
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(target),
                    "synth", "0.25", "sine", "880", "vol", "0.3"],
                   check=True, capture_output=True)  # fmt: skip


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
