"""Where the controller's unix sockets are, and who may reach them: root alone, and in a lab over
several servers also the user whose ssh carries a second copy of each to the other servers
(harness.servers.forward_sockets logs in as that user)."""

from __future__ import annotations

import os
from pathlib import Path


def places(path: Path, relay_dir: Path | None, kind: str) -> list[tuple[Path, int | None]]:
    """(path, owner) for each place to serve the `kind` socket ("fence", "assist"): `path`, for
    root alone; and `relay_dir`/KIND.sock, if given, for the owner of that directory."""
    found: list[tuple[Path, int | None]] = [(path, None)]
    if relay_dir is not None:
        found.append((relay_dir / f"{kind}.sock", relay_dir.stat().st_uid))
    return found


def restrict(path: Path, owner: int | None) -> None:
    """Only root, and `owner` if given, may connect to the socket at `path`."""
    path.chmod(0o600)
    if owner is not None:
        os.chown(path, owner, -1)
