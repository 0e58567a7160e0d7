"""A process the lab started on a host (or in the root namespace, for the controller)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness import procs, servers
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

    def cpu_seconds(self) -> float | None:
        """Its CPU seconds so far, with the children it waited for; None once it is gone."""
        return procs.cpu_seconds(self.pid)

    def signal(self, sig: int) -> float:
        """Send `sig` and return the monotonic time it was sent."""
        t = time.monotonic()
        self.popen.send_signal(sig)
        return t

    def signal_pid(self, pid: int, sig: int) -> None:
        """Send `sig` to another process on this one's host (keepalived's VRRP child, say)."""
        os.kill(pid, sig)

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

    def frozen(self) -> bool:
        """Stopped by SIGSTOP (a `stop` fault): it answers nothing until it is continued."""
        if not self.alive():
            return False
        try:
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
        except (OSError, IndexError):
            return False

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


#: The signals a process on another server gets with its process group (RemoteProcess._kill).
GROUP_SIGNALS = (signal.SIGSTOP, signal.SIGCONT, signal.SIGKILL)


@dataclass
class RemoteProcess(LabProcess):
    """A process on a host on another server. Its local handle (`popen`) is the ssh client that
    carries its output to the log here and ends when it ends; signals go over ssh to its pid there."""

    server: str = ""
    log_offset: int = 0
    _remote_pid: int | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """Its pid on its server (the wrapper's first line in the log: servers.REMOTE_PID)."""
        deadline = time.monotonic() + 10.0
        while self._remote_pid is None:
            with self.log_path.open("rb") as f:
                f.seek(self.log_offset)
                lines = f.read().splitlines(keepends=True)  # a warning of sudo's may come first
            said = [line for line in lines if line.startswith(servers.REMOTE_PID.encode()) and line.endswith(b"\n")]
            if said:
                self._remote_pid = int(said[0][len(servers.REMOTE_PID):])
            elif not self.alive() or time.monotonic() > deadline:
                raise HalabError(f"{self.name} on {self.host} (server {self.server}) did not start.",
                                 f"See {self.log_path}.")
            else:
                time.sleep(0.01)
        return self._remote_pid

    def cpu_seconds(self) -> float | None:
        read = self._remote(f"cat /proc/{self.pid}/stat")
        return procs.stat_cpu_seconds(read.stdout) if read.returncode == 0 and ")" in read.stdout else None

    def _remote(self, command: str) -> subprocess.CompletedProcess:
        return servers.run_on(self.server, command, timeout=10.0)

    def _kill(self, pid: int, sig: int) -> None:
        """`sig` to the process there. SIGSTOP, SIGCONT and SIGKILL go to its process group: the
        process and the `sudo` the cluster edition runs it under, which stops when its command
        stops and, stopped, would hold the process's end of the ssh channel (and its exit status)
        after a SIGCONT to the process alone. Other signals go to the process alone, as here: sudo
        would pass them on, or die of one it does not handle (keepalived's JSON dump signal)."""
        target = f"-$(ps -o pgid= -p {pid} | tr -d ' ')" if sig in GROUP_SIGNALS else str(pid)
        self._remote(f"kill -{int(sig)} {target}")

    def signal(self, sig: int) -> float:
        """Ask its server to send `sig`; the monotonic time the request left (it lands one ssh
        round trip later)."""
        pid = self.pid
        t = time.monotonic()
        self._kill(pid, sig)
        return t

    def signal_pid(self, pid: int, sig: int) -> None:
        self._remote(f"kill -{int(sig)} {pid}")

    def stop(self, grace: float = 2.0) -> None:
        try:
            pid = self.pid if self.alive() else None
        except HalabError:  # it never said its pid: the ssh client is all there is to stop
            pid = None
        if pid is not None:
            self._kill(pid, signal.SIGCONT)
            self._kill(pid, self.stop_signal)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self._kill(pid, signal.SIGKILL)
        if self.alive():
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        super().stop()

    def frozen(self) -> bool:
        if not self.alive():
            return False
        state = self._remote(f"cut -d')' -f2 /proc/{self.pid}/stat").stdout.split()
        return bool(state) and state[0] == "T"
