"""The resources the active node owns, in the spirit of OCF resource agents: start in order,
stop in reverse, monitor while running. A VIP is built in (address plus gratuitous ARP); a
service is three commands (start, stop, monitor; exit status 0 means success)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from ha import announce, netlink
from ha.checks import CheckRunner
from ha.heartbeat.config import Resource

COMMAND_TIMEOUT_S = 10.0
GARP_REPEAT = 3


@dataclass
class Resources:
    items: tuple[Resource, ...]
    running: list[Resource] = field(default_factory=list)
    monitors: dict[str, CheckRunner] = field(default_factory=dict)

    def start(self) -> str | None:
        """Start everything in order; on the first failure stop what started and say which failed."""
        for r in self.items:
            error = self._start(r)
            if error is not None:
                self.stop()
                return f"{r.name}: {error}"
            self.running.append(r)
            if r.kind == "service":
                self.monitors[r.name] = CheckRunner(r.monitor, r.monitor_interval, r.monitor_timeout)
        return None

    def stop(self) -> list[str]:
        """Stop in reverse order; returns the failures (a stop that fails is reported, not retried)."""
        errors = []
        for r in reversed(self.running):
            runner = self.monitors.pop(r.name, None)
            if runner is not None:
                runner.stop()
            if r.kind == "vip":
                link = netlink.link(r.interface)
                netlink.remove_addresses(link.index, (r.address,))
            elif _run(r.stop) is not None:
                errors.append(r.name)
        self.running.clear()
        return errors

    def _start(self, r: Resource) -> str | None:
        if r.kind == "service":
            return _run(r.start)
        try:
            link = netlink.link(r.interface)
        except ValueError as exc:
            return str(exc)
        netlink.add_addresses(link.index, (r.address,))
        announce.announce(link.name, link.index, link.mac, [r.address.ip], repeat=GARP_REPEAT)
        return None


def _run(argv: tuple[str, ...]) -> str | None:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else f"exit status {done.returncode}: {done.stderr.decode()[-200:]}"
