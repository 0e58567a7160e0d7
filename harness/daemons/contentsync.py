"""The programs that keep the primary's web root on the standby: one per method and side.

tar: the periodic pusher on the primary, the receiver that unpacks on the standby. rsync: the
periodic pusher, Debian's rsync daemon on the standby. lsyncd: Debian's lsyncd (inotify, then
rsync) on the primary, the same rsync daemon on the standby.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.contentsync import command
from harness.contentsync.push import CYCLE_TIMEOUT_S, EXACT_MTIME, RSYNC_PORT, sent_bytes
from harness.daemons.base import Daemon, Lab


class _Sync(Daemon):
    def cpu(self) -> float:
        """Its CPU seconds so far (0 once it is gone)."""
        return (self.process.cpu_seconds() or 0.0) if self.process is not None else 0.0

    def totals(self) -> tuple[int, int]:
        """(transfers done, bytes they sent) so far, as the sender counts them."""
        return 0, 0


class SyncPush(_Sync):
    """The periodic tar or rsync of the primary's root (harness.contentsync.push)."""

    program = "sync-push"
    pattern = r"-m harness\.contentsync\.push( |$)"

    def __init__(self, lab: Lab, host: str, method: str, src: Path, target: str, period: float) -> None:
        super().__init__(lab, host)
        self.method, self.src, self.target, self.period = method, src, target, period
        self.cycle_log = self.base.with_suffix(".cycles")

    def argv(self) -> list[str]:
        return command("push", "--method", self.method, "--src", str(self.src), "--target", self.target,
                       "--period", f"{self.period:g}", "--log", str(self.cycle_log))

    def ready(self) -> bool:
        return self.process is not None and "first cycle done" in self.process.log_text()

    def totals(self) -> tuple[int, int]:
        text = self.cycle_log.read_text() if self.cycle_log.exists() else ""
        lines = [json.loads(line) for line in text.splitlines()]
        return sum(c["ok"] for c in lines), sum(c["bytes"] for c in lines)


class _Receiver(_Sync):
    """The standby's side: it writes into `root`, listens on the host's own address, and takes
    connections from `allow` (the primary) only."""

    def __init__(self, lab: Lab, host: str, root: Path, allow: str) -> None:
        super().__init__(lab, host)
        self.root, self.allow = root, allow

    @property
    def listen(self) -> str:
        return str(self.lab.topo.addresses[self.host][0].ip)


class TarReceiver(_Receiver):
    program = "untar"
    pattern = r"-m harness\.contentsync\.untar( |$)"

    def argv(self) -> list[str]:
        return command("untar", "--listen", self.listen, "--allow", self.allow, "--root", str(self.root))

    def ready(self) -> bool:
        return self.process is not None and "listening" in self.process.log_text()


class RsyncDaemon(_Receiver):
    """Debian's rsync daemon: the module `www` is the standby's root, writable by the primary only."""

    program = "rsyncd"
    pattern = r"^rsync --daemon --no-detach --config \S+/rsyncd-"

    def files(self) -> dict[Path, str]:
        return {self.base.with_suffix(".conf"):
                f"use chroot = no\n[www]\n    path = {self.root}\n    read only = no\n    uid = root\n"
                f"    gid = root\n    hosts allow = {self.allow}\n    hosts deny = *\n"}

    def argv(self) -> list[str]:
        return ["rsync", "--daemon", "--no-detach", "--config", str(self.base.with_suffix(".conf")),
                "--address", self.listen, "--port", str(RSYNC_PORT),
                "--log-file=/dev/stdout"]

    def ready(self) -> bool:
        return self.process is not None and "listening on port" in self.process.log_text()


class Lsyncd(_Sync):
    """Debian's lsyncd: the root's inotify events, gathered for `delay` seconds, then one rsync
    of the changed files (`--delete` included), one at a time."""

    program = "lsyncd"
    pattern = r"^lsyncd \S+/lsyncd-"

    def __init__(self, lab: Lab, host: str, src: Path, target: str, delay: float) -> None:
        super().__init__(lab, host)
        self.src, self.target, self.delay = src, target, delay

    def files(self) -> dict[Path, str]:
        extra = ", ".join(f'"{x}"' for x in ("--stats", EXACT_MTIME, f"--timeout={CYCLE_TIMEOUT_S:.0f}"))
        return {self.base.with_suffix(".lua"):
                "settings { nodaemon = true, insist = true }\n"
                f'sync {{ default.rsync, source = "{self.src}/", target = "rsync://{self.target}:{RSYNC_PORT}/www/",\n'
                f'       delay = {self.delay:g}, rsync = {{ archive = true, _extra = {{ {extra} }} }} }}\n'}

    def argv(self) -> list[str]:
        return ["lsyncd", str(self.base.with_suffix(".lua"))]

    def ready(self) -> bool:
        return self.process is not None and re.search(r"Startup of .* finished", self.process.log_text()) is not None

    def totals(self) -> tuple[int, int]:
        """Its rsync calls print --stats into lsyncd's output: one "Total bytes sent" each."""
        sent = sent_bytes(self.process.log_text() if self.process else "")
        return len(sent), sum(sent)
