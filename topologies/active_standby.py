"""Active-Standby: two servers share a VIP on one switch; one serves, the other waits."""

from __future__ import annotations

from ipaddress import IPv4Interface

from topologies.base import LabTopo, require_count


class ActiveStandbyTopo(LabTopo):
    """server1 and server2 (sharing the VIP 10.0.0.100) and clients on switch s1.

    server1 is 10.0.0.1, server2 10.0.0.2, clients 10.0.0.101 and up.
    """

    vip = IPv4Interface("10.0.0.100/24")

    def build(self, clients: int = 1, bw: float | None = None) -> None:
        require_count("clients", clients, 1, 99)
        link = {"bw": bw} if bw else {}
        switch = self.addSwitch("s1")
        for i in (1, 2):
            self.add_lab_link(self.add_lab_host(f"server{i}", "server", f"10.0.0.{i}/24"), switch, **link)
        for i in range(1, clients + 1):
            self.add_lab_link(self.add_lab_host(f"client{i}", "client", f"10.0.0.{100 + i}/24"), switch, **link)
