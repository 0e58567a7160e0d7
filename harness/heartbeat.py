"""halab's heartbeat agent on the cluster topology: its configuration per node, start, events."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.lab import Lab, LabProcess
from harness.probe import PORT
from harness.vrrp_daemons import StateEvent
from topologies import ClusterTopo

SECRET = "halab-lab-cluster-secret"


@dataclass
class HeartbeatAgent:
    host: str
    process: LabProcess
    log_path: Path

    def records(self) -> list[dict]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def events(self) -> list[StateEvent]:
        """Role changes, on the monotonic clock."""
        return [StateEvent(r["monotonic"], self.host, "cluster", r["to"]) for r in self.records() if "to" in r]

    def role(self) -> str | None:
        roles = [r["to"] for r in self.records() if "to" in r]
        return roles[-1] if roles else None


def render(node: str, lab: Lab, interval: float = 0.1, deadtime: float | None = None, detector: str = "deadtime",
           auto_failback: bool = True, failure_timeout: float = 3.0, monitor_interval: float = 0.3) -> str:
    """Config for node1 (priority 200) or node2 (100): both links, the gateway as tie-breaker, the
    VIP and the probe responder (which runs on both nodes; the resource watches the local one)."""
    me, peer = (1, 2) if node == "node1" else (2, 1)
    topo: ClusterTopo = lab.topo  # type: ignore[assignment]
    # A TCP connect to the local responder, by bash itself: a monitor that starts a Python
    # interpreter every few hundred ms would steal the CPU the heartbeats need on two cores.
    monitor = f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{PORT}'"
    lines = [
        f'name = "node{me}"', f"priority = {200 if me == 1 else 100}", f'secret = "{SECRET}"',
        f"interval = {interval}", f"deadtime = {deadtime if deadtime is not None else 3 * interval}",
        "initdead = 3.0",
        f'detector = "{detector}"', f"auto_failback = {'true' if auto_failback else 'false'}",
        f"failure_timeout = {failure_timeout}", f'event_log = "{lab.run_dir / f"heartbeat-node{me}.jsonl"}"',
        f'[peer]\nname = "node{peer}"\npriority = {200 if peer == 1 else 100}',
        f'[[link]]\ninterface = "node{me}-eth1"\npeer_address = "192.168.1.{peer}"',
        f'[[link]]\ninterface = "node{me}-eth0"\npeer_address = "10.0.0.{peer}"',
        '[quorum]\ntiebreaker = "10.0.0.254"',
        f'[fencing]\nsocket = "{lab.fence_socket}"',
        f'[[resource]]\nname = "vip"\nkind = "vip"\naddress = "{topo.vip}"\ninterface = "node{me}-eth0"',
        f'[[resource]]\nname = "responder"\nkind = "service"\nstart = "{monitor}"\nstop = "true"\n'
        f'monitor = "{monitor}"\nmonitor_interval = {monitor_interval}\nmonitor_timeout = 1.0',
    ]
    return "\n".join(lines) + "\n"


def start(lab: Lab, node: str, config: str) -> HeartbeatAgent:
    path = lab.run_dir / f"heartbeat-{node}.toml"
    path.write_text(config)
    proc = lab.spawn(node, "heartbeat", [sys.executable, "-u", "-m", "ha.heartbeat", "--config", str(path)])
    proc.wait_for("running", timeout=15)
    return HeartbeatAgent(node, proc, lab.run_dir / f"heartbeat-{node}.jsonl")
