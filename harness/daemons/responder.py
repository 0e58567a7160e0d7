"""The probe responder on a lab host: answers every probe with its server's name."""

from __future__ import annotations

from harness import probe
from harness.daemons.base import Daemon, Lab


class Responder(Daemon):
    program = "responder"
    pattern = r"-m harness\.probe( |$)"  # the responder and every other probe command

    def __init__(self, lab: Lab, host: str, port: int = probe.PORT, tag: str = "",
                 capacity: tuple[int, float] | None = None) -> None:
        """`capacity`: (workers, service seconds) for a server that is busy (harness.probe.capacity)."""
        super().__init__(lab, host, tag)
        self.port = port
        self.capacity = capacity

    def argv(self) -> list[str]:
        limit = ["--workers", str(self.capacity[0]), "--service-ms", f"{self.capacity[1] * 1000:g}"] \
            if self.capacity else []
        return probe.command("serve", "--name", self.host or "root", "--port", str(self.port), *limit)

    def ready(self) -> bool:
        return self.process is not None and "serving" in self.process.log_text()
