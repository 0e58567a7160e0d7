"""halab's own VRRP agent (ha.vrrp) on a lab host, behind the same interface as keepalived."""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.lab import Lab, LabProcess
from harness.vrrp_daemons import StateEvent, VrrpInstance


def render_instance(inst: VrrpInstance) -> str:
    """One [[vrrp_instance]] table of the agent's TOML, in keepalived's vocabulary."""
    return f"""
[[vrrp_instance]]
name = "{inst.name}"
interface = "{inst.interface}"
virtual_router_id = {inst.virtual_router_id}
priority = {inst.priority}
advert_int = {inst.advert_int:g}
virtual_ipaddress = ["{inst.virtual_ipaddress}"]
preempt = {"true" if inst.preempt else "false"}
"""


@dataclass
class HalabVrrp:
    host: str
    process: LabProcess
    event_log: Path

    @property
    def name(self) -> str:
        return f"halab-vrrp@{self.host}"

    def events(self) -> list[StateEvent]:
        if not self.event_log.exists():
            return []
        events = []
        for line in self.event_log.read_text().splitlines():
            rec = json.loads(line)
            events.append(StateEvent(rec["monotonic"], self.host, rec["instance"], rec["to"]))
        return events

    def advertiser(self) -> LabProcess:
        return self.process

    def crash(self) -> float:
        return self.process.signal(signal.SIGKILL)


def start(lab: Lab, host: str, inst: VrrpInstance) -> HalabVrrp:
    return start_with(lab, host, render_instance(inst))


def start_with(lab: Lab, host: str, instances_toml: str, name: str = "halab-vrrp") -> HalabVrrp:
    """Start the agent on `host` with these [[vrrp_instance]] tables; it logs events to the run directory."""
    base = lab.run_dir / f"{name}-{host}"
    event_log = base.with_suffix(".events.jsonl")
    event_log.unlink(missing_ok=True)
    conf = base.with_suffix(".toml")
    conf.write_text(f'event_log = "{event_log}"\n{instances_toml}')
    proc = lab.spawn(host, name, [sys.executable, "-u", "-m", "ha.vrrp", "--config", str(conf)])
    deadline = time.monotonic() + 10
    while not event_log.exists() and proc.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    return HalabVrrp(host, proc, event_log)
