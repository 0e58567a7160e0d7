"""The VRRP virtual MAC (00-00-5E-00-01-{VRID}) as a macvlan interface on the real one.

With it, the VIP keeps one MAC address whoever is master: clients' ARP caches never go stale,
and what changes at failover is only where the switch learns that MAC. The VIPs live on the
macvlan; ARP for them must be answered there alone, hence arp_ignore on both interfaces.
"""

from __future__ import annotations

from pathlib import Path

from pyroute2 import IPRoute


def vmac_address(vrid: int, version: int = 4) -> str:
    """RFC 9568 7.3: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6."""
    return f"00:00:5e:00:0{1 if version == 4 else 2}:{vrid:02x}"


def _sysctl(ifname: str, key: str, value: str) -> None:
    Path(f"/proc/sys/net/ipv4/conf/{ifname}/{key}").write_text(value)


def create(base_index: int, base_name: str, name: str, vrid: int, version: int) -> int:
    """Create (or re-create) the macvlan `name` on the base interface, up; return its index.

    An interface of that name that is not a macvlan is never deleted: a ValueError names it.
    """
    with IPRoute() as ipr:
        for old in ipr.link_lookup(ifname=name):
            if _kind(ipr, old) != "macvlan":
                raise ValueError(f"use_vmac: {name} exists and is not a macvlan; halab will not replace it")
            ipr.link("del", index=old)
        ipr.link("add", ifname=name, kind="macvlan", link=base_index, macvlan_mode="private",
                 address=vmac_address(vrid, version))
        index = ipr.link_lookup(ifname=name)[0]
        ipr.link("set", index=index, state="up")
    if version == 4:
        for ifname in (base_name, name):
            _sysctl(ifname, "arp_ignore", "1")  # answer ARP only for addresses of the asked interface
            _sysctl(ifname, "arp_announce", "2")
    return index


def delete(name: str) -> None:
    """Delete the macvlan `name` (anything else of that name is left alone)."""
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=name):
            if _kind(ipr, index) == "macvlan":
                ipr.link("del", index=index)


def _kind(ipr: IPRoute, index: int) -> str | None:
    info = ipr.get_links(index)[0].get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None
