"""What every halab topology shares: host roles, addresses and the VIP, kept as plain data.

Mininet's Topo only knows nodes and links; the harness also needs to know which host is a
client and which a server, which addresses share a subnet, and where the VIP lives. A LabTopo
records that while it builds, so tests and scenarios read it instead of guessing from names.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from mininet.topo import Topo


def host_mac(index: int) -> str:
    """A readable, locally administered MAC for host number `index` (1-based)."""
    return f"02:00:00:00:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"


def require_count(name: str, value: int, low: int, high: int) -> None:
    """Refuse a host count outside [low, high], naming the argument (addresses are one octet)."""
    if not low <= value <= high:
        raise ValueError(f"{name}={value}: choose {low} to {high}")


class LabTopo(Topo):
    """A Mininet Topo that also remembers roles, addresses and the VIP of its hosts."""

    #: The virtual IP clients talk to, or None when the topology has none.
    vip: IPv4Interface | None = None
    #: The datapath ids of the switches where the load balancer answers for the VIP (empty: all).
    balanced_switches: tuple[int, ...] = ()

    def __init__(self, *args: object, **params: object) -> None:
        self.roles: dict[str, str] = {}
        self.addresses: dict[str, list[IPv4Interface]] = {}
        super().__init__(*args, **params)

    def add_lab_host(self, name: str, role: str, ip: str) -> str:
        """Add a host with its first address and remember its role."""
        self.roles[name] = role
        self.addresses[name] = [IPv4Interface(ip)]
        return self.addHost(name, ip=ip, mac=host_mac(len(self.roles)))

    def add_lab_link(self, host: str, switch: str, ip: str | None = None, **opts: object) -> None:
        """Link a host to a switch; `ip` configures an extra interface on a multi-homed host."""
        if ip is None:
            self.addLink(host, switch, **opts)
            return
        self.addresses[host].append(IPv4Interface(ip))
        self.addLink(host, switch, params1={"ip": ip}, **opts)

    def hosts_with_role(self, role: str) -> list[str]:
        return sorted(name for name, r in self.roles.items() if r == role)

    def interfaces(self, host: str) -> list[tuple[str, IPv4Interface]]:
        """(interface name, address) of each of the host's links, as Mininet names them: in link order."""
        return [(f"{host}-eth{i}", address) for i, address in enumerate(self.addresses[host])]

    def interface_on(self, host: str, network: IPv4Network) -> tuple[str, IPv4Interface]:
        """The host's interface and address in `network` (KeyError if it has none there)."""
        for name, address in self.interfaces(host):
            if address.ip in network:
                return name, address
        raise KeyError(f"{host} has no address in {network}")

    def address_on(self, host: str, network: IPv4Network) -> IPv4Address:
        return self.interface_on(host, network)[1].ip

    def reachable_pairs(self) -> list[tuple[str, str, str]]:
        """Every (source host, destination host, destination address) that share a subnet.

        These are the pairs that must reach each other once the lab is up; hosts on
        different subnets have no route between them by design.
        """
        pairs = []
        for src, src_addrs in sorted(self.addresses.items()):
            for dst, dst_addrs in sorted(self.addresses.items()):
                if src == dst:
                    continue
                for d in dst_addrs:
                    if any(d.ip in s.network for s in src_addrs):
                        pairs.append((src, dst, str(d.ip)))
        return pairs
