"""keepalived, the VRRP daemon people run in production, as the baseline on lab hosts.

halab writes its configuration in keepalived's own vocabulary, starts it in the foreground
(one per host, its own pid files), and learns its state changes from a notify script that
stamps each one on the wall clock; `read_events` maps them onto the monotonic clock.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from harness.lab import Lab, LabProcess

NOTIFY_SCRIPT = """#!/bin/sh
# keepalived calls: notify INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>
echo "$(date +%s.%N) $2 $3" >> {events}
"""


@dataclass(frozen=True)
class VrrpInstance:
    """One VRRP instance, named as keepalived names its keys."""

    interface: str
    priority: int
    virtual_ipaddress: str
    virtual_router_id: int = 51
    advert_int: float = 1.0
    name: str = "VI_1"
    preempt: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 255:
            raise ValueError(f"priority={self.priority}: keepalived allows 1 to 255")
        if not 1 <= self.virtual_router_id <= 255:
            raise ValueError(f"virtual_router_id={self.virtual_router_id}: VRRP allows 1 to 255")
        if not 0.01 <= self.advert_int <= 40.95:
            raise ValueError(f"advert_int={self.advert_int}: VRRPv3 allows 0.01 to 40.95 seconds")


@dataclass(frozen=True)
class StateEvent:
    """An agent's state change, on the monotonic clock."""

    at: float
    host: str
    instance: str
    state: str


def render_config(host: str, inst: VrrpInstance, notify: Path) -> str:
    """keepalived.conf for one host, VRRP version 3 (fractional advert_int)."""
    return f"""global_defs {{
    router_id {host}
    vrrp_version 3
    script_user root
    enable_script_security
}}

vrrp_instance {inst.name} {{
    state BACKUP
    interface {inst.interface}
    virtual_router_id {inst.virtual_router_id}
    priority {inst.priority}
    advert_int {inst.advert_int:g}
    {"" if inst.preempt else "nopreempt"}
    virtual_ipaddress {{
        {inst.virtual_ipaddress}
    }}
    notify {notify}
}}
"""


@dataclass
class Keepalived:
    """keepalived running on one lab host."""

    host: str
    process: LabProcess
    vrrp_pid_file: Path
    events_file: Path

    @property
    def name(self) -> str:
        return f"keepalived@{self.host}"

    def vrrp_pid(self, timeout: float = 5.0) -> int:
        """PID of the VRRP child, the process that actually sends adverts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.vrrp_pid_file.read_text().strip() if self.vrrp_pid_file.exists() else ""
            if text.isdigit():
                return int(text)
            time.sleep(0.05)
        raise RuntimeError(f"keepalived on {self.host} wrote no VRRP pid file; see {self.process.log_path}")

    def crash(self) -> float:
        """Kill keepalived as a crash would, and return when its VRRP process died.

        The parent is frozen first: it would otherwise restart a dead child, and a child told
        of its parent's death would leave cleanly with a priority-0 advert.
        """
        child = self.vrrp_pid()
        os.kill(self.process.pid, signal.SIGSTOP)
        at = time.monotonic()
        os.kill(child, signal.SIGKILL)
        os.kill(self.process.pid, signal.SIGKILL)
        return at


def start(lab: Lab, host: str, inst: VrrpInstance) -> Keepalived:
    """Write the config and notify script to the run directory and start keepalived on `host`."""
    base = lab.run_dir / f"keepalived-{host}"
    events = base.with_suffix(".events")
    notify = base.with_suffix(".notify.sh")
    notify.write_text(NOTIFY_SCRIPT.format(events=events))
    notify.chmod(0o700)
    conf = base.with_suffix(".conf")
    conf.write_text(render_config(host, inst, notify))
    pids = {k: base.with_suffix(f".{k}.pid") for k in ("main", "vrrp", "checkers")}
    for p in pids.values():
        p.unlink(missing_ok=True)
    argv = ["keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
            "--use-file", str(conf), "--pid", str(pids["main"]), "--vrrp_pid", str(pids["vrrp"]),
            "--checkers_pid", str(pids["checkers"])]
    proc = lab.spawn(host, "keepalived", argv)
    return Keepalived(host, proc, pids["vrrp"], events)


def read_events(kad: Keepalived) -> list[StateEvent]:
    """State changes from the notify log, converted from wall clock to monotonic."""
    if not kad.events_file.exists():
        return []
    offset = time.time() - time.monotonic()
    events = []
    for line in kad.events_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            events.append(StateEvent(float(parts[0]) - offset, kad.host, parts[1], parts[2]))
    return events
