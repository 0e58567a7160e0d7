"""A two-node cluster the way Linux-HA runs one: a service network and a dedicated heartbeat link."""

from __future__ import annotations

from ipaddress import IPv4Interface

from topologies.base import LabTopo, require_count


class ClusterTopo(LabTopo):
    """node1, node2 on the service switch s1 (10.0.0.1, .2) and the heartbeat switch s2
    (192.168.1.1, .2); clients (.101 and up) and a gateway (.254, the quorum tie-breaker) on s1.
    The VIP 10.0.0.100 belongs to whichever node is active.
    """

    vip = IPv4Interface("10.0.0.100/24")

    def build(self, clients: int = 1, bw: float | None = None) -> None:
        require_count("clients", clients, 1, 99)
        link = {"bw": bw} if bw else {}
        service, heartbeat = self.addSwitch("s1"), self.addSwitch("s2")
        for i in (1, 2):
            node = self.add_lab_host(f"node{i}", "node", f"10.0.0.{i}/24")
            self.add_lab_link(node, service, **link)
            self.add_lab_link(node, heartbeat, ip=f"192.168.1.{i}/24", **link)
        self.add_lab_link(self.add_lab_host("gateway", "gateway", "10.0.0.254/24"), service, **link)
        for i in range(1, clients + 1):
            self.add_lab_link(self.add_lab_host(f"client{i}", "client", f"10.0.0.{100 + i}/24"), service, **link)
