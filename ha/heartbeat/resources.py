"""The resources the active node owns, in the spirit of OCF resource agents: start in order,
stop in reverse (the agent monitors them while they run, on its own loop). A VIP is built in
(address plus gratuitous ARP); a service is three commands (start, stop, monitor; exit status 0
means success)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field

from ha import announce, netlink
from ha.heartbeat.config import Resource

COMMAND_TIMEOUT_S = 10.0
GARP_REPEAT = 3


@dataclass
class Resources:
    items: tuple[Resource, ...]
    running: list[Resource] = field(default_factory=list)
    #: Per VIP interface, its announcer with the packet socket open (opening one at a takeover costs
    #: ms); its interface index is where the VIP goes.
    announcers: dict[str, announce.Announcer] = field(default_factory=dict)

    def prepare(self) -> None:
        """Open the VIP interfaces' announcers now, before a takeover needs them."""
        for r in self.items:
            if r.kind == "vip":
                self._announcer(r.interface).open()

    def start(self) -> str | None:
        """Start everything in order; on the first failure stop what started and say which failed.

        A resource counts as running from the moment its start begins, so a start that half
        worked (the address added, its announcement failed) is still stopped afterwards.
        """
        for r in self.items:
            self.running.append(r)
            error = self._start(r)
            if error is not None:
                self.stop()
                return f"{r.name}: {error}"
        return None

    def stop(self) -> list[str]:
        """Stop in reverse order, every one of them even when one fails; the failures, by name."""
        errors = []
        for r in reversed(self.running):
            error = self._stop(r)
            if error is not None:
                errors.append(f"{r.name}: {error}")
        self.running.clear()
        return errors

    def announce(self) -> list[str]:
        """Gratuitous ARP again for every running VIP: clients that followed another node come back."""
        return [f"{r.name}: {error}" for r in self.running if r.kind == "vip" and (error := self._announce(r))]

    def stop_leftovers(self) -> list[str]:
        """At start, before any role: stop what an earlier life killed before it could (SIGKILL,
        OOM) left behind: every VIP removed, every service whose monitor says it runs stopped
        (Pacemaker probes its resources at start the same way). A standby must hold nothing."""
        errors = []
        for r in reversed(self.items):
            if r.kind == "vip" or run_command(r.monitor) is None:
                if (error := self._stop(r)) is not None:
                    errors.append(f"{r.name}: {error}")
        return errors

    def _start(self, r: Resource) -> str | None:
        if r.kind != "vip":
            return run_command(r.start)
        try:
            # the announcer's interface index: looking the link up again (a new netlink socket) costs ms
            netlink.add_addresses(self._announcer(r.interface).ifindex, (r.address,))
        except Exception as exc:  # ValueError (no such interface), OSError, NetlinkError
            return str(exc) or type(exc).__name__
        return self._announce(r)

    def _announcer(self, interface: str) -> announce.Announcer:
        if interface not in self.announcers:
            link = netlink.link(interface)
            self.announcers[interface] = announce.Announcer(link.name, link.index, link.mac)
        return self.announcers[interface]

    def _announce(self, r: Resource) -> str | None:
        """Gratuitous ARP for a VIP resource; the error, if any."""
        try:
            self._announcer(r.interface).announce([r.address.ip], repeat=GARP_REPEAT)
        except Exception as exc:  # ValueError (no such interface), OSError
            return str(exc) or type(exc).__name__
        return None

    def _stop(self, r: Resource) -> str | None:
        if r.kind != "vip":
            return run_command(r.stop)
        try:
            netlink.remove_addresses(self._announcer(r.interface).ifindex, (r.address,))
        except Exception as exc:
            return str(exc) or type(exc).__name__
        return None


def run_command(argv: tuple[str, ...]) -> str | None:
    """Run a resource's command, bounded in time; None if it succeeded, else what went wrong."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else f"exit status {done.returncode}: {done.stderr.decode()[-200:]}"


def run_for_output(argv: tuple[str, ...], timeout: float) -> tuple[bool, str]:
    """Run a longer job (a database rejoin) in a session of its own: whether it succeeded, and
    the last of what it said. Past `timeout`, the whole session is killed, children included,
    so nothing it started keeps writing after the agent gave up on it."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    except OSError as exc:
        return False, str(exc)
    try:
        said, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return False, f"timed out after {timeout:g} s"
    return proc.returncode == 0, said.strip()[-300:]
