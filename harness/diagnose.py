"""`halab diagnose`: "why didn't it fail over?", answered from what the lab knows. The rules are
pure functions over facts the lab gathers (`LiveLab.diagnosis_facts`): each VRRP instance's
configuration, state, drop counters and failing track scripts; where each client's ARP entry for
the VIP points; the heartbeat nodes' roles and reasons; the backends of the switch's balancer and
of each HAProxy (its runtime API).

    facts = {"vip": "10.0.0.100",
             "vrrp": [{"host", "program", "running", "name", "vrid", "priority", "advert_int", "preempt",
                       "checksum_with_pseudo_header", "vips", "state", "drops" (None: not known), "failed"}],
             "arp": {"client1": "server1"},            # the host whose MAC the entry holds; None: no entry
             "heartbeat": [{"host", "running", "role", "reason"}],
             "backends": [{"name", "health", "reason", "link", "drained", "in_pool"}]}
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Finding:
    problem: str  # what is wrong, in one line
    why: str      # what it does to the failover, and where to look


#: What each drop counter of halab's VRRP agent means, and what usually causes it.
DROPS = {
    "unknown_vrid": "adverts of another virtual_router_id arrive: a VRID mismatch (each side ignores the other)",
    "bad_ttl": "adverts whose TTL is not 255: they crossed a router, or were forged (RFC 5798 drops them)",
    "bad_checksum": "adverts with a checksum this agent rejects: one side computes it without the pseudo-header "
                    "(keepalived's vrrp_version 2 / RFC 3768) and the other with it (RFC 5798)",
    "bad_destination": "adverts not sent to the VRRP multicast group (or a unicast peer's address)",
    "not_a_peer": "adverts from an address that is not a configured unicast_peer",
    "in_fault": "adverts that arrived while this instance was in FAULT (its interface or a track script failed)",
    "bad_version": "adverts of another VRRP version", "bad_type": "packets of another VRRP type",
    "bad_length": "adverts cut short or with the wrong address count", "truncated": "adverts cut short",
    "bad_interval": "adverts with an interval of 0", "bad_vrid": "adverts with VRID 0",
    "bad_ip_header": "packets with a broken IP header",
    "send_failed": "adverts it could not send (its link is down)",
    "announce_failed": "gratuitous ARPs it could not send, so clients may keep the old master's MAC",
    "accept_rule_failed": "the nftables rule for accept = false could not be set",
    # keepalived's own counters (harness/labfacts.py names them so)
    "interval_mismatch": "adverts whose interval is not this instance's advert_int: give both the same",
    "address_list": "adverts whose virtual addresses are not this instance's (keepalived ignores them, and its "
                    "backup becomes master)",
    "auth": "adverts whose authentication type or password is not this instance's",
    "notify_failed": "a notify script that could not be started",
}


def vrrp(facts: dict) -> list[Finding]:
    """Masters per VIP, configurations that cannot agree, counters, track scripts, clients' ARP."""
    instances = [i for i in facts.get("vrrp", []) if facts.get("vip") in i["vips"]]
    if not instances:
        return []
    found = []
    masters = sorted(i["host"] for i in instances if i["state"] == "MASTER" and i["running"])
    if not masters:
        found.append(Finding(f"No VRRP agent is master of {facts['vip']}.",
                             "Nobody answers for the VIP. Every agent is " + ", ".join(
                                 f"{i['host']} {i['state'] or 'starting'}" for i in instances) + "."))
    elif len(masters) > 1:
        found.append(Finding(f"{len(masters)} VRRP masters of {facts['vip']}: {', '.join(masters)} (split brain).",
                             "Each believes the other is gone: they do not receive each other's adverts. "
                             "See the findings below, or look for a partition or a cut link."))
    for a, b in combinations(instances, 2):
        pair = f"{a['host']} and {b['host']}"
        if a["vrid"] != b["vrid"]:
            found.append(Finding(f"{pair} use different virtual_router_id ({a['vrid']} and {b['vrid']}).",
                                 "Each drops the other's adverts as another router's, so both become master."))
        if a["advert_int"] != b["advert_int"]:
            found.append(Finding(f"{pair} use different advert_int ({a['advert_int']:g} s and {b['advert_int']:g} s).",
                                 "A VRRPv3 backup times the master out by the interval in its adverts, so the "
                                 "failover time depends on who is master (keepalived counts each such advert); "
                                 "give both the same."))
        if a["checksum_with_pseudo_header"] != b["checksum_with_pseudo_header"]:
            found.append(Finding(f"{pair} compute the advert checksum differently.",
                                 "One includes the IP pseudo-header (VRRPv3), the other not (VRRPv2): a peer "
                                 "that accepts only its own form (keepalived) drops the other's adverts as bad "
                                 "checksums (halab's agent accepts both)."))
        if a["priority"] == b["priority"]:
            found.append(Finding(f"{pair} have the same priority ({a['priority']}).",
                                 "The tie goes to the higher primary IP address, not to the server you meant."))
    top = max(instances, key=lambda i: i["priority"])
    if not top["preempt"] and top["running"] and top["state"] == "BACKUP":
        found.append(Finding(f"preempt is off on {top['host']} (priority {top['priority']}), which is not master.",
                             "A higher priority that comes back stays backup until the master fails."))
    for i in instances:
        for reason, count in sorted((i["drops"] or {}).items()):
            if count:
                found.append(Finding(f"{i['host']} dropped {count} packet(s): {reason}.",
                                     DROPS.get(reason, "see the agent's log") + "."))
        for track in i["failed"]:
            found.append(Finding(f"{i['host']}'s check {track} fails.",
                                 "The instance is in FAULT (or lowered in priority) while it fails."))
        if not i["running"]:
            found.append(Finding(f"{i['host']}'s {i['program']} does not run.", "`fault restore` starts it again."))
    if len(masters) == 1:
        for client, owner in sorted(facts.get("arp", {}).items()):
            if owner is not None and owner != masters[0]:
                found.append(Finding(f"{client}'s ARP entry for {facts['vip']} points at {owner}, not at the "
                                     f"master {masters[0]}.",
                                     "The new master's gratuitous ARP did not reach it, or was ignored: its "
                                     "requests go to the old master until the entry expires."))
    return found


def heartbeat(facts: dict) -> list[Finding]:
    nodes = facts.get("heartbeat", [])
    found = []
    actives = sorted(n["host"] for n in nodes if n["role"] == "ACTIVE" and n["running"])
    if nodes and not actives:
        found.append(Finding("No heartbeat node is active.", "; ".join(f"{n['host']}: {n['role'] or 'starting'} "
                                                                      f"({n['reason'] or 'no reason yet'})"
                                                                      for n in nodes) + "."))
    if len(actives) > 1:
        found.append(Finding(f"Two heartbeat nodes are active: {', '.join(actives)}.",
                             "After a healed partition the one outranked releases; if it lasts, they do not hear "
                             "each other (a node fenced by the switch cannot)."))
    for n in nodes:
        reason = n["reason"] or ""
        if not n["running"]:
            found.append(Finding(f"{n['host']}'s halab-heartbeat does not run.", "`fault restore` starts it again."))
        elif "no quorum" in reason:
            found.append(Finding(f"{n['host']} has no quorum: {reason}.",
                                 "The tie-breaker does not answer it either, so it may be the one cut off: it "
                                 "does not take over (a partition, or the tie-breaker is down)."))
        elif "fencing" in reason and "failed" in reason:
            found.append(Finding(f"{n['host']} could not fence its peer: {reason}.",
                                 "Without the switch's confirmation that the peer is isolated it does not take "
                                 "over (the controller does not answer, or does not know the peer's port)."))
        elif n["role"] == "FAULT":
            found.append(Finding(f"{n['host']} is in FAULT: {reason}.",
                                 "A resource's monitor failed, or a VIP's interface is down: it gives everything "
                                 "up until that has been fine for failure_timeout."))
    return found


def backends(facts: dict) -> list[Finding]:
    found = []
    for b in facts.get("backends", []):
        if b["in_pool"]:
            continue
        said = f" ({b['reason']})" if b["reason"] not in ("", "check failed") else ""  # more than the verdict
        why = ("its link is down" if b["link"] == "down" else "it is drained" if b["drained"]
               else f"its health check fails{said}" if b["health"] == "down"
               else "it has not passed enough health checks yet")
        found.append(Finding(f"{b['name']} is out of the balancer's pool: {why}.",
                             "New connections go to the other backends; it comes back once it is healthy."))
    return found


def findings(facts: dict) -> list[Finding]:
    return [*vrrp(facts), *heartbeat(facts), *backends(facts)]


def text(facts: dict) -> str:
    found = findings(facts)
    if not found:
        return "Nothing wrong found: " + summary(facts) + "."
    return "\n".join(f"- {f.problem}\n  {f.why}" for f in found)


def summary(facts: dict) -> str:
    parts = [f"{i['host']} {i['state']}" for i in facts.get("vrrp", []) if facts.get("vip") in i["vips"]]
    parts += [f"{n['host']} {n['role']}" for n in facts.get("heartbeat", [])]
    parts += [f"{sum(b['in_pool'] for b in facts.get('backends', []))} of {len(facts['backends'])} backends in "
              "the pool"] if facts.get("backends") else []
    return ", ".join(parts) or "this lab has no VRRP, heartbeat or balancer to diagnose"
