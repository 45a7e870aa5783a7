"""Secrets a checkout generates for itself on first use and keeps under ``var/``, readable by
its owner only (0600): the embedded Redis password and, when SECRET_KEY is not set, the key
that signs sessions and links."""

import os
import secrets
import time
from pathlib import Path

VAR_DIR = Path(__file__).resolve().parent.parent / "var"


def local_secret(name: str, directory: Path = VAR_DIR) -> str:
    """The secret stored in ``<directory>/<name>``, generated (0600, exclusively) if there is
    none yet.

    Processes starting together (web, worker, beat) race to create it; the loser reads the
    winner's value, so they all agree."""
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / name
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_when_written(path)
    with os.fdopen(descriptor, "w") as secret_file:
        secret_file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _read_when_written(path: Path) -> str:
    """The content of ``path``, waiting for the process that just created it to write it."""
    for _ in range(100):
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.01)
    raise RuntimeError(f"{path} stays empty: delete it and start again")
