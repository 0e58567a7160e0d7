"""Active-Standby: two servers share a VIP on one switch; one serves, the other waits."""

from __future__ import annotations

from ipaddress import IPv4Interface

from topologies.base import LabTopo, require_count


class ActiveStandbyTopo(LabTopo):
    """server1 and server2 (sharing the VIP 10.0.0.100) and clients on switch s1.

    server1 is 10.0.0.1, server2 10.0.0.2, clients 10.0.0.101 and up. With `pairs` > 1, more
    pairs on the same switch, each with a VIP of its own (`pair_vip`): server3 and server4
    (10.0.0.3, .4) share 10.0.0.202, and so on: a lab of many Active-Standby services.
    """

    vip = IPv4Interface("10.0.0.100/24")
    MAX_PAIRS = 49  # servers and VIPs stay clear of the clients' 10.0.0.101 to .199

    def build(self, clients: int = 1, pairs: int = 1, bw: float | None = None) -> None:
        require_count("clients", clients, 1, 99)
        require_count("pairs", pairs, 1, self.MAX_PAIRS)
        link = {"bw": bw} if bw else {}
        switch = self.addSwitch("s1")
        for i in range(1, 2 * pairs + 1):
            self.add_lab_link(self.add_lab_host(f"server{i}", "server", f"10.0.0.{i}/24"), switch, **link)
        for i in range(1, clients + 1):
            self.add_lab_link(self.add_lab_host(f"client{i}", "client", f"10.0.0.{100 + i}/24"), switch, **link)

    @classmethod
    def pair_vip(cls, pair: int) -> IPv4Interface:
        """The VIP that servers 2 x pair - 1 and 2 x pair share: 10.0.0.100 for the first pair,
        10.0.0.(200 + pair) for the others."""
        return cls.vip if pair == 1 else IPv4Interface(f"10.0.0.{200 + pair}/24")
