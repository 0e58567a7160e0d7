"""What `halab diagnose` reads of the lab that is up (its rules are in harness/diagnose.py): each
VRRP instance's configuration, state, counters and failing checks, the clients' ARP entries for
the VIP, the heartbeat nodes' roles and reasons, the balancer's backends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from harness import lb
from harness.daemons import HalabHeartbeat, HalabVrrp
from harness.daemons.vrrp import VrrpDaemon

if TYPE_CHECKING:
    from harness.livelab import LiveLab


def gather(live: LiveLab) -> dict:
    vip = live.probe_target()
    facts: dict = {"vip": vip, "vrrp": [], "heartbeat": [], "backends": [], "arp": {}}
    for d in live.daemons:
        if isinstance(d, VrrpDaemon):
            facts["vrrp"] += _vrrp(d)
        elif isinstance(d, HalabHeartbeat):
            last = next((e for e in reversed(d.events()) if e.subject == d.cfg.name), None)
            facts["heartbeat"].append({"host": d.host, "running": d.alive(), "role": last.state if last else None,
                                       "reason": last.reason if last else None})
    if live.lab.lb is not None:  # the switch balances (the controller is the lab's, not an agent)
        facts["backends"] = _backends(live)
    if facts["vrrp"]:
        facts["arp"] = _arp(live, vip)
    return facts


def _vrrp(d: VrrpDaemon) -> list[dict]:
    states = d.states()
    shown = {i["name"]: i for i in d.status()} if isinstance(d, HalabVrrp) and d.alive() else {}
    out = []
    for inst in d.configured:
        mine = shown.get(inst.name)
        out.append({"host": d.host, "program": d.program, "running": d.alive(), "name": inst.name,
                    "vrid": inst.virtual_router_id, "priority": inst.priority, "advert_int": inst.advert_int,
                    "preempt": inst.preempt, "checksum_with_pseudo_header": inst.checksum_with_pseudo_header,
                    "vips": [str(a.ip) for a in inst.virtual_ipaddress], "state": states.get(inst.name),
                    "drops": mine["drops"] if mine else None, "failed": mine["failed"] if mine else []})
    return out


def _arp(live: LiveLab, vip: str) -> dict[str, str | None]:
    """Each client's neighbour entry for the VIP, as the host whose interface has that MAC."""
    owners = {intf.MAC(): host for host in live.topo.roles for intf in live.lab.host(host).intfList()
              if intf.MAC()}
    arp: dict[str, str | None] = {}
    for client in live.topo.hosts_with_role("client"):
        shown = live.lab.run(client, ["ip", "-j", "neigh", "show", vip], timeout=5)
        entries = json.loads(shown.stdout or "[]") if shown.returncode == 0 else []
        mac = next((e.get("lladdr") for e in entries if e.get("lladdr")), None)
        arp[client] = owners.get(mac, mac) if mac else None
    return arp


def _backends(live: LiveLab) -> list[dict]:
    hosts = {str(a.ip): h for h, addresses in live.topo.addresses.items() for a in addresses}
    out = []
    for service in lb.status(live.lab)["switches"][0]["services"]:
        for b in service["backends"]:
            name = hosts.get(b["backend"].rsplit(":", 1)[0], b["backend"])
            out.append({"name": f"{name} ({service['name']})", "health": b["health"], "reason": b["reason"],
                        "link": b["link"], "drained": b["drained"], "in_pool": b["in_pool"]})
    return out
