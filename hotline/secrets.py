"""Secrets generated once per installation and kept in ``data_dir/secrets.toml`` (mode 0600).

A secret given in the settings (file or ``HOTLINE_*`` variable) wins over the stored one.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path


def stored_secret(data_dir: Path, name: str) -> str:
    """Return the secret called ``name``, generating and storing it on first use."""
    path = data_dir / "secrets.toml"
    known: dict[str, str] = {}
    if path.is_file():
        known = {k: str(v) for k, v in tomllib.loads(path.read_text(encoding="utf-8")).items()}
    if name not in known:
        known[name] = secrets.token_urlsafe(24)
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(f'{key} = "{value}"\n' for key, value in sorted(known.items()))
        tmp.replace(path)
    return known[name]
