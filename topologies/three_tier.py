"""Three tiers, each redundant: clients, web servers behind a balanced VIP, a replicated database
behind its own VIP."""

from __future__ import annotations

from ipaddress import IPv4Interface

from topologies.base import LabTopo, require_count


class ThreeTierTopo(LabTopo):
    """The front network s1 (10.0.0.0/24): clients (.101 and up), web1..N (.1 and up), and the web
    VIP 10.0.0.100, which the switch balances. The back network s2 (10.0.1.0/24): the web servers'
    second interfaces (.1 and up), db1 and db2 (.11, .12), the DB VIP 10.0.1.100 (held by the
    primary database's node) and the gateway .254 (the DB pair's tie-breaker). A dedicated
    heartbeat link s3 (192.168.1.0/24) joins db1 and db2. Clients cannot reach the back network.
    """

    vip = IPv4Interface("10.0.0.100/24")
    db_vip = IPv4Interface("10.0.1.100/24")
    balanced_switches = (1,)   # s1, the front network: the back network only switches

    def build(self, webs: int = 2, clients: int = 1, bw: float | None = None, proxy: bool = False) -> None:
        """`proxy`: also a host proxy1 (10.0.0.250) for a software load balancer to compare with."""
        require_count("webs", webs, 1, 9)
        require_count("clients", clients, 1, 99)
        link = {"bw": bw} if bw else {}
        front, back, heartbeat = self.addSwitch("s1"), self.addSwitch("s2"), self.addSwitch("s3")
        for i in range(1, webs + 1):
            web = self.add_lab_host(f"web{i}", "backend", f"10.0.0.{i}/24")
            self.add_lab_link(web, front, **link)
            self.add_lab_link(web, back, ip=f"10.0.1.{i}/24", **link)
        for i in (1, 2):
            db = self.add_lab_host(f"db{i}", "db", f"10.0.1.{10 + i}/24")
            self.add_lab_link(db, back, **link)
            self.add_lab_link(db, heartbeat, ip=f"192.168.1.{i}/24", **link)
        self.add_lab_link(self.add_lab_host("gateway", "gateway", "10.0.1.254/24"), back, **link)
        for i in range(1, clients + 1):
            self.add_lab_link(self.add_lab_host(f"client{i}", "client", f"10.0.0.{100 + i}/24"), front, **link)
        if proxy:
            self.add_lab_link(self.add_lab_host("proxy1", "proxy", "10.0.0.250/24"), front, **link)
