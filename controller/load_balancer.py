"""The L4 load balancer: an L2 learning switch with a table in front that serves VIPs.

Event handlers only: packet-ins (ARP replies that locate backends, health-check replies, first
packets of round-robin connections), port status (a backend's link went down), group
descriptions (the pools a former controller left), flow statistics, the copies of the resets a
backend sends (a refused connection: check it now), and a 10 ms tick (sooner when a check is
due) that sends checks, times them out, re-resolves backends and polls statistics. What a pool is and
when the switch must hear of it is controller.pool's (pure, tested on a fake clock); the
OpenFlow messages are controller.lb_flows' (the pipeline is explained there); what is read
from or flushed in conntrack, controller.conntrack's.
"""

from __future__ import annotations

import logging
import struct
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

from controller import api, conntrack, ids, lb_config, selection
from controller.health import Check, Endpoints
from controller.l2_switch import L2Switch
from controller.lb_config import Service
from controller.lb_flows import (
    CLIENT_TABLE,
    ETH_ARP,
    L2_DST_TABLE,
    L2_TABLE,
    LB_TABLE,
    PROTO_NUMBER,
    RESET_TABLE,
    LbMessages,
    vip_mac,
)
from controller.pool import ARP_RETRY_S, BackendState, Change, Pools
from ha.eventlog import EventLog

log = logging.getLogger("halab.lb")

TICK_S = 0.01
#: The tick loop's shortest sleep: the event loop's timers have about a millisecond's resolution.
MIN_SLEEP_S = 0.0005
ETH_HEADER_LEN = 14
ARP_REFRESH_S = 5.0
STATS_EVERY_S = 1.0
#: At most this many connections per backend, on average, in conntrack (a SYN flood's bound).
CONNECTIONS_PER_BACKEND = 65_536
#: How long a round-robin pick is remembered for packets that reach the controller before its commit.
RR_MEMORY_S = 5.0


@dataclass
class SwitchLb:
    """The load balancer's state for one connected switch."""

    msgs: LbMessages
    pools: Pools
    asked: dict[IPv4Address, float] = field(default_factory=dict)  # ip -> last ARP request sent
    rr: dict[int, selection.SmoothWeightedRoundRobin] = field(default_factory=dict)
    rr_choices: dict[tuple, tuple[int, float]] = field(default_factory=dict)  # recent round-robin picks
    next_stats: float = 0.0
    stats_asked: dict[int, tuple[ids.BackendKey, bool]] = field(default_factory=dict)  # xid -> (backend, client side)


class LoadBalancer(L2Switch):
    OFP_VERSIONS = [ofproto_v1_5.OFP_VERSION]  # noqa: RUF012 (groups need OpenFlow 1.5 for selection_method)
    TABLE = L2_TABLE
    DST_TABLE = L2_DST_TABLE

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.config = lb_config.load(Path(self.CONF.halab_lb_config))
        self.vip_macs = {vip_mac(s.vip) for s in self.config.services}
        #: (VIP, port, IP protocol) -> index, of the services whose connections the controller picks.
        self.round_robin = {(int(s.vip), s.port, PROTO_NUMBER[s.protocol]): si
                            for si, s in enumerate(self.config.services) if not s.in_switch}
        self.switches: dict[int, SwitchLb] = {}
        self.lock = threading.RLock()
        self.started = time.time()
        self.counting = False  # a count of the connections in conntrack is under way (one for all switches)
        log_path = self.CONF.halab_event_log
        self.event_log = EventLog(Path(log_path) if log_path else None, "halab-controller")  # not `events`: os-ken's
        self.api = api.serve(self, self.CONF.halab_api_port)
        hub.spawn(self._tick_loop)

    # --- switch life cycle ----------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev) -> None:
        """Install the LB table, then read back the groups an earlier controller left (resync)."""
        super().switch_features_handler(ev)
        dp = ev.msg.datapath
        msgs = LbMessages(dp)
        if self.config.switches and dp.id not in self.config.switches:
            msgs.table_miss()   # straight on to the L2 table: this switch only switches
            log.info("switch %016x ready: not balancing", dp.id)
            return
        with self.lock:
            sw = self.switches[dp.id] = SwitchLb(msgs, Pools(self.config))
            for service in self.config.services:
                for b in service.backends:
                    msgs.check_replies(service, b)
            for key in sw.pools.backends:
                if self.config.services[key.service].checks_on_reset:
                    msgs.reset_copies(key)
            for vip in self.config.vips:
                msgs.arp_for_vip(vip)
            msgs.table_miss()
            msgs.request_group_desc()
        hub.spawn(self._limit_connections)

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def group_desc_handler(self, ev) -> None:
        """Take over the pools a previous controller left in the switch, so nothing moves."""
        dp = ev.msg.datapath
        with self.lock:
            sw = self.switches.get(dp.id)
            if sw is None:
                return
            for desc in ev.msg.body:
                sw.pools.keep(ids.service_of_group(desc.group_id),
                              {ids.backend_of_bucket(b.bucket_id) for b in desc.buckets})
            if ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
                return
            sw.pools.sync(time.monotonic())
            # The harness waits for this line: the switch balances from here on.
            log.info("switch %016x ready: %d pool(s) kept in the switch", dp.id, sw.pools.kept_pools)

    def _limit_connections(self) -> None:
        try:
            conntrack.limit(CONNECTIONS_PER_BACKEND * sum(len(s.backends) for s in self.config.services))
        except conntrack.ConntrackError as exc:
            log.warning("could not limit the connections in conntrack: %s", exc)

    # --- packets --------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev) -> None:
        msg = ev.msg
        if msg.table_id == CLIENT_TABLE:
            self._first_packet(msg.datapath.id, msg.data)
            return
        if msg.table_id == RESET_TABLE:
            self._reset_seen(msg.datapath.id, msg.cookie)
            return
        if msg.table_id != LB_TABLE:
            super().packet_in_handler(ev)
            return
        pkt = packet.Packet(msg.data)
        with self.lock:
            sw = self.switches.get(msg.datapath.id)
            if sw is None:
                return
            if (a := pkt.get_protocol(arp.arp)) is not None:
                ip, port = IPv4Address(a.src_ip), msg.match["in_port"]
                if sw.pools.locate(ip, a.src_mac, port):
                    log.info("backend %s is %s on port %d", ip, a.src_mac, port)
                    for key in sw.pools.backends:
                        if sw.pools.backend(key).ip == ip:
                            sw.msgs.backend(self.config.services[key.service], key, a.src_mac, port)
                    self._push(sw)
            elif (ip := pkt.get_protocol(ipv4.ipv4)) is not None:
                self._ip_packet(sw, pkt, ip)

    def learnable(self, mac: str) -> bool:
        return mac not in self.vip_macs

    def _ip_packet(self, sw: SwitchLb, pkt: packet.Packet, ip) -> None:
        """Health-check replies (and the ICMP errors that fail a UDP check)."""
        l4 = pkt.get_protocol(tcp.tcp) or pkt.get_protocol(udp.udp)
        dst_port = l4.dst_port if l4 is not None else _icmp_quoted_src_port(pkt)
        if dst_port is not None and dst_port >= ids.CHECK_PORT_BASE:
            self._check_reply(sw, IPv4Address(ip.src), dst_port, pkt)

    def _first_packet(self, dpid: int, data: bytes) -> None:
        """A new connection to a round-robin service (all that table 4 sends here). The one packet
        per connection that Python handles, so it reads the few header fields it needs itself:
        os-ken's packet parser took 28 µs of it."""
        found = _connection_of(data)
        si = self.round_robin.get(found[1:4]) if found is not None else None
        if si is None:
            return
        with self.lock:
            sw = self.switches.get(dpid)
            if sw is not None:
                self._new_round_robin_connection(sw, si, self.config.services[si], found[0], found[4], data)

    def _new_round_robin_connection(self, sw: SwitchLb, si: int, service: Service, client: int,
                                    client_port: int, data: bytes) -> None:
        """Pick the next backend and commit the connection to it; a packet that overtook the commit
        gets the same one."""
        now = time.monotonic()
        key = (si, client, client_port)
        pool = sw.pools.members(si)
        earlier = sw.rr_choices.get(key)
        member = next((m for m in pool if earlier and m.index == earlier[0] and now - earlier[1] < RR_MEMORY_S), None)
        if member is None:
            weights = {m.index: (m.backend.weight if service.algorithm == "weighted" else 1) for m in pool}
            chosen = sw.rr.setdefault(si, selection.SmoothWeightedRoundRobin()).pick(weights)
            if chosen is None:
                return  # no backend up: the client's retransmission will try again
            member = next(m for m in pool if m.index == chosen)
        sw.rr_choices[key] = (member.index, now)
        sw.msgs.first_packet_to(ids.BackendKey(si, member.index), data)

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
            for change in sw.pools.link(msg.desc.port_no, up):
                self._changed(sw, change)
                if up:
                    sw.asked.pop(sw.pools.backend(change.key).ip, None)  # locate it again at once
            self._push(sw)

    # --- locating backends and checking them ----------------------------------------------

    def _ask_where(self, sw: SwitchLb, now: float) -> None:
        vip = self.config.services[0].vip
        for ip in {b.ip for s in self.config.services for b in s.backends}:
            wait = ARP_REFRESH_S if ip in sw.pools.located else ARP_RETRY_S
            if now - sw.asked.get(ip, -1e9) >= wait:
                sw.asked[ip] = now
                request = packet.Packet()
                request.add_protocol(ethernet.ethernet("ff:ff:ff:ff:ff:ff", vip_mac(vip), ETH_ARP))
                request.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=vip_mac(vip), src_ip=str(vip),
                                             dst_mac="00:00:00:00:00:00", dst_ip=str(ip)))
                request.serialize()
                sw.msgs.send_packet(bytes(request.data))

    def _run_checks(self, sw: SwitchLb, now: float) -> float:
        """Time out and start the checks that are due; when the next one is due or times out."""
        soonest = now + TICK_S
        for state in sw.pools.backends.values():
            hc = self.config.services[state.key.service].health_check
            if hc.kind == "none":
                continue
            if state.check is not None and now > state.check.deadline:
                state.check = None
                self._check_result(sw, state, False, "check timed out")
            if not sw.pools.may_check(state.key, now):
                continue
            if state.check is None and now >= state.next_check:
                self._start_check(sw, state, now)
            soonest = min(soonest, state.check.deadline if isinstance(state.check, Check) else state.next_check)
        return soonest

    def _start_check(self, sw: SwitchLb, state: BackendState, now: float, after_reset: bool = False) -> None:
        service = self.config.services[state.key.service]
        hc, b = service.health_check, service.backends[state.key.backend]
        state.start_check(now, hc.interval)
        if b.ip not in sw.pools.located:
            self._check_result(sw, state, False, "not located (no ARP reply)")
            return
        mac, port = sw.pools.located[b.ip]
        check = state.check = Check(hc.kind, Endpoints(vip_mac(service.vip), service.vip, mac, b.ip, b.port),
                                    now + hc.timeout, hc.path, hc.send.encode(), after_reset=after_reset)
        sw.msgs.send_packet(check.start(), out_port=port)

    def _reset_seen(self, dpid: int, cookie: int) -> None:
        """A backend reset a client's connection: check it now rather than at its turn."""
        key = ids.BackendKey.of_reset_cookie(cookie)
        with self.lock:
            sw = self.switches.get(dpid)
            state = sw.pools.backends.get(key) if sw is not None and key is not None else None
            now = time.monotonic()
            if state is not None and sw.pools.synced and state.reset_seen(now):
                self._start_check(sw, state, now, after_reset=True)

    def _check_reply(self, sw: SwitchLb, src: IPv4Address, sport: int, pkt: packet.Packet) -> None:
        for state in sw.pools.backends.values():
            c = state.check
            if not isinstance(c, Check) or c.sport != sport or c.ends.backend != src:
                continue
            verdict, frame = c.on_reply(pkt)
            if frame is not None:
                sw.msgs.send_packet(frame, out_port=sw.pools.located[src][1])
            if verdict is not None:
                state.check = None
                self._check_result(sw, state, verdict, c.verdict(verdict))
            return

    def _check_result(self, sw: SwitchLb, state: BackendState, ok: bool, why: str) -> None:
        change = sw.pools.result(state.key, ok, why)
        if change is not None:
            self._changed(sw, change)
            self._push(sw)

    # --- pools ----------------------------------------------------------------------------

    def _changed(self, sw: SwitchLb, change: Change) -> None:
        """Log a backend's change; a dead one's connections are forgotten (a client's new
        connection from the same port then starts afresh instead of following a dead one)."""
        service = self.config.services[change.key.service]
        backend = service.backends[change.key.backend]
        subject = f"{service.name} {backend.label}"
        log.info("%s: %s -> %s (%s)", subject, change.old, change.new, change.reason)
        self.event_log.write(subject, change.old, change.new, change.reason)
        if change.new in ("down", "link down"):
            hub.spawn(self._forget_connections, backend.ip, backend.port, PROTO_NUMBER[service.protocol])

    def _forget_connections(self, ip: IPv4Address, port: int, ip_proto: int) -> None:
        try:
            conntrack.forget_backend(ip, port, ip_proto)
        except conntrack.ConntrackError as exc:
            log.warning("could not forget the connections of %s:%d: %s", ip, port, exc)

    def _push(self, sw: SwitchLb) -> None:
        """Send each pool the switch does not have yet: the group, then (the first time only: a
        flow that names a missing group is refused) the service entry. Its members' flows went in
        when they were located."""
        for push in sw.pools.due(time.monotonic()):
            service = self.config.services[push.service]
            if push.members is not None:
                sw.msgs.group(service, push.service, push.members, push.buckets)
            if push.first:
                sw.msgs.service_entry(service, push.service)

    def set_drained(self, service_name: str, backend_label: str, drained: bool) -> str:
        """Drain (no new connections, existing ones go on) or undrain a backend on every switch."""
        with self.lock:
            for si, service in enumerate(self.config.services):
                if service.name != service_name:
                    continue
                for bi, b in enumerate(service.backends):
                    if b.label == backend_label:
                        for sw in self.switches.values():
                            self._changed(sw, sw.pools.drain(ids.BackendKey(si, bi), drained))
                            self._push(sw)
                        return f"{service_name} {backend_label}: {'draining' if drained else 'in service'}"
                raise KeyError(f"service {service_name!r} has no backend {backend_label!r}; "
                               f"its backends: {', '.join(b.label for b in service.backends)}")
            raise KeyError(f"no service {service_name!r}; services: "
                           f"{', '.join(s.name for s in self.config.services)}")

    # --- statistics and status ------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    def aggregate_stats_handler(self, ev) -> None:
        """Packets and bytes of one backend (both sides), summed by the switch."""
        msg = ev.msg
        with self.lock:
            sw = self.switches.get(msg.datapath.id)
            asked = sw.stats_asked.pop(msg.xid, None) if sw is not None else None
            if asked is None:
                return
            key, client_side = asked
            stats, state = msg.body.stats, sw.pools.backends[key]
            packets, octets = stats["packet_count"] if "packet_count" in stats else 0, \
                stats["byte_count"] if "byte_count" in stats else 0
            if client_side:
                state.packets, state.bytes = packets, octets
            else:
                state.packets += packets
                state.bytes += octets

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
                    # A pool counts once the switch has it: the first push waits for every backend to
                    # be located (or ARP_RETRY_S), and until then the VIP has no entry in the switch.
                    members = {m.index for m in sw.pools.members(si)} if si in sw.pools.pushed else set()
                    backends = []
                    for bi, b in enumerate(service.backends):
                        state = sw.pools.backends[ids.BackendKey(si, bi)]
                        mac, port = sw.pools.located.get(b.ip, (None, None))
                        backends.append({
                            "backend": b.label, "weight": b.weight, "mac": mac, "port": port,
                            "health": "up" if state.health.up else "down", "reason": state.reason,
                            "link": "up" if state.link_up else "down", "drained": state.drained,
                            "in_pool": bi in members, "connections": state.connections,
                            "packets": state.packets, "bytes": state.bytes,
                        })
                    services.append({"name": service.name, "vip": str(service.vip), "port": service.port,
                                     "protocol": service.protocol, "algorithm": service.algorithm,
                                     "health_check": service.health_check.kind, "backends": backends})
                out["switches"].append({"dpid": f"{dpid:016x}", "synced": sw.pools.synced, "services": services})
            return out

    # --- the tick -------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        """Every TICK_S, and sooner when a check is due: a check waits for no tick."""
        while True:
            now = time.monotonic()
            wake = now + TICK_S
            with self.lock:
                for sw in list(self.switches.values()):
                    if not sw.pools.synced:
                        continue
                    try:
                        wake = min(wake, self._tick(sw, now))
                    except Exception:  # one bad tick must not stop health checks for good
                        log.exception("load balancer tick failed; carrying on")
            hub.sleep(max(wake - time.monotonic(), MIN_SLEEP_S))

    def _tick(self, sw: SwitchLb, now: float) -> float:
        """One tick's work; when the next check is due."""
        self._ask_where(sw, now)
        wake = self._run_checks(sw, now)
        self._push(sw)
        if now >= sw.next_stats:
            sw.next_stats = now + STATS_EVERY_S
            sw.stats_asked = {}  # answers to older requests no longer count
            for key in sw.pools.backends:  # the client side first: its answer resets the sums
                sw.stats_asked[sw.msgs.request_connection_stats(key.conn_cookie())] = (key, True)
                sw.stats_asked[sw.msgs.request_connection_stats(key.reply_cookie())] = (key, False)
            sw.rr_choices = {k: v for k, v in sw.rr_choices.items() if now - v[1] < RR_MEMORY_S}
            if not self.counting:
                self.counting = True
                hub.spawn(self._count_connections)
        return wake

    def _count_connections(self) -> None:
        """Each backend's open connections, from conntrack (outside the lock: it takes a few ms).
        One listing for every switch: their datapath, and so its conntrack, is one."""
        try:
            counts = conntrack.open_connections(conntrack.dump())
        except conntrack.ConntrackError as exc:
            log.warning("could not count connections: %s", exc)
            counts = None
        with self.lock:
            self.counting = False
            if counts is not None:
                for sw in self.switches.values():
                    for key, state in sw.pools.backends.items():
                        state.connections = counts[key]


def _connection_of(frame: bytes) -> tuple[int, int, int, int, int] | None:
    """(source address, destination address, destination port, IP protocol, source port) of an
    Ethernet + IPv4 + TCP/UDP frame, the addresses as integers; None for anything else."""
    if len(frame) < 38 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4:
        return None
    l4 = ETH_HEADER_LEN + (frame[14] & 0x0F) * 4
    if len(frame) < l4 + 4:
        return None
    src, dst = struct.unpack_from("!II", frame, 26)
    sport, dport = struct.unpack_from("!HH", frame, l4)
    return src, dst, dport, frame[23], sport


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
