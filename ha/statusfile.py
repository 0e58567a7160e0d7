"""Agents' status files: one JSON file per running agent, read by their `status` commands.

Written atomically (a reader never sees half a file); stamped with the agent's pid and network
namespace, so `status` on a host shows that host's agents and forgets those that were killed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def state_root() -> Path:
    return Path(os.environ.get("HALAB_STATE_DIR", "/run/halab"))


def own_path(kind: str) -> Path:
    """This process's status file for agents of `kind` ("vrrp", "heartbeat")."""
    return state_root() / kind / f"agent-{os.getpid()}.json"


def write(path: Path, status: dict) -> None:
    record = {"pid": os.getpid(), "netns": os.stat("/proc/self/ns/net").st_ino, **status}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def read(kind: str, all_hosts: bool = False) -> list[dict]:
    """Status of the live agents of `kind` in this network namespace (every namespace with all_hosts)."""
    here = os.stat("/proc/self/ns/net").st_ino
    found = []
    for path in sorted((state_root() / kind).glob("agent-*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{status['pid']}").exists():
            path.unlink(missing_ok=True)  # an agent that was killed could not remove it
        elif all_hosts or status["netns"] == here:
            found.append(status)
    return found
