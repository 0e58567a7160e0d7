"""halab's heartbeat agent on a lab host, its configuration built from the topology."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from ipaddress import IPv4Interface
from pathlib import Path

from ha.configcheck import ConfigError
from ha.heartbeat import config as heartbeat_config
from ha.heartbeat.config import HeartbeatConfig, Link, Resource
from harness import events
from harness.daemons.base import AGENT_REALTIME_PRIORITY, Daemon, Lab
from harness.errors import HalabError
from harness.probe import PORT

HEARTBEAT = [sys.executable, "-u", "-m", "ha.heartbeat"]
#: Node priorities in the cluster topology: node1 is preferred.
PRIORITIES = {"node1": 200, "node2": 100}


def node_config(lab: Lab, node: str, interval: float = 0.1, priorities: dict[str, int] = PRIORITIES,
                vip: IPv4Interface | None = None, **more: object) -> HeartbeatConfig:
    """The configuration of `node` (one of the two in `priorities`): a link on every network it
    shares with its peer, the gateway as tie-breaker, the lab's fencing socket and secret (and its
    assist socket, if the lab assists), and two
    resources: the VIP (the topology's, unless `vip`) and the probe responder (running on both
    nodes; the resource watches the local one). Any HeartbeatConfig field can be overridden; the
    result is checked as a file would be."""
    topo = lab.topo
    peer = next(n for n in priorities if n != node)
    links = []
    for interface, address in topo.interfaces(node):
        try:
            links.append(Link(interface, topo.address_on(peer, address.network)))
        except KeyError:
            continue  # a network the peer is not on
    vip = vip or topo.vip
    assert vip is not None and lab.cluster_secret is not None, "a cluster lab: a VIP and fencing"
    # A TCP connect to the local responder, by bash itself: a monitor that starts a Python
    # interpreter every few hundred ms would steal the CPU the heartbeats need on two cores.
    monitor = ("bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PORT}")
    cfg = HeartbeatConfig(
        name=node, priority=priorities[node], secret=lab.cluster_secret.encode(), peer=peer,
        peer_priority=priorities[peer],
        # The dedicated heartbeat link first, then the service network.
        links=tuple(sorted(links, key=lambda link: link.peer_address in vip.network)),
        resources=(Resource("vip", "vip", address=vip, interface=topo.interface_on(node, vip.network)[0]),
                   Resource("responder", "service", start=monitor, stop=("true",), monitor=monitor,
                            monitor_interval=0.3, monitor_timeout=1.0)),
        interval=interval, deadtime=3 * interval, initdead=3.0, failure_timeout=3.0,
        tiebreaker=topo.address_on(topo.hosts_with_role("gateway")[0], vip.network),
        fence_socket=lab.socket_for(node, "fence"), assist_socket=lab.socket_for(node, "assist"),
        event_log=lab.run_dir / f"heartbeat-{node}.jsonl",
        realtime_priority=AGENT_REALTIME_PRIORITY)
    try:
        return heartbeat_config.check(replace(cfg, **more))
    except ConfigError as exc:
        raise HalabError(f"heartbeat configuration of {node}: {exc}", "Choose a value in the range it names.") \
            from None


class HalabHeartbeat(Daemon):
    program = "halab-heartbeat"
    pattern = r"-m ha\.heartbeat( |$)"

    def __init__(self, lab: Lab, host: str, cfg: HeartbeatConfig, tag: str = "") -> None:
        super().__init__(lab, host, tag)
        self.cfg = cfg

    def files(self) -> dict[Path, str]:
        if self.cfg.event_log:
            self.cfg.event_log.unlink(missing_ok=True)
        return {self.base.with_suffix(".toml"): heartbeat_config.dump(self.cfg)}

    def argv(self) -> list[str]:
        return [*HEARTBEAT, "--config", str(self.base.with_suffix(".toml"))]

    def ready(self) -> bool:
        return self.process is not None and "running" in self.process.log_text()

    def events(self) -> list[events.Event]:
        return self.read_events(self.cfg.event_log) if self.cfg.event_log else []

    @property
    def event_log(self) -> Path | None:
        return self.cfg.event_log

    def addresses(self) -> list[str]:
        """The virtual addresses among its resources."""
        return [str(r.address.ip) for r in self.cfg.resources if r.kind == "vip" and r.address is not None]

    def held(self) -> list[str]:
        """Its virtual addresses while it is the active node."""
        return self.addresses() if self.role() == "ACTIVE" else []

    def role(self) -> str | None:
        """The node's latest role, from its event log."""
        roles = [e.state for e in self.events() if e.subject == self.cfg.name]
        return roles[-1] if roles else None

    def status(self) -> dict | None:
        """What `halab-heartbeat status --json` shows for this node on its host."""
        shown = self.lab.run(self.host, [*HEARTBEAT, "status", "--json"])
        return next((s for s in json.loads(shown.stdout or "[]") if s["node"] == self.cfg.name), None)
