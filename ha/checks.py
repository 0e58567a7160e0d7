"""Health-check commands run on their interval without ever blocking the agent's event loop.

Each run is a child process; the loop learns that it ended through a pidfd in its selector,
and one that overruns its timeout is killed and counts as a failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CheckRunner:
    argv: tuple[str, ...]
    interval: float
    timeout: float
    next_run: float = 0.0
    proc: subprocess.Popen | None = field(default=None, repr=False)
    pidfd: int | None = None
    started: float = 0.0
    capture: bool = False   # keep what the command printed: `output` (a few lines at most)
    output: str = ""

    def deadline(self) -> float:
        return self.started + self.timeout if self.proc else self.next_run

    def start(self, now: float) -> int | None:
        """Start a run; return the pidfd to watch (None if the command could not start: a failure)."""
        self.started = now
        self.next_run = now + self.interval
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE if self.capture else subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None
            return None
        self.pidfd = os.pidfd_open(self.proc.pid)
        return self.pidfd

    def finish(self, now: float) -> bool | None:
        """The run's verdict once it is over (killed if past its timeout); None while it runs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if now < self.started + self.timeout:
                return None
            self.proc.kill()
            self.proc.wait()
            ok = False
        else:
            ok = self.proc.returncode == 0
        if self.proc.stdout is not None:   # it has ended: the pipe holds all it said
            self.output = self.proc.stdout.read(4096).decode(errors="replace").strip() if ok else ""
            self.proc.stdout.close()
        self.proc = None
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        return ok

    def step(self, now: float, watch: Callable[[int, object], None], unwatch: Callable[[int], None]) -> list[bool]:
        """Collect a run that ended and start the next one when due, keeping the pidfd of the run
        in the agent's selector; the verdicts that came out (a command that cannot start fails)."""
        verdicts = []
        pidfd = self.pidfd
        verdict = self.finish(now)
        if verdict is not None:
            verdicts.append(verdict)
            if pidfd is not None:
                unwatch(pidfd)
        if self.proc is None and now >= self.next_run:
            pidfd = self.start(now)
            if pidfd is None:
                verdicts.append(False)
            else:
                watch(pidfd, "check")
        return verdicts

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.finish(0.0)
