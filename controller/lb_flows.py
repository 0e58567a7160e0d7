"""Every OpenFlow 1.5 message the load balancer sends, built here and nowhere else.

The pipeline on each switch:

    table 0 (load balancer)                                  tables 1, 3 (the L2 learning switch)
      300  ARP request for a VIP     -> answered in the switch
      300  ARP reply to a VIP        -> controller (backend MAC and port)
      250  health-check replies      -> controller
      100  client -> VIP:port        -> conntrack (the connection's NAT applied), table 4
      100  backend:port -> anyone    -> conntrack (its NAT undone), table 5
        0  anything else             -> goto 1                               -> learn, forward, flood
    table 4 (client side, tracked)
      200  new, not yet committed    -> select group (hash)  | controller (round robin)
           (TCP: only a SYN; a lost connection's later segments never start a new one)
      100  mark = backend            -> its MAC, out of its port
        0  anything else             -> drop (invalid, or TCP not begun by a SYN)
    select group bucket              -> reg1 = backend, resubmit to table 2
    table 2 (backends)  reg1 = backend -> commit: NAT to the backend, mark = backend, table 4
    table 5 (reply side, tracked)
      101  a reset, mark = backend   -> as below, and a copy to table 6
      100  reply, mark = backend     -> source MAC = the VIP's, forward by destination (table 3)
        0  anything else             -> table 1 (a backend's own traffic)
    table 6 (a backend's resets)
      100  mark = backend            -> its meter (RESET_COPIES_PER_S), controller: check it now

Connection tracking keeps "one 5-tuple, one backend" true when the pool changes (a drain, a
failed check): the first packet of a connection is committed with its backend's address as NAT
and the backend in the connection's mark, and every later packet, both ways, is translated by
the datapath itself. Nothing is learned into the flow table per connection, so a new
connection costs no flow-table change and no revalidation of the switch's cached flows (what
the former design, two `learn`ed flows per connection, spent most of its time on: see
benchmarks/lb_vs_haproxy.py). Replies are recognised by conntrack, not by address, so a client
may still talk to a backend directly (from a port that conntrack does not still hold for a
closed connection to that backend: README, Known limits).
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from os_ken.ofproto import ofproto_v1_5_parser

from controller import ids
from controller.ids import CHECK_PORT_BASE, LB_STATIC_COOKIE, BackendKey
from controller.lb_config import Backend, Service
from controller.pool import Member

LB_TABLE = 0
L2_TABLE = 1
BACKEND_TABLE = 2
L2_DST_TABLE = 3
CLIENT_TABLE = 4
REPLY_TABLE = 5
RESET_TABLE = 6

PRIO_ARP, PRIO_CHECK, PRIO_NEW, PRIO_CONN, PRIO_SERVICE = 300, 250, 200, 100, 100
ETH_ARP, ETH_IP = 0x0806, 0x0800
PROTO_NUMBER = {"tcp": 6, "udp": 17}
ICMP = 1
#: Connection tracking's state bits (OVS's CS_*): tracked, new, reply direction, invalid.
CT_TRACKED, CT_NEW, CT_REPLY, CT_INVALID = 0x20, 0x01, 0x08, 0x10
NX_CT_F_COMMIT, NX_NAT_F_DST = 1, 2
TCP_SYN, TCP_RST, TCP_ACK = 0x02, 0x04, 0x10
#: At most this many of a backend's resets a second reach the controller (a burst of 2 more).
RESET_COPIES_PER_S = 10


def vip_mac(vip: IPv4Address) -> str:
    """The MAC the switch answers for a VIP: locally administered, 02:48 ("H") + the address."""
    return "02:48:" + ":".join(f"{b:02x}" for b in vip.packed)


class LbMessages:
    """Builds and sends the load balancer's OpenFlow messages to one datapath."""

    def __init__(self, dp) -> None:
        self.dp = dp
        self.ofp = dp.ofproto
        self.parser = dp.ofproto_parser

    # --- static flows ---------------------------------------------------------------------

    def table_miss(self) -> None:
        """Table 0 sends on to the L2 switch; conntrack's leftovers: invalid client packets are
        dropped, and traffic of the backends' own (not a VIP's reply) goes on to the L2 switch."""
        p = self.parser
        self._flow(0, p.OFPMatch(), [p.OFPInstructionGotoTable(L2_TABLE)])
        self._flow(0, p.OFPMatch(), [], table=CLIENT_TABLE)
        self._flow(0, p.OFPMatch(), self._apply([p.NXActionResubmitTable(table_id=L2_TABLE)]), table=REPLY_TABLE)

    def arp_for_vip(self, vip: IPv4Address) -> None:
        """Answer ARP requests for the VIP in the switch (service goes on with the controller dead)."""
        p, mac = self.parser, vip_mac(vip)
        def copy(src: str, dst: str, bits: int):
            return p.OFPActionCopyField(n_bits=bits, oxm_ids=[src, dst])

        answer = [
            copy("eth_src", "eth_dst", 48),
            p.OFPActionSetField(eth_src=mac),
            p.OFPActionSetField(arp_op=2),
            copy("arp_sha", "arp_tha", 48),
            copy("arp_spa", "arp_tpa", 32),
            p.OFPActionSetField(arp_sha=mac),
            p.OFPActionSetField(arp_spa=str(vip)),
            p.OFPActionOutput(self.ofp.OFPP_IN_PORT),
        ]
        self._flow(PRIO_ARP, p.OFPMatch(eth_type=ETH_ARP, arp_op=1, arp_tpa=str(vip)), self._apply(answer))
        self._flow(PRIO_ARP, p.OFPMatch(eth_type=ETH_ARP, arp_op=2, arp_tpa=str(vip)),
                   self._apply([self._to_controller()]))
        # ICMP to the VIP: the port-unreachable that fails a UDP check.
        self._flow(PRIO_CHECK, p.OFPMatch(eth_type=ETH_IP, ip_proto=ICMP, ipv4_dst=str(vip)),
                   self._apply([self._to_controller()]))

    def check_replies(self, service: Service, backend: Backend) -> None:
        """A backend's answers to health checks go to the controller; the rest of what it sends
        from the service's port passes conntrack, which knows a balanced connection's replies."""
        p, proto = self.parser, service.protocol
        match = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[proto], ipv4_src=str(backend.ip),
                           ipv4_dst=str(service.vip), **{f"{proto}_dst": (CHECK_PORT_BASE, CHECK_PORT_BASE)})
        self._flow(PRIO_CHECK, match, self._apply([self._to_controller()]))
        sent = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[proto], ipv4_src=str(backend.ip),
                          **{f"{proto}_src": backend.port})
        self._flow(PRIO_SERVICE, sent, self._apply([self._track(REPLY_TABLE)]))

    def service_entry(self, service: Service, service_index: int) -> None:
        """Packets to VIP:port pass conntrack; the new connections among them go to the select
        group, or to the controller for round robin. A connection already committed (its mark
        set: a retransmitted first packet, or a UDP request before any reply) is not new here.

        A TCP connection begins only with a SYN. Open vSwitch's conntrack would also take up a
        connection in the middle (any segment it holds no entry for is "new"): then the later
        segments of a connection whose backend died, once its entry is flushed, would be committed
        to another backend, which resets them, and the entry left behind would hold the client's
        port. Like Linux IPVS, the switch drops them; the client's own timeout ends that
        connection."""
        p = self.parser
        self._flow(PRIO_SERVICE, self._service_match(service), self._apply([self._track(CLIENT_TABLE)]))
        action = p.OFPActionGroup(ids.group_id(service_index)) if service.in_switch else self._to_controller()
        first = {"tcp_flags": (TCP_SYN, TCP_SYN | TCP_ACK)} if service.protocol == "tcp" else {}
        new = self._service_match(service, ct_state=(CT_TRACKED | CT_NEW, CT_TRACKED | CT_NEW), ct_mark=0, **first)
        self._flow(PRIO_NEW, new, self._apply([action]), table=CLIENT_TABLE)

    # --- backends and the pool ------------------------------------------------------------

    def backend(self, service: Service, key: BackendKey, mac: str, port: int) -> None:
        """What a connection to one located backend does: committed with NAT to it (table 2),
        then every packet to its MAC and port (table 4), every reply as from the VIP (table 5).
        Cookies per backend: the switch sums each backend's packets and bytes."""
        p, b = self.parser, service.backends[key.backend]
        nat = PaddedNat(flags=NX_NAT_F_DST, range_ipv4_min=str(b.ip), range_ipv4_max=str(b.ip),
                        range_proto_min=b.port, range_proto_max=b.port)
        commit = p.NXActionCT(flags=NX_CT_F_COMMIT, zone_src="", zone_ofs_nbits=ids.CT_ZONE,
                              recirc_table=CLIENT_TABLE, alg=0,
                              actions=[nat, p.OFPActionSetField(ct_mark=key.mark)])
        match = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[service.protocol], reg1=key.reg)
        self._flow(PRIO_SERVICE, match, self._apply([commit]), table=BACKEND_TABLE)
        self._flow(PRIO_CONN, p.OFPMatch(ct_state=(CT_TRACKED, CT_TRACKED), ct_mark=key.mark),
                   self._apply([p.OFPActionSetField(eth_dst=mac), p.OFPActionOutput(port)]),
                   table=CLIENT_TABLE, cookie=key.conn_cookie())
        reply = {"ct_state": (CT_TRACKED | CT_REPLY, CT_TRACKED | CT_REPLY | CT_INVALID), "ct_mark": key.mark}
        as_vip = [p.OFPActionSetField(eth_src=vip_mac(service.vip)), p.NXActionResubmitTable(table_id=L2_DST_TABLE)]
        self._flow(PRIO_CONN, p.OFPMatch(**reply), self._apply(as_vip), table=REPLY_TABLE, cookie=key.reply_cookie())
        if service.checks_on_reset:
            reset = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER["tcp"], tcp_flags=(TCP_RST, TCP_RST), **reply)
            self._flow(PRIO_CONN + 1, reset, self._apply([*as_vip, p.NXActionResubmitTable(table_id=RESET_TABLE)]),
                       table=REPLY_TABLE, cookie=key.reply_cookie())

    def reset_copies(self, key: BackendKey) -> None:
        """A backend's resets to clients, copied to the controller through a meter of its own:
        a refused connection is the first sign of a dead process, and the controller checks that
        backend at once. The meter is made afresh (a switch keeps meters across controllers, and
        deleting one deletes the flows that use it, so this comes before the flow)."""
        p, ofp = self.parser, self.ofp
        self.dp.send_msg(p.OFPMeterMod(self.dp, command=ofp.OFPMC_DELETE, meter_id=key.meter))
        self.dp.send_msg(p.OFPMeterMod(self.dp, command=ofp.OFPMC_ADD, flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST,
                                       meter_id=key.meter,
                                       bands=[p.OFPMeterBandDrop(rate=RESET_COPIES_PER_S, burst_size=2)]))
        self._flow(PRIO_CONN, p.OFPMatch(ct_mark=key.mark),
                   self._apply([p.OFPActionMeter(key.meter), self._to_controller(max_len=128)]),
                   table=RESET_TABLE, cookie=key.reset_cookie())

    def group(self, service: Service, service_index: int, pool: list[Member], buckets: list[int]) -> None:
        """(Re)write the service's select group: one bucket per unit of weight, liveness on the port.

        `buckets` are the bucket ids from pool.bucket_ids; OVS's `hash` method over the
        connection's fields (or the source address alone) picks among the live ones.
        """
        p, ofp = self.parser, self.ofp
        by_index = {m.index: m for m in pool}
        out = []
        for bid in buckets:
            member = by_index[ids.backend_of_bucket(bid)]
            # Weight 1, never 0: OVS treats a weight-0 select bucket as dead.
            props = [p.OFPGroupBucketPropWeight(type_=ofp.OFPGBPT_WEIGHT, weight=1),
                     p.OFPGroupBucketPropWatch(type_=ofp.OFPGBPT_WATCH_PORT, watch=member.port)]
            out.append(p.OFPBucket(bucket_id=bid, actions=self._to_backend(BackendKey(service_index, member.index)),
                                   properties=props))
        fields = ["ipv4_src"] if service.algorithm == "source_hash" else [
            "ip_proto", "ipv4_src", "ipv4_dst", f"{service.protocol}_src", f"{service.protocol}_dst"]
        self.dp.send_msg(p.OFPGroupMod(self.dp, command=OFPGC_ADD_OR_MOD, type_=ofp.OFPGT_SELECT,
                                       group_id=ids.group_id(service_index), buckets=out,
                                       properties=[SelectionMethod.hash_of(fields)]))

    # --- packets and statistics -----------------------------------------------------------

    def send_packet(self, data: bytes, out_port: int | None = None, actions: list | None = None) -> None:
        """Packet-out from the controller: to a port, or through `actions` (default: flood)."""
        p, ofp = self.parser, self.ofp
        if actions is None:
            actions = [p.OFPActionOutput(ofp.OFPP_FLOOD if out_port is None else out_port)]
        self.dp.send_msg(p.OFPPacketOut(self.dp, buffer_id=ofp.OFP_NO_BUFFER,
                                        match=p.OFPMatch(in_port=ofp.OFPP_CONTROLLER), actions=actions, data=data))

    def first_packet_to(self, key: BackendKey, data: bytes) -> None:
        """A round-robin connection's first packet, sent the way a bucket would send it: committed
        to `key`'s backend, so the rest of the connection never comes to the controller."""
        self.send_packet(data, actions=self._to_backend(key))

    def request_group_desc(self) -> None:
        self.dp.send_msg(self.parser.OFPGroupDescStatsRequest(self.dp, 0, self.ofp.OFPG_ALL))

    def request_connection_stats(self, cookie: int) -> int:
        """Packets and bytes of one backend's flows with this cookie, summed by the switch; the
        request's xid."""
        p, ofp = self.parser, self.ofp
        request = p.OFPAggregateStatsRequest(self.dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, cookie,
                                             ids.ALL_BITS, p.OFPMatch())
        self.dp.set_xid(request)
        self.dp.send_msg(request)
        return request.xid

    # --- helpers --------------------------------------------------------------------------

    def _service_match(self, service: Service, **more: object):
        proto = service.protocol
        return self.parser.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[proto], ipv4_dst=str(service.vip),
                                    **{f"{proto}_dst": service.port}, **more)

    def _track(self, table: int):
        """Through conntrack in halab's zone, with the connection's NAT applied (or undone, for a
        reply: conntrack may also have moved the client's port, when its 5-tuple to the backend
        was taken), then on to `table`."""
        p = self.parser
        return p.NXActionCT(flags=0, zone_src="", zone_ofs_nbits=ids.CT_ZONE, recirc_table=table, alg=0,
                            actions=[p.NXActionNAT(flags=0)])

    def _to_backend(self, key: BackendKey) -> list:
        return [self.parser.OFPActionSetField(reg1=key.reg), self.parser.NXActionResubmitTable(table_id=BACKEND_TABLE)]

    def _to_controller(self, max_len: int | None = None):
        return self.parser.OFPActionOutput(self.ofp.OFPP_CONTROLLER,
                                           self.ofp.OFPCML_NO_BUFFER if max_len is None else max_len)

    def _apply(self, actions: list) -> list:
        return [self.parser.OFPInstructionActions(self.ofp.OFPIT_APPLY_ACTIONS, actions)]

    def _flow(self, priority: int, match, instructions: list, cookie: int = LB_STATIC_COOKIE, table: int = LB_TABLE
              ) -> None:
        p = self.parser
        self.dp.send_msg(p.OFPFlowMod(self.dp, cookie=cookie, table_id=table, priority=priority, match=match,
                                      instructions=instructions))


class PaddedNat(ofproto_v1_5_parser.NXActionNAT):
    """os-ken's `nat` action, padded to the 8-byte multiple that its header claims.

    os-ken counts the padding in the action's length but does not write it, so with a port range
    (28 bytes, said to be 32) the action after it inside `ct(...)` starts 4 bytes early and Open
    vSwitch refuses the flow (OFPBAC_BAD_LEN)."""

    def serialize_body(self) -> bytearray:
        body = super().serialize_body()
        return body + bytes(-(NX_ACTION_HEADER_LEN + len(body)) % 8)


#: type, length, experimenter id and subtype: what precedes the body of every Nicira action.
NX_ACTION_HEADER_LEN = 10


#: Open vSwitch's "add, or modify if it exists" group command: a restarted controller rewrites
#: its groups without first asking whether they are there.
OFPGC_ADD_OR_MOD = 0x8000
#: Netronome's experimenter property that OVS uses to carry selection_method (OpenFlow 1.5).
NTR_VENDOR_ID, NTRT_SELECTION_METHOD = 0x0000154D, 1


class SelectionMethod:
    """The group property `selection_method=hash,fields(...)`, which os-ken has no class for.

    Layout (OVS's ntr_group_prop_selection_method): the experimenter header, 4 bytes pad, the
    method name in 16 bytes, a 64-bit parameter (the hash basis), then each field as an OXM entry
    whose value is its mask (all ones: the whole field); the length is exact, padded to 8 bytes.
    os-ken's generic experimenter property counts in 4-byte words and cannot read this back, so
    this class also parses it (registered below for group descriptions from the switch).
    """

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    @classmethod
    def hash_of(cls, fields: list[str]) -> SelectionMethod:
        from os_ken.ofproto import ofproto_v1_5 as ofp

        entries = b""
        for name in fields:
            buf = bytearray()
            ofp.oxm_serialize_header(ofp.oxm_from_user_header(name), buf, 0)
            entries += bytes(buf) + b"\xff" * buf[3]  # the header's last byte is the value length
        body = bytes(4) + b"hash".ljust(16, b"\0") + bytes(8) + entries
        length = 12 + len(body)
        header = struct.pack("!HHII", ofp.OFPGPT_EXPERIMENTER, length, NTR_VENDOR_ID, NTRT_SELECTION_METHOD)
        return cls(header + body + bytes(-length % 8))

    @classmethod
    def parser(cls, buf: bytes) -> SelectionMethod:
        (length,) = struct.unpack_from("!H", buf, 2)
        return cls(bytes(buf[:length]))

    def serialize(self) -> bytearray:
        return bytearray(self.raw)


def _register_selection_method() -> None:
    from os_ken.ofproto import ofproto_v1_5 as ofp
    from os_ken.ofproto import ofproto_v1_5_parser as parser

    parser.OFPGroupProp._TYPES[ofp.OFPGPT_EXPERIMENTER] = SelectionMethod


_register_selection_method()
