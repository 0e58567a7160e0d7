"""A process the lab started on a host (or in the root namespace, for the controller)."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.errors import HalabError


@dataclass
class LabProcess:
    """A process the lab started on a host (or in the root namespace, for the controller)."""

    name: str
    host: str
    popen: subprocess.Popen
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)
    #: What asks it to stop (PostgreSQL's fast shutdown is SIGINT; its SIGTERM waits for every client).
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> float:
        """Send `sig` and return the monotonic time it was sent."""
        t = time.monotonic()
        self.popen.send_signal(sig)
        return t

    def stop(self, grace: float = 2.0) -> None:
        """Its stop signal (SIGTERM), then SIGKILL after `grace` seconds; a stopped (SIGSTOP) process
        is continued first."""
        if self.alive():
            for sig in (signal.SIGCONT, self.stop_signal):
                try:
                    self.popen.send_signal(sig)
                except ProcessLookupError:
                    break
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if self._log:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, text: str, timeout: float) -> None:
        """Wait until the process has printed `text` (it is ready); a clear error if it died or is slow."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if not self.alive():
                raise HalabError(f"{self.name} on {self.host} exited early:\n{self.log_text()[-1500:]}",
                                 f"See {self.log_path}.")
            if time.monotonic() > deadline:
                raise HalabError(f"{self.name} on {self.host} did not start within {timeout:.0f} s.",
                                 f"See {self.log_path}.")
            time.sleep(0.02)
