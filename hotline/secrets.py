"""Secrets generated once per installation and kept in ``data_dir/secrets.toml`` (mode 0600).

A secret given in the settings (file or ``HOTLINE_*`` variable) wins over the stored one.
"""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path

from hotline.private import private_dir, private_file, write_private


def stored_secret(data_dir: Path, name: str) -> str:
    """Return the secret called ``name``, generating and storing it on first use."""
    path = data_dir / "secrets.toml"
    known: dict[str, str] = {}
    if path.is_file():
        known = {k: str(v) for k, v in tomllib.loads(path.read_text(encoding="utf-8")).items()}
    if name not in known:
        known[name] = secrets.token_urlsafe(24)
        private_dir(data_dir)
        write_private(path, "".join(f'{k} = "{v}"\n' for k, v in sorted(known.items())))
    elif path.stat().st_mode & 0o077:
        private_file(path)  # a copy restored with looser rights
    return known[name]
