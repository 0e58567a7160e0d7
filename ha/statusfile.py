"""halab's state directory, and the agents' status files in it.

Everything halab keeps while it runs lives under one directory (HALAB_STATE_DIR, /run/halab by
default: tmpfs, so a reboot, which ends every run, clears it): the lab lock and run records, the
fencing socket, and one JSON status file per running agent. Run records drive `kill` and
`ip link del`, so the directory is created 0700 and refused when anyone else could write to it.

Status files are written atomically (a reader never sees half a file) and stamped with the
agent's pid and network namespace, so `status` on a host shows that host's agents and forgets
those that were killed.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path


class UnsafeStateDirError(OSError):
    """The state directory is not halab's alone: a link, another owner, or writable by others."""


def state_root() -> Path:
    return Path(os.environ.get("HALAB_STATE_DIR", "/run/halab"))


def beside_state(kind: str) -> Path:
    """halab's own directory for one kind of run data kept outside the run directory, beside the
    state directory (/run/halab-<kind>): a test that moves the state directory moves it too, so
    that its clean-up can never touch a running lab's data."""
    state = state_root()
    return state.with_name(f"{state.name}-{kind}")


def ensure_private(directory: Path) -> Path:
    """Create `directory` 0700 if needed; refuse it unless it is a real directory of ours, closed to others."""
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise UnsafeStateDirError(f"{directory} must be a directory owned by uid {os.geteuid()} that no one else can "
                             f"write to (it is mode {stat.filemode(info.st_mode)}, owner {info.st_uid}); "
                             f"remove it or set HALAB_STATE_DIR to another path")
    return directory


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` through a fresh temporary file (never through a link at the name)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def own_path(kind: str) -> Path:
    """This process's status file for agents of `kind` ("vrrp", "heartbeat")."""
    return state_root() / kind / f"agent-{os.getpid()}.json"


def write(path: Path, status: dict) -> None:
    ensure_private(path.parent.parent)
    ensure_private(path.parent)
    record = {"pid": os.getpid(), "netns": os.stat("/proc/self/ns/net").st_ino, **status}
    write_atomically(path, json.dumps(record))


def read(kind: str, all_hosts: bool = False) -> list[dict]:
    """Status of the live agents of `kind` in this network namespace (every namespace with all_hosts)."""
    here = os.stat("/proc/self/ns/net").st_ino
    found = []
    for path in sorted((state_root() / kind).glob("agent-*.json")):
        try:
            status = json.loads(path.read_text())
            pid, netns = int(status["pid"]), int(status["netns"])
        except (OSError, ValueError, TypeError, KeyError):
            continue  # unreadable, half-written by hand, or not ours to read
        if not Path(f"/proc/{pid}").exists():
            try:
                path.unlink(missing_ok=True)  # an agent that was killed could not remove it
            except OSError:
                pass  # not ours to remove (a reader without root)
        elif all_hosts or netns == here:
            found.append(status)
    return found
