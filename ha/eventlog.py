"""halab's event log: one JSON line per change of state, in one schema for every daemon.

    {"monotonic": 812.301, "wall": 1795750196.9, "source": "halab-vrrp", "subject": "VI_1",
     "from": "BACKUP", "to": "MASTER", "reason": "master down timer expired", ...details}

`monotonic` lines up with the harness's probes (CLOCK_MONOTONIC is one clock for every network
namespace), `wall` with everything else. `subject` is what changed: a VRRP instance, a cluster
node, a heartbeat link, a load balancer's backend. Extra keys may follow the seven (a VRRP
instance's priority, say); readers rely on the seven only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

FIELDS = ("monotonic", "wall", "source", "subject", "from", "to", "reason")
#: A log this large moves to <name>.1 (replacing the one before): a flapping link cannot fill a tmpfs.
MAX_BYTES = 8 << 20


class EventLog:
    """Append-only. Writing is best effort: a full or unwritable disk never stops a daemon."""

    def __init__(self, path: Path | None, source: str) -> None:
        self.path = path
        self.source = source
        self.failed_writes = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, subject: str, old: str | None, new: str, reason: str, **detail: object) -> dict:
        record = {"monotonic": time.monotonic(), "wall": time.time(), "source": self.source, "subject": subject,
                  "from": old, "to": new, "reason": reason, **detail}
        if self.path is not None:
            try:
                if self.path.exists() and self.path.stat().st_size > MAX_BYTES:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))  # one older file is kept
                with self.path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError:
                self.failed_writes += 1
        return record


def read(path: Path) -> list[dict]:
    """Every complete record of the log at `path`, oldest first (none if it does not exist).

    A record without `monotonic` (keepalived's notify script can only stamp the wall clock) gets
    one from `wall`; one without `from` gets its subject's previous `to`.
    """
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    offset = time.time() - time.monotonic()
    last: dict[str, str] = {}
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if not isinstance(record, dict) or not all(k in record for k in ("wall", "subject", "to")):
            continue
        record.setdefault("monotonic", record["wall"] - offset)
        record.setdefault("from", last.get(record["subject"]))
        record.setdefault("reason", "")
        record.setdefault("source", path.stem)
        last[record["subject"]] = record["to"]
        records.append(record)
    return records
