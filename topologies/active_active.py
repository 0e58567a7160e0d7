"""Active-Active: N backends that all serve behind one switch that balances the VIP."""

from __future__ import annotations

from ipaddress import IPv4Interface

from topologies.base import LabTopo, require_count


class ActiveActiveTopo(LabTopo):
    """backend1..N (10.0.0.1 and up) and client1..M (10.0.0.101 and up) on switch s1.

    The VIP 10.0.0.100 belongs to no host: the controller answers for it and rewrites
    each connection towards a backend.
    """

    vip = IPv4Interface("10.0.0.100/24")

    def build(self, backends: int = 3, clients: int = 2, bw: float | None = None, proxy: bool = False) -> None:
        """`proxy`: also a host proxy1 (10.0.0.250) for a software load balancer to compare with."""
        require_count("backends", backends, 1, 99)
        require_count("clients", clients, 1, 99)
        link = {"bw": bw} if bw else {}
        switch = self.addSwitch("s1")
        for i in range(1, backends + 1):
            self.add_lab_link(self.add_lab_host(f"backend{i}", "backend", f"10.0.0.{i}/24"), switch, **link)
        for i in range(1, clients + 1):
            self.add_lab_link(self.add_lab_host(f"client{i}", "client", f"10.0.0.{100 + i}/24"), switch, **link)
        if proxy:
            self.add_lab_link(self.add_lab_host("proxy1", "proxy", "10.0.0.250/24"), switch, **link)
