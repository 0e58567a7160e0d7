"""The L4 load balancer: an L2 learning switch with a table in front that serves VIPs.

Event loop: packet-ins (ARP replies that locate backends, health-check replies, first packets
of round-robin connections), port status (a backend's link went down), and a 10 ms tick that
sends checks, times them out, re-resolves backends and polls statistics. Every change of a
pool goes to the switch at once; the switch does the rest (lb_flows explains the pipeline).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.lib.packet import arp, ethernet, icmp, ipv4, packet, tcp, udp
from os_ken.ofproto import ofproto_v1_5

from controller import api, selection
from controller.health import Check, Endpoints, HealthState
from controller.l2_switch import L2Switch
from controller.lb_config import LbConfig, Service
from controller.lb_flows import (
    CHECK_PORT_BASE,
    CONN_COOKIE,
    CONN_MASK,
    ETH_ARP,
    L2_TABLE,
    LB_TABLE,
    LbMessages,
    Member,
    vip_mac,
)
from ha.eventlog import EventLog

log = logging.getLogger("halab.lb")

TICK_S = 0.01
ARP_RETRY_S = 0.5
ARP_REFRESH_S = 5.0
STATS_EVERY_S = 1.0
#: How long a round-robin pick is remembered for packets that reach the controller before its pin.
RR_MEMORY_S = 5.0

#: Set by the launcher before os-ken starts the app (os-ken apps take no constructor arguments).
CONFIG: LbConfig | None = None
API_PORT = api.DEFAULT_PORT
EVENT_LOG: Path | None = None


@dataclass
class BackendState:
    """What the controller knows of one backend of one service on one switch."""

    service: int
    index: int
    health: HealthState
    drained: bool = False
    link_up: bool = True
    next_check: float = 0.0
    check: Check | None = None
    reason: str = "not yet located (no ARP reply)"
    connections: int = 0
    packets: int = 0
    bytes: int = 0


@dataclass
class SwitchLb:
    """The load balancer's state for one connected switch."""

    msgs: LbMessages
    located: dict[IPv4Address, tuple[str, int]] = field(default_factory=dict)  # ip -> (mac, port)
    asked: dict[IPv4Address, float] = field(default_factory=dict)  # ip -> last ARP request sent
    backends: dict[tuple[int, int], BackendState] = field(default_factory=dict)
    pushed: dict[int, list] = field(default_factory=dict)  # group id -> what the switch has of its pool
    kept_pools: int = 0  # select groups a former controller left in the switch
    synced: bool = False
    synced_at: float = 0.0
    rr: dict[int, selection.SmoothWeightedRoundRobin] = field(default_factory=dict)
    rr_choices: dict[tuple, tuple[int, float]] = field(default_factory=dict)  # recent round-robin picks
    next_stats: float = 0.0
    counting: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # stats being summed


class LoadBalancer(L2Switch):
    OFP_VERSIONS = [ofproto_v1_5.OFP_VERSION]  # noqa: RUF012 (groups need OpenFlow 1.5 for selection_method)
    TABLE = L2_TABLE

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if CONFIG is None:
            raise RuntimeError("controller.load_balancer.CONFIG must be set before os-ken starts the app")
        self.config = CONFIG
        self.vip_macs = {vip_mac(s.vip) for s in self.config.services}
        self.switches: dict[int, SwitchLb] = {}
        self.lock = threading.RLock()
        self.started = time.time()
        self.event_log = EventLog(EVENT_LOG)  # not `events`: os-ken uses that name for its queue
        self.api = api.serve(self, API_PORT)
        hub.spawn(self._tick_loop)

    # --- switch life cycle ----------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev) -> None:
        """Install the LB table, then read back the groups an earlier controller left (resync)."""
        super().switch_features_handler(ev)
        dp = ev.msg.datapath
        msgs = LbMessages(dp)
        with self.lock:
            sw = self.switches[dp.id] = SwitchLb(msgs)
            for si, service in enumerate(self.config.services):
                check = service.health_check
                for bi, b in enumerate(service.backends):
                    sw.backends[si, bi] = BackendState(si, bi, HealthState(check.fall, check.rise))
                    msgs.check_replies(service, b)
            for vip in self.config.vips:
                msgs.arp_for_vip(vip)
            msgs.table_miss()
            msgs.request_group_desc()

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def group_desc_handler(self, ev) -> None:
        """Take over the pools a previous controller left in the switch, so nothing moves.

        A backend that was in the switch's pool stays up; one that was not must pass `rise`
        checks first. Pinned connections and the switch's table 2 carry on untouched meanwhile.
        """
        dp = ev.msg.datapath
        with self.lock:
            sw = self.switches.get(dp.id)
            if sw is None:
                return
            for desc in ev.msg.body:
                si = desc.group_id - 1
                if not 0 <= si < len(self.config.services):
                    continue
                kept = {selection.backend_of_bucket(b.bucket_id) for b in desc.buckets}
                sw.kept_pools += 1
                for bi in range(len(self.config.services[si].backends)):
                    state = sw.backends[si, bi]
                    if bi in kept:
                        state.reason = "up (in the pool the switch kept)"
                    else:
                        state.health.up, state.reason = False, "not in the pool the switch kept"
            if ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
                return
            sw.synced, sw.synced_at = True, time.monotonic()
            log.info("switch %016x: %d pool(s) kept in the switch", dp.id, sw.kept_pools)

    # --- packets --------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev) -> None:
        msg = ev.msg
        if msg.table_id != LB_TABLE:
            super().packet_in_handler(ev)
            return
        pkt = packet.Packet(msg.data)
        with self.lock:
            sw = self.switches.get(msg.datapath.id)
            if sw is None:
                return
            if (a := pkt.get_protocol(arp.arp)) is not None:
                self._located(sw, IPv4Address(a.src_ip), a.src_mac, msg.match["in_port"])
            elif (ip := pkt.get_protocol(ipv4.ipv4)) is not None:
                self._ip_packet(sw, pkt, ip, msg.data, msg.match["in_port"])

    def learnable(self, mac: str) -> bool:
        return mac not in self.vip_macs

    def _ip_packet(self, sw: SwitchLb, pkt: packet.Packet, ip, data: bytes, in_port: int) -> None:
        l4 = pkt.get_protocol(tcp.tcp) or pkt.get_protocol(udp.udp)
        dst_port = l4.dst_port if l4 is not None else _icmp_quoted_src_port(pkt)
        if dst_port is not None and dst_port >= CHECK_PORT_BASE:
            self._check_reply(sw, IPv4Address(ip.src), dst_port, pkt)
            return
        if l4 is None:
            return
        for si, service in enumerate(self.config.services):
            if (not service.in_switch and IPv4Address(ip.dst) == service.vip and l4.dst_port == service.port
                    and ip.proto == (6 if service.protocol == "tcp" else 17)):
                self._new_round_robin_connection(sw, si, service, IPv4Address(ip.src), l4.src_port, in_port, data)
                return

    def _new_round_robin_connection(self, sw: SwitchLb, si: int, service: Service, client: IPv4Address,
                                    client_port: int, in_port: int, data: bytes) -> None:
        """Pick the next backend and pin the connection; a packet that overtook the pin gets the same one."""
        now = time.monotonic()
        key = (si, client, client_port)
        pool = self._pool(sw, si)
        earlier = sw.rr_choices.get(key)
        member = next((m for m in pool if earlier and m.index == earlier[0] and now - earlier[1] < RR_MEMORY_S), None)
        if member is None:
            weights = {m.index: (m.backend.weight if service.algorithm == "weighted" else 1) for m in pool}
            chosen = sw.rr.setdefault(si, selection.SmoothWeightedRoundRobin()).pick(weights)
            if chosen is None:
                return  # no backend up: the client's retransmission will try again
            member = next(m for m in pool if m.index == chosen)
            sw.msgs.pin(service, si, member, client, client_port, in_port)
        sw.rr_choices[key] = (member.index, now)
        sw.msgs.forward_first_packet(service, member, data)

    # --- ports ----------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def port_status_handler(self, ev) -> None:
        """A backend's port went down: out of the pool now (the switch has already skipped it)."""
        super().port_status_handler(ev)
        msg = ev.msg
        up = not msg.desc.state & msg.datapath.ofproto.OFPPS_LINK_DOWN
        with self.lock:
            sw = self.switches.get(msg.datapath.id)
            if sw is None:
                return
            for state in sw.backends.values():
                b = self.config.services[state.service].backends[state.index]
                if sw.located.get(b.ip, (None, None))[1] == msg.desc.port_no and state.link_up != up:
                    state.link_up = up
                    self._event(state, "link up" if up else "link down", f"port {msg.desc.port_no}")
                    if not up:
                        sw.msgs.forget_connections(state.service, state.index)
                    else:
                        sw.asked.pop(b.ip, None)  # locate it again at once
            self._push_pools(sw)

    # --- locating backends ----------------------------------------------------------------

    def _located(self, sw: SwitchLb, ip: IPv4Address, mac: str, port: int) -> None:
        if sw.located.get(ip) == (mac, port):
            return
        moved = ip in sw.located
        sw.located[ip] = (mac, port)
        log.info("backend %s is %s on port %d%s", ip, mac, port, " (moved)" if moved else "")
        self._push_pools(sw)

    def _ask_where(self, sw: SwitchLb, now: float) -> None:
        vip = self.config.services[0].vip
        for ip in {b.ip for s in self.config.services for b in s.backends}:
            wait = ARP_REFRESH_S if ip in sw.located else ARP_RETRY_S
            if now - sw.asked.get(ip, -1e9) >= wait:
                sw.asked[ip] = now
                request = packet.Packet()
                request.add_protocol(ethernet.ethernet("ff:ff:ff:ff:ff:ff", vip_mac(vip), ETH_ARP))
                request.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=vip_mac(vip), src_ip=str(vip),
                                             dst_mac="00:00:00:00:00:00", dst_ip=str(ip)))
                request.serialize()
                sw.msgs.send_packet(bytes(request.data))

    # --- health checks --------------------------------------------------------------------

    def _run_checks(self, sw: SwitchLb, now: float) -> None:
        for state in sw.backends.values():
            service = self.config.services[state.service]
            hc, b = service.health_check, service.backends[state.index]
            if state.check is not None and now > state.check.deadline:
                state.check = None
                self._check_result(sw, state, False, "check timed out")
            if hc.kind == "none" or state.check is not None or now < state.next_check:
                continue
            state.next_check = now + hc.interval
            if b.ip not in sw.located:
                self._check_result(sw, state, False, "not located (no ARP reply)")
                continue
            ends = Endpoints(vip_mac(service.vip), service.vip, sw.located[b.ip][0], b.ip, b.port)
            state.check = Check(hc.kind, ends, now + hc.timeout, hc.path, hc.send.encode())
            sw.msgs.send_packet(state.check.start(), out_port=sw.located[b.ip][1])

    def _check_reply(self, sw: SwitchLb, src: IPv4Address, sport: int, pkt: packet.Packet) -> None:
        for state in sw.backends.values():
            c = state.check
            if c is None or c.sport != sport or c.ends.backend != src:
                continue
            verdict, frame = c.on_reply(pkt)
            if frame is not None:
                sw.msgs.send_packet(frame, out_port=sw.located[src][1])
            if verdict is not None:
                if not verdict:
                    log.debug("check of %s failed on %s", src, pkt)
                state.check = None
                self._check_result(sw, state, verdict, "check passed" if verdict else "check failed")
            return

    def _check_result(self, sw: SwitchLb, state: BackendState, ok: bool, why: str) -> None:
        if state.health.record(ok):
            state.reason = why
            self._event(state, "up" if ok else "down", why)
            if not ok:
                sw.msgs.forget_connections(state.service, state.index)
            self._push_pools(sw)

    def _event(self, state: BackendState, event: str, why: str) -> None:
        service = self.config.services[state.service]
        backend = service.backends[state.index]
        log.info("%s %s: %s (%s)", service.name, backend.label, event, why)
        self.event_log.write(service=service.name, backend=backend.label, event=event, reason=why)

    # --- pools ----------------------------------------------------------------------------

    def _pool(self, sw: SwitchLb, si: int) -> list[Member]:
        service = self.config.services[si]
        out = []
        for bi, b in enumerate(service.backends):
            state = sw.backends[si, bi]
            if b.ip in sw.located and state.health.up and state.link_up and not state.drained:
                mac, port = sw.located[b.ip]
                out.append(Member(bi, b, mac, port))
        return out

    def _push_pools(self, sw: SwitchLb) -> None:
        """Send each in-switch service's pool if it changed: table-2 flows first, then the group.

        After a (re)connection, wait until every backend is located (or ARP_RETRY_S passed), so a
        restarted controller does not shrink a pool the switch still serves from.
        """
        if not sw.synced:
            return
        unlocated = any(b.ip not in sw.located for s in self.config.services for b in s.backends)
        if unlocated and time.monotonic() - sw.synced_at < ARP_RETRY_S:
            return
        for si, service in enumerate(self.config.services):
            if not service.in_switch:
                if si + 1 not in sw.pushed:
                    sw.pushed[si + 1] = []
                    sw.msgs.service_entry(service, None)
                continue
            pool = self._pool(sw, si)
            buckets = selection.bucket_ids({m.index: m.backend.weight for m in pool})
            signature = [*buckets, *((m.index, m.mac, m.port) for m in pool)]
            if sw.pushed.get(si + 1) == signature:
                continue
            for member in pool:
                sw.msgs.backend(service, si, member)
            sw.msgs.group(service, si, si + 1, pool, buckets)
            if si + 1 not in sw.pushed:
                # Only now: a flow that names a group the switch does not have yet is refused.
                sw.msgs.service_entry(service, si + 1)
            sw.pushed[si + 1] = signature

    def set_drained(self, service_name: str, backend_label: str, drained: bool) -> str:
        """Drain (no new connections, existing ones go on) or undrain a backend on every switch."""
        with self.lock:
            for si, service in enumerate(self.config.services):
                if service.name != service_name:
                    continue
                for bi, b in enumerate(service.backends):
                    if b.label == backend_label:
                        for sw in self.switches.values():
                            sw.backends[si, bi].drained = drained
                            self._event(sw.backends[si, bi], "drained" if drained else "undrained", "by request")
                            self._push_pools(sw)
                        return f"{service_name} {backend_label}: {'draining' if drained else 'in service'}"
                raise KeyError(f"service {service_name!r} has no backend {backend_label!r}; "
                               f"its backends: {', '.join(b.label for b in service.backends)}")
            raise KeyError(f"no service {service_name!r}; services: "
                           f"{', '.join(s.name for s in self.config.services)}")

    # --- statistics and status ------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPFlowDescStatsReply, MAIN_DISPATCHER)
    def flow_stats_handler(self, ev) -> None:
        """Connections, packets and bytes per backend: the pinned connection flows, summed."""
        msg = ev.msg
        with self.lock:
            sw = self.switches.get(msg.datapath.id)
            if sw is None:
                return
            for flow in msg.body:
                c = sw.counting.setdefault((flow.cookie >> 8 & 0xFF, flow.cookie & 0xFF), [0, 0, 0])
                c[0] += flow.cookie & CONN_MASK == CONN_COOKIE  # one client-side flow per connection
                c[1] += flow.stats["packet_count"] if "packet_count" in flow.stats else 0
                c[2] += flow.stats["byte_count"] if "byte_count" in flow.stats else 0
            if msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
                return
            for key, state in sw.backends.items():
                state.connections, state.packets, state.bytes = sw.counting.get(key, [0, 0, 0])
            sw.counting = {}

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error_handler(self, ev) -> None:
        """The switch refused a message: say which, or a broken pipeline would go unnoticed."""
        msg = ev.msg
        log.error("switch %016x refused a message: type %d code %d (%s)", msg.datapath.id, msg.type, msg.code,
                  bytes(msg.data[:64]).hex())

    def status(self) -> dict:
        """Services, backends, health, connections and counters, as the status API shows them."""
        with self.lock:
            out = {"uptime_s": round(time.time() - self.started, 1), "switches": []}
            for dpid, sw in self.switches.items():
                services = []
                for si, service in enumerate(self.config.services):
                    backends = []
                    for bi, b in enumerate(service.backends):
                        state = sw.backends[si, bi]
                        mac, port = sw.located.get(b.ip, (None, None))
                        in_pool = any(m.index == bi for m in self._pool(sw, si))
                        backends.append({
                            "backend": b.label, "weight": b.weight, "mac": mac, "port": port,
                            "health": "up" if state.health.up else "down", "reason": state.reason,
                            "link": "up" if state.link_up else "down", "drained": state.drained,
                            "in_pool": in_pool, "connections": state.connections,
                            "packets": state.packets, "bytes": state.bytes,
                        })
                    services.append({"name": service.name, "vip": str(service.vip), "port": service.port,
                                     "protocol": service.protocol, "algorithm": service.algorithm,
                                     "health_check": service.health_check.kind, "backends": backends})
                out["switches"].append({"dpid": f"{dpid:016x}", "synced": sw.synced, "services": services})
            return out

    # --- the tick -------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while True:
            now = time.monotonic()
            with self.lock:
                for sw in list(self.switches.values()):
                    if not sw.synced:
                        continue
                    self._ask_where(sw, now)
                    self._run_checks(sw, now)
                    self._push_pools(sw)
                    if now >= sw.next_stats:
                        sw.next_stats = now + STATS_EVERY_S
                        sw.msgs.request_connection_stats()
                        sw.rr_choices = {k: v for k, v in sw.rr_choices.items() if now - v[1] < RR_MEMORY_S}
            hub.sleep(TICK_S)


def _icmp_quoted_src_port(pkt: packet.Packet) -> int | None:
    """The source port of the datagram an ICMP error quotes (our check's port), if any."""
    err = pkt.get_protocol(icmp.icmp)
    if err is None or err.type != icmp.ICMP_DEST_UNREACH or not hasattr(err.data, "data"):
        return None
    quoted = bytes(err.data.data)
    if len(quoted) < 28:
        return None
    ihl = (quoted[0] & 0x0F) * 4
    return int.from_bytes(quoted[ihl:ihl + 2], "big")
