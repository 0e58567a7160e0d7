"""keepalived, the VRRP daemon people run in production, as the baseline on lab hosts.

halab writes its configuration in keepalived's own vocabulary, starts it in the foreground
(one per host, its own pid files), and learns its state changes from a notify script that
stamps each one on the wall clock; `events` maps them onto the monotonic clock.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from harness.lab import Lab, LabProcess
from harness.vrrp_daemons import StateEvent, VrrpInstance

NOTIFY_SCRIPT = """#!/bin/sh
# keepalived calls: notify INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>
echo "$(date +%s.%N) $2 $3" >> {events}
"""


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

    def events(self) -> list[StateEvent]:
        """State changes from the notify log, converted from wall clock to monotonic."""
        if not self.events_file.exists():
            return []
        offset = time.time() - time.monotonic()
        events = []
        for line in self.events_file.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                events.append(StateEvent(float(parts[0]) - offset, self.host, parts[1], parts[2]))
        return events

    def advertiser(self) -> _VrrpChild:
        return _VrrpChild(self)

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


@dataclass
class _VrrpChild:
    """keepalived's VRRP process as a fault target (it is the one that sends adverts)."""

    agent: Keepalived

    @property
    def name(self) -> str:
        return f"{self.agent.name} (vrrp)"

    def signal(self, sig: int) -> float:
        pid = self.agent.vrrp_pid()
        at = time.monotonic()
        os.kill(pid, sig)
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
