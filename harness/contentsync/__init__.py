"""Content sync, as the course notes compare it: the primary's web root kept on the standby by a
periodic `tar` snapshot, a periodic `rsync -a --delete`, or event-driven `lsyncd` (inotify + rsync).

A writer changes files on the primary at a fixed rate, a reader on the standby records when each
version becomes visible there, and `analysis` turns both logs into staleness and what a crash of
the primary loses. `content` is the file format that lets the reader tell a whole file from a part.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ha.statusfile import beside_state


def command(program: str, *args: str) -> list[str]:
    """The argv that runs one of this package's programs (writer, reader, push, untar) on a lab host."""
    return [sys.executable, "-u", "-m", f"harness.contentsync.{program}", *args]


def sync_root() -> Path:
    """halab's own directory for the web roots of running sync labs, one per run, on each host's
    machine (/run/halab-sync): the standby's copy on its own disk, as a real one would be."""
    return beside_state("sync")
