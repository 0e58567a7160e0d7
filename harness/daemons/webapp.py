"""The web tier's application (harness.webapp) on a lab host."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.daemons.base import Daemon, Lab


class WebApp(Daemon):
    program = "webapp"
    pattern = r"-m harness\.webapp( |$)"

    def __init__(self, lab: Lab, host: str, listen: str, db_host: str, passfile: Path) -> None:
        super().__init__(lab, host)
        self.listen, self.db_host, self.passfile = listen, db_host, passfile

    def argv(self) -> list[str]:
        assert self.host is not None
        return [sys.executable, "-u", "-m", "harness.webapp", "--name", self.host, "--listen", self.listen,
                "--db-host", self.db_host, "--passfile", str(self.passfile)]

    def ready(self) -> bool:
        return self.process is not None and "serving on" in self.process.log_text()
