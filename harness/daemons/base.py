"""One shape for every program the lab runs: its command line, its files, its readiness, its
events, its status, and the pattern that finds it if it outlives its lab.

In the spirit of IPMininet's Daemon (ipmininet/router/config/base.py): a daemon knows its name,
renders its configuration, says how it starts and how to tell that it is ready. `start` writes
the files, starts the process on its host and waits until it is ready, or raises a HalabError
with the tail of its log; it never returns a daemon that is not serving.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import ClassVar, Protocol, Self

from harness import events
from harness.clocks import SAME, ClockOffset
from harness.errors import HalabError
from harness.events import Event
from harness.hostfs import HostFiles
from harness.process import LabProcess
from harness.servers import LOCAL
from topologies.base import LabTopo

READY_TIMEOUT_S = 15.0
#: The lab's agents (halab's and keepalived) run their loops SCHED_RR at this priority, as corosync
#: does by default: on two busy cores their adverts and heartbeats still leave on time (ha.realtime).
AGENT_REALTIME_PRIORITY = 10


class Lab(Protocol):
    """What a daemon needs of the lab it runs in (harness.lab.Lab is one)."""

    topo: LabTopo
    run_dir: Path
    cluster_secret: str | None
    fence_socket: Path | None
    assist_socket: Path | None

    def spawn(self, host: str | None, name: str, argv: list[str]) -> LabProcess: ...

    def run(self, host: str, argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess: ...

    def server_of(self, host: str) -> str: ...

    def clock_of(self, host: str) -> ClockOffset: ...

    def record_dir(self, path: Path) -> None: ...

    def socket_for(self, host: str, kind: str) -> Path | None: ...


class Daemon:
    """A program on a lab host (`host` None: the root namespace, where the controller runs)."""

    #: The name it goes by: in logs, run directories, the registry.
    program: ClassVar[str]
    #: A regular expression over its command line (`pgrep -f`) that finds it, for leftover checks.
    pattern: ClassVar[str]
    #: The signal that asks it to stop cleanly (the teardown of a crashed run uses it too).
    stop_signal: ClassVar[int] = signal.SIGTERM

    def __init__(self, lab: Lab, host: str | None, tag: str = "") -> None:
        """`tag` tells apart two daemons of one program on one host."""
        self.lab = lab
        self.host = host
        self.tag = tag
        self.process: LabProcess | None = None

    @property
    def name(self) -> str:
        return f"{self.log_name}@{self.host or 'root'}"

    @property
    def log_name(self) -> str:
        """Its output goes to <run dir>/<host>-<log_name>.log."""
        return f"{self.program}-{self.tag}" if self.tag else self.program

    @property
    def host_files(self) -> HostFiles:
        """The files of the machine its host runs on (harness.hostfs): this one's, or another's."""
        return HostFiles(self.lab.server_of(self.host) if self.host is not None else LOCAL)

    @property
    def base(self) -> Path:
        """Where its files go: <run dir>/<log_name>-<host>.*"""
        return self.lab.run_dir / f"{self.log_name}-{self.host or 'root'}"

    # --- what each daemon says -------------------------------------------------------------

    def files(self) -> dict[Path, str]:
        """Configuration files to write before it starts (mode 0600: they may hold secrets)."""
        return {}

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether it serves now (checked until READY_TIMEOUT_S after the start)."""
        return True

    @property
    def event_log(self) -> Path | None:
        """Where it logs its changes of state (ha.eventlog), if it does."""
        return None

    def events(self) -> list[Event]:
        """Its changes of state, on this machine's monotonic clock."""
        return []

    def read_events(self, path: Path) -> list[Event]:
        """The events of its log, stamped on its host's machine's clock, on this one's."""
        clock = self.lab.clock_of(self.host) if self.host is not None else SAME
        return events.read(path, self.host or "root", clock)

    def status(self) -> object:
        return None

    # --- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT_S) -> Self:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> Self:
        """Write its files and start it without waiting (`wait_ready` waits): a lab starts many at once."""
        self.write_files()
        self.process = self.lab.spawn(self.host, self.log_name, self.argv())
        self.process.stop_signal = self.stop_signal
        return self

    def write_files(self) -> None:
        """Fresh files, never through a link someone left at the name, readable by root only."""
        for path, text in self.files().items():
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.process.alive():
                raise HalabError(f"{self.name} exited at start:\n{self.process.log_text()[-1500:]}",
                                 f"See {self.process.log_path}.")
            if time.monotonic() > deadline:
                raise HalabError(f"{self.name} was not ready within {timeout:g} s:\n"
                                 f"{self.process.log_text()[-1500:]}", f"See {self.process.log_path}.")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def frozen(self) -> bool:
        """Stopped by SIGSTOP (a `stop` fault): it answers nothing until it is continued."""
        return self.process is not None and self.process.frozen()

    def signal(self, sig: int) -> float:
        """Send `sig` to the process that does the work; the monotonic time it was sent."""
        assert self.process is not None
        return self.process.signal(sig)

    def crash(self) -> float:
        """Die without a word (SIGKILL); when it died."""
        return self.signal(signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
