"""What a running lab has created, written down as it goes, so a crashed run can be undone.

One lab runs at a time on a machine: the first thing a lab does is take an exclusive lock
(`flock`, released by the kernel when its holder dies, however it dies). Whoever holds the
lock therefore knows that every state file it finds belongs to a run that is over, and can
undo exactly what that run recorded, touching nothing else.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ha.statusfile import UnsafeStateDirError, ensure_private, state_root, write_atomically
from harness.errors import HalabError
from harness.procs import start_ticks

#: The OVS external_ids key that marks a bridge as created by a halab run.
RUN_KEY = "halab-run"


def private_state_root() -> Path:
    """The state directory, created 0700; a HalabError if it is not halab's alone."""
    try:
        return ensure_private(state_root())
    except UnsafeStateDirError as exc:
        raise HalabError(f"The state directory is unsafe: {exc}.", "Fix it, then run again.") from None


@dataclass
class TrackedProcess:
    pid: int
    ticks: int
    what: str


@dataclass
class RunState:
    """Everything one run created: bridges, host namespaces, processes, root-namespace links."""

    run_id: str
    started_ticks: int
    bridges: list[str] = field(default_factory=list)
    netns: dict[str, int] = field(default_factory=dict)
    processes: list[TrackedProcess] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    hosts: dict[str, list[str]] = field(default_factory=dict)  # host -> its IPv4 addresses
    fence_socket: str | None = None
    fence_secret_file: str | None = None
    files: list[str] = field(default_factory=list)  # in the state directory: removed with the run
    dirs: list[str] = field(default_factory=list)   # under halab's own roots (PostgreSQL's data): removed too
    servers: list[str] = field(default_factory=list)  # other machines the run placed nodes on (harness.servers)

    @property
    def path(self) -> Path:
        return state_root() / f"run-{self.run_id}.json"

    def save(self) -> None:
        """Write atomically, so a crash mid-write leaves the previous complete version."""
        private_state_root()
        write_atomically(self.path, json.dumps(asdict(self), indent=1))

    def track(self, pid: int, what: str) -> None:
        ticks = start_ticks(pid)
        if ticks is not None:
            self.processes.append(TrackedProcess(pid, ticks, what))
            self.save()

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def new(cls) -> RunState:
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        state = cls(run_id=run_id, started_ticks=start_ticks(os.getpid()) or 0)
        state.save()
        return state

    @classmethod
    def load(cls, path: Path) -> RunState:
        raw = json.loads(path.read_text())
        raw["processes"] = [TrackedProcess(**p) for p in raw.get("processes", [])]
        return cls(**raw)


def leftover_states() -> list[Path]:
    """State files of earlier runs (call only while holding the lock)."""
    return sorted(state_root().glob("run-*.json"))


class LabLock:
    """The machine-wide lock that makes one lab run at a time."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def acquire(self) -> None:
        path = private_state_root() / "lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:  # ELOOP: a link at the lock's name
            raise HalabError(f"Cannot open the lab lock {path} ({exc.strerror}).",
                             f"Remove {path}; halab makes a new one.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise HalabError(
                f"Another halab lab is running on this machine (pid {holder}); labs share switch "
                "and host names, so only one runs at a time.",
                f"Wait for it to finish, or stop it with `kill {holder}` (it cleans up after itself).",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> LabLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
