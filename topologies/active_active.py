"""Active-Active: N backends that all serve behind one switch that balances the VIP."""

from __future__ import annotations

from ipaddress import IPv4Interface

from topologies.base import LabTopo


class ActiveActiveTopo(LabTopo):
    """backend1..N (10.0.0.1 and up) and client1..M (10.0.0.101 and up) on switch s1.

    The VIP 10.0.0.100 belongs to no host: the controller answers for it and rewrites
    each connection towards a backend.
    """

    vip = IPv4Interface("10.0.0.100/24")

    def build(self, backends: int = 3, clients: int = 2, bw: float | None = None) -> None:
        if not 1 <= backends <= 99:
            raise ValueError(f"backends={backends}: choose 1 to 99 backends")
        if not 1 <= clients <= 99:
            raise ValueError(f"clients={clients}: choose 1 to 99 clients")
        link = {"bw": bw} if bw else {}
        switch = self.addSwitch("s1")
        for i in range(1, backends + 1):
            self.add_lab_link(self.add_lab_host(f"backend{i}", "backend", f"10.0.0.{i}/24"), switch, **link)
        for i in range(1, clients + 1):
            self.add_lab_link(self.add_lab_host(f"client{i}", "client", f"10.0.0.{100 + i}/24"), switch, **link)
