"""What `halab diagnose` reads of the lab that is up (its rules are in harness/diagnose.py): each
VRRP instance's configuration, state, counters and failing checks, the clients' ARP entries for
the VIP, the heartbeat nodes' roles and reasons, the balancer's backends and each HAProxy's."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from harness import lb
from harness.daemons import HalabHeartbeat, HalabVrrp, HAProxy, Keepalived
from harness.daemons.vrrp import VrrpDaemon

if TYPE_CHECKING:
    from harness.livelab import LiveLab


def gather(live: LiveLab) -> dict:
    with live.lock:  # not while a restore restarts the agents
        vip = live.probe_target()
        facts: dict = {"vip": vip, "vrrp": [], "heartbeat": [], "backends": [], "arp": {}}
        for d in live.daemons:
            if isinstance(d, VrrpDaemon):
                facts["vrrp"] += _vrrp(d)
            elif isinstance(d, HalabHeartbeat):
                facts["heartbeat"].append(_heartbeat(d))
            elif isinstance(d, HAProxy) and d.alive() and d.host not in live.standing.crashed:
                facts["backends"] += _haproxy(live, d)
        if live.lab.lb is not None:  # the switch balances (the controller is the lab's, not an agent)
            facts["backends"] += _backends(live)
        if facts["vrrp"]:
            facts["arp"] = _arp(live, vip, facts["vrrp"])
        return facts


def _heartbeat(d: HalabHeartbeat) -> dict:
    """The node's role and its reason now (the agent's own status: a standby without quorum says so
    there, not in an event), else its last event."""
    shown = d.status() if d.alive() else None
    if shown is not None:
        return {"host": d.host, "running": True, "role": shown["role"], "reason": shown["reason"]}
    last = next((e for e in reversed(d.events()) if e.subject == d.cfg.name), None)
    return {"host": d.host, "running": d.alive(), "role": last.state if last else None,
            "reason": last.reason if last else None}


#: keepalived's counters of adverts it dropped, as the names halab's agent gives the same drops.
KEEPALIVED_DROPS = {"ip_ttl_err": "bad_ttl", "packet_len_err": "bad_length", "invalid_type_rcvd": "bad_type",
                    "advert_interval_err": "interval_mismatch", "addr_list_err": "address_list",
                    "invalid_authtype": "auth", "authtype_mismatch": "auth", "auth_failure": "auth"}


def _vrrp(d: VrrpDaemon) -> list[dict]:
    states = d.states()
    shown = {i["name"]: i for i in d.status()} if isinstance(d, HalabVrrp) and d.alive() else {}
    if isinstance(d, Keepalived) and d.alive():  # its own counters, named as halab's agent names them
        shown = {name: {"drops": keepalived_drops(stats), "failed": []} for name, stats in d.counters().items()}
    out = []
    for inst in d.configured:
        mine = shown.get(inst.name)
        out.append({"host": d.host, "program": d.program, "running": d.alive(), "name": inst.name,
                    "vrid": inst.virtual_router_id, "priority": inst.priority, "advert_int": inst.advert_int,
                    "preempt": inst.preempt, "checksum_with_pseudo_header": inst.checksum_with_pseudo_header,
                    "vips": [str(a.ip) for a in inst.virtual_ipaddress], "state": states.get(inst.name),
                    "drops": mine["drops"] if mine else None, "failed": mine["failed"] if mine else []})
    return out


def keepalived_drops(stats: dict[str, int]) -> dict[str, int]:
    drops: dict[str, int] = {}
    for counter, name in KEEPALIVED_DROPS.items():
        drops[name] = drops.get(name, 0) + stats.get(counter, 0)
    return drops


def _arp(live: LiveLab, vip: str, vrrp: list[dict]) -> dict[str, str | None]:
    """Each client's neighbour entry for the VIP, as the host whose interface has that MAC (a VRRP
    virtual MAC, 00:00:5e:00:01:VRID, is the master's, whoever that is)."""
    owners = {intf.MAC(): host for host in live.topo.roles for intf in live.lab.host(host).intfList()
              if intf.MAC()}
    masters = [i["host"] for i in vrrp if i["state"] == "MASTER" and vip in i["vips"]]
    for i in vrrp:
        owners[f"00:00:5e:00:01:{i['vrid']:02x}"] = masters[0] if len(masters) == 1 else None
    arp: dict[str, str | None] = {}
    for client in live.topo.hosts_with_role("client"):
        shown = live.lab.run(client, ["ip", "-j", "neigh", "show", vip], timeout=5)
        entries = json.loads(shown.stdout or "[]") if shown.returncode == 0 else []
        mac = next((e.get("lladdr") for e in entries if e.get("lladdr")), None)
        arp[client] = owners.get(mac, mac) if mac else None
    return arp


def _backends(live: LiveLab) -> list[dict]:
    out = []
    switches = lb.status(live.lab)["switches"]
    for switch in switches:  # each balancing switch keeps its own pool
        for service in switch["services"]:
            for b in service["backends"]:
                name = lb.backend_host(live.topo, b["backend"])
                where = service["name"] if len(switches) == 1 else f"{service['name']} on {switch['dpid']}"
                out.append({"name": f"{name} ({where})", "health": b["health"], "reason": b["reason"],
                            "link": b["link"], "drained": b["drained"], "in_pool": b["in_pool"]})
    return out


def _haproxy(live: LiveLab, d: HAProxy) -> list[dict]:
    """Each server of the HAProxy as its own checks see it (its runtime API), and its host's link."""
    if d.frozen():
        return []  # it would not answer: its agent row says frozen
    try:
        servers = d.servers()
    except OSError:  # not listening yet, or stopped: the agents' rows say so
        return []
    down = {host for host, _ in live.standing.cut} | live.standing.crashed
    return [{"name": f"{s['server']} (HAProxy on {d.host})", "health": s["health"], "reason": s["words"],
             "link": "down" if s["server"] in down else "up", "drained": s["drained"], "in_pool": s["in_pool"]}
            for s in servers]
