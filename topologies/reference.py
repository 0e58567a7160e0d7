"""The classic production setup: two HAProxy + keepalived nodes sharing a VIP in front of web servers."""

from __future__ import annotations

from ipaddress import IPv4Interface

from topologies.base import LabTopo, require_count


class ReferenceTopo(LabTopo):
    """Clients on the front switch s1, web servers on the back switch s2, lb1 and lb2 on both.

    Front network 10.0.0.0/24: lb1 .1, lb2 .2, VIP .100, clients .101 and up.
    Back network 10.0.1.0/24: lb1 .1, lb2 .2, web servers .11 and up.
    """

    vip = IPv4Interface("10.0.0.100/24")

    def build(self, web_servers: int = 2, clients: int = 1, bw: float | None = None) -> None:
        require_count("web_servers", web_servers, 1, 89)
        require_count("clients", clients, 1, 99)
        link = {"bw": bw} if bw else {}
        front, back = self.addSwitch("s1"), self.addSwitch("s2")
        for i in (1, 2):
            lb = self.add_lab_host(f"lb{i}", "lb", f"10.0.0.{i}/24")
            self.add_lab_link(lb, front, **link)
            self.add_lab_link(lb, back, ip=f"10.0.1.{i}/24", **link)
        for i in range(1, web_servers + 1):
            self.add_lab_link(self.add_lab_host(f"web{i}", "web", f"10.0.1.{10 + i}/24"), back, **link)
        for i in range(1, clients + 1):
            self.add_lab_link(self.add_lab_host(f"client{i}", "client", f"10.0.0.{100 + i}/24"), front, **link)
