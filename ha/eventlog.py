"""The agents' JSON-lines event log: one line per state change, on both clocks."""

from __future__ import annotations

import json
import time
from pathlib import Path


class EventLog:
    """Append-only; `monotonic` lines up with the harness's probes, `wall` with everything else."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **fields: object) -> dict:
        record = {"monotonic": time.monotonic(), "wall": time.time(), **fields}
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record
