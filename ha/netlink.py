"""Interface facts and address changes through netlink (pyroute2), for the agents on a host."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_address

from pyroute2 import IPRoute

from ha.vrrp.packet import Address


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: bytes
    up: bool


def link(name: str) -> Link:
    """The interface `name`, or ValueError naming it."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise ValueError(f"interface {name!r} does not exist on this host")
        msg = ipr.get_links(found[0])[0]
    mac = bytes.fromhex(msg.get_attr("IFLA_ADDRESS").replace(":", ""))
    up = msg.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
    return Link(found[0], name, mac, up)


def primary_address(ifindex: int, version: int) -> Address:
    """The interface's first address of that IP version (link-local for IPv6), the VRRP source."""
    with IPRoute() as ipr:
        for msg in ipr.get_addr(index=ifindex):
            addr = ip_address(msg.get_attr("IFA_ADDRESS"))
            if addr.version == version and (version == 4 or addr.is_link_local):
                return addr
    raise ValueError(f"interface index {ifindex} has no IPv{version} {'link-local ' if version == 6 else ''}address")


def add_addresses(ifindex: int, addresses: tuple[IPv4Interface | IPv6Interface, ...]) -> None:
    with IPRoute() as ipr:
        for a in addresses:
            try:
                ipr.addr("add", index=ifindex, address=str(a.ip), prefixlen=a.network.prefixlen,
                         **({"IFA_F_NODAD": True} if a.version == 6 else {}))
            except Exception as exc:
                if getattr(exc, "code", None) != 17:
                    raise


def remove_addresses(ifindex: int, addresses: tuple[IPv4Interface | IPv6Interface, ...]) -> None:
    with IPRoute() as ipr:
        for a in addresses:
            try:
                ipr.addr("del", index=ifindex, address=str(a.ip), prefixlen=a.network.prefixlen)
            except Exception as exc:
                if getattr(exc, "code", None) != 99:
                    raise


class LinkMonitor:
    """Link up/down events from the kernel (RTNLGRP_LINK), for the agent's selector: no polling."""

    def __init__(self) -> None:
        self.ipr = IPRoute()
        self.ipr.bind()

    def fileno(self) -> int:
        return self.ipr.fileno()

    def changes(self) -> list[tuple[str, bool]]:
        """(interface, up) for every link message waiting; address and route messages are skipped."""
        found = []
        for msg in self.ipr.get():
            if msg["event"] in ("RTM_NEWLINK", "RTM_DELLINK"):
                up = msg["event"] == "RTM_NEWLINK" and msg.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
                found.append((msg.get_attr("IFLA_IFNAME"), up))
        return found

    def close(self) -> None:
        self.ipr.close()
