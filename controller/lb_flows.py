"""Every OpenFlow 1.5 message the load balancer sends, built here and nowhere else.

The pipeline on each switch:

    table 0 (load balancer)                                  tables 1, 3 (the L2 learning switch)
      300  ARP request for a VIP     -> answered in the switch
      300  ARP reply to a VIP        -> controller (backend MAC and port)
      250  health-check replies      -> controller
      200  pinned connection         -> rewrite to its backend, output       (learned or installed)
      200  pinned reply              -> source rewritten to VIP:port, output to the client's port
      100  client -> VIP:port        -> select group (hash)  | controller (round robin)
        0  anything else             -> goto 1                               -> learn, forward, flood
    select group bucket              -> reg1 = backend, resubmit to table 2
    table 2 (backends)  reg1 = backend -> learn both pinned flows, rewrite to the backend, output

The pinned flows of a connection are what keep "one 5-tuple, one backend" true when the pool
changes (a drain, a failed check): the switch `learn`s them from the first packet, so neither
that packet nor the rest of a hashed connection passes through the controller. Replies are
rewritten per connection, not per backend, so a client may still talk to a backend directly. The learn sits in table 2,
not in the bucket, because Open vSwitch 3.1 silently skips a `learn` inside a select bucket
(ofproto/trace shows the bucket without it; a learn in a flow reached by resubmit works).
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
#: A TCP connection flow learned by the switch lingers this long after a FIN or RST.
FIN_IDLE_S = 2
#: At most this many pinned connections per backend and direction (see LearnWithLimit).
PINNED_PER_BACKEND = 65_536
NXAST_LEARN2 = 45

PRIO_ARP, PRIO_CHECK, PRIO_SYN, PRIO_CONN, PRIO_SERVICE = 300, 250, 210, 200, 100
#: TCP flags: SYN set, ACK clear (a connection's first packet, or its retransmission).
TCP_SYN, TCP_SYN_ACK_MASK = 0x002, 0x012
ETH_IP, ETH_ARP = 0x0800, 0x0806
PROTO_NUMBER = {"tcp": 6, "udp": 17}
ICMP = 1


def vip_mac(vip: IPv4Address) -> str:
    """The MAC the switch answers for a VIP: locally administered, 02:48 ("H") + the address."""
    return "02:48:" + ":".join(f"{b:02x}" for b in vip.packed)


def mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


class LbMessages:
    """Builds and sends the load balancer's OpenFlow messages to one datapath."""

    def __init__(self, dp) -> None:
        self.dp = dp
        self.ofp = dp.ofproto
        self.parser = dp.ofproto_parser

    # --- static flows ---------------------------------------------------------------------

    def table_miss(self) -> None:
        p = self.parser
        self._flow(0, p.OFPMatch(), [p.OFPInstructionGotoTable(L2_TABLE)])

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
        p, proto = self.parser, service.protocol
        match = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[proto], ipv4_src=str(backend.ip),
                           ipv4_dst=str(service.vip), **{f"{proto}_dst": (CHECK_PORT_BASE, CHECK_PORT_BASE)})
        self._flow(PRIO_CHECK, match, self._apply([self._to_controller()]))

    def service_entry(self, service: Service, service_index: int) -> None:
        """New connections to VIP:port go to the select group, or to the controller for round robin.

        A TCP SYN goes there even when a pin matches it, so that a new connection always learns
        both of its pins afresh: a port can carry a pin that lost its twin (a dead connection's
        stray packet pinned it to a backend that reset it; the reset ended the reply pin 2 s
        later, while the client-side pin lived on its idle timeout), and a SYN that followed such
        a pin got a SYN-ACK that left untranslated, at every reuse of the port."""
        p = self.parser
        action = p.OFPActionGroup(ids.group_id(service_index)) if service.in_switch else self._to_controller()
        self._flow(PRIO_SERVICE, self._service_match(service), self._apply([action]))
        if service.protocol == "tcp":
            self._flow(PRIO_SYN, self._service_match(service, tcp_flags=(TCP_SYN, TCP_SYN_ACK_MASK)),
                       self._apply([action]))

    # --- the pool -------------------------------------------------------------------------

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
            actions = [p.OFPActionSetField(reg1=BackendKey(service_index, member.index).reg),
                       p.NXActionResubmitTable(table_id=BACKEND_TABLE)]
            # Weight 1, never 0: OVS treats a weight-0 select bucket as dead.
            props = [p.OFPGroupBucketPropWeight(type_=ofp.OFPGBPT_WEIGHT, weight=1),
                     p.OFPGroupBucketPropWatch(type_=ofp.OFPGBPT_WATCH_PORT, watch=member.port)]
            out.append(p.OFPBucket(bucket_id=bid, actions=actions, properties=props))
        fields = ["ipv4_src"] if service.algorithm == "source_hash" else [
            "ip_proto", "ipv4_src", "ipv4_dst", f"{service.protocol}_src", f"{service.protocol}_dst"]
        self.dp.send_msg(p.OFPGroupMod(self.dp, command=OFPGC_ADD_OR_MOD, type_=ofp.OFPGT_SELECT,
                                       group_id=ids.group_id(service_index), buckets=out,
                                       properties=[SelectionMethod.hash_of(fields)]))

    def backend(self, service: Service, service_index: int, member: Member) -> None:
        """Table 2: what a bucket that chose `member` does (learn the pin, rewrite, output)."""
        p = self.parser
        match = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[service.protocol],
                           reg1=BackendKey(service_index, member.index).reg)
        # The learned flow's output port is read from reg0 when it is learned, so set it first.
        actions = [p.OFPActionSetField(reg0=member.port), *self._learn(service, service_index, member),
                   *self._to_backend(service, member)]
        self._flow(PRIO_SERVICE, match, self._apply(actions), table=BACKEND_TABLE)

    def pin(self, service: Service, service_index: int, member: Member, client: IPv4Address,
            client_port: int, client_switch_port: int) -> None:
        """Install a connection's two flows (round robin): the same flows the switch learns otherwise."""
        p, proto = self.parser, service.protocol
        key = BackendKey(service_index, member.index)
        match = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[proto], ipv4_src=str(client),
                           ipv4_dst=str(service.vip), **{f"{proto}_src": client_port, f"{proto}_dst": service.port})
        self._flow(PRIO_CONN, match, self._apply([*self._fin_timeout(service), *self._to_backend(service, member)]),
                   cookie=key.conn_cookie(), idle=service.connection_idle)
        reply = p.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[proto], ipv4_src=str(member.backend.ip),
                           ipv4_dst=str(client), **{f"{proto}_src": member.backend.port, f"{proto}_dst": client_port})
        self._flow(PRIO_CONN, reply, self._apply([*self._fin_timeout(service), *self._as_vip(service),
                                                  p.OFPActionOutput(client_switch_port)]),
                   cookie=key.reply_cookie(), idle=service.connection_idle)

    def forget_connections(self, key: BackendKey) -> None:
        """Delete the pinned flows of one backend (it died: let its clients hash again)."""
        p, ofp = self.parser, self.ofp
        for cookie in (key.conn_cookie(), key.reply_cookie()):
            self.dp.send_msg(p.OFPFlowMod(self.dp, cookie=cookie, cookie_mask=ids.ALL_BITS, table_id=LB_TABLE,
                                          command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                          match=p.OFPMatch()))

    # --- packets and statistics -----------------------------------------------------------

    def send_packet(self, data: bytes, out_port: int | None = None, actions: list | None = None) -> None:
        """Packet-out from the controller: to a port, or through `actions` (default: flood)."""
        p, ofp = self.parser, self.ofp
        if actions is None:
            actions = [p.OFPActionOutput(ofp.OFPP_FLOOD if out_port is None else out_port)]
        self.dp.send_msg(p.OFPPacketOut(self.dp, buffer_id=ofp.OFP_NO_BUFFER,
                                        match=p.OFPMatch(in_port=ofp.OFPP_CONTROLLER), actions=actions, data=data))

    def forward_first_packet(self, service: Service, member: Member, data: bytes) -> None:
        self.send_packet(data, actions=self._to_backend(service, member))

    def request_group_desc(self) -> None:
        self.dp.send_msg(self.parser.OFPGroupDescStatsRequest(self.dp, 0, self.ofp.OFPG_ALL))

    def request_connection_stats(self, cookie: int) -> int:
        """Flows, packets and bytes of the pinned flows with this cookie, summed by the switch
        (a few bytes whatever the number of connections); the request's xid."""
        p, ofp = self.parser, self.ofp
        request = p.OFPAggregateStatsRequest(self.dp, 0, LB_TABLE, ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, ids.ALL_BITS,
                                             p.OFPMatch())
        self.dp.set_xid(request)
        self.dp.send_msg(request)
        return request.xid

    # --- helpers --------------------------------------------------------------------------

    def _service_match(self, service: Service, **more: object):
        proto = service.protocol
        return self.parser.OFPMatch(eth_type=ETH_IP, ip_proto=PROTO_NUMBER[proto], ipv4_dst=str(service.vip),
                                    **{f"{proto}_dst": service.port}, **more)

    def _to_backend(self, service: Service, member: Member) -> list:
        p = self.parser
        return [p.OFPActionSetField(eth_dst=member.mac), p.OFPActionSetField(ipv4_dst=str(member.backend.ip)),
                p.OFPActionSetField(**{f"{service.protocol}_dst": member.backend.port}),
                p.OFPActionOutput(member.port)]

    def _as_vip(self, service: Service) -> list:
        p = self.parser
        return [p.OFPActionSetField(eth_src=vip_mac(service.vip)), p.OFPActionSetField(ipv4_src=str(service.vip)),
                p.OFPActionSetField(**{f"{service.protocol}_src": service.port})]

    def _learn(self, service: Service, service_index: int, member: Member) -> list:
        """The two `learn` actions that pin this connection to `member` in the switch itself.

        Client side: the 5-tuple to the VIP, rewritten to the backend, out of reg0 (its port).
        Reply side: the backend's answers to this client and port, rewritten to come from the
        VIP, out of the port the client's packet came in on.
        """
        p, proto = self.parser, service.protocol
        m, ld, out = p.NXFlowSpecMatch, p.NXFlowSpecLoad, p.NXFlowSpecOutput
        key = BackendKey(service_index, member.index)
        ip_proto = [m(src=ETH_IP, dst=("eth_type", 0), n_bits=16),
                    m(src=PROTO_NUMBER[proto], dst=("ip_proto", 0), n_bits=8)]
        client_side = [
            *ip_proto,
            m(src=("ipv4_src", 0), dst=("ipv4_src", 0), n_bits=32),
            m(src=("ipv4_dst", 0), dst=("ipv4_dst", 0), n_bits=32),
            m(src=(f"{proto}_src", 0), dst=(f"{proto}_src", 0), n_bits=16),
            m(src=(f"{proto}_dst", 0), dst=(f"{proto}_dst", 0), n_bits=16),
            ld(src=mac_int(member.mac), dst=("eth_dst", 0), n_bits=48),
            ld(src=int(member.backend.ip), dst=("ipv4_dst", 0), n_bits=32),
            ld(src=member.backend.port, dst=(f"{proto}_dst", 0), n_bits=16),
            out(src=("reg0", 0), dst="", n_bits=32),
        ]
        reply_side = [
            *ip_proto,
            m(src=int(member.backend.ip), dst=("ipv4_src", 0), n_bits=32),
            m(src=("ipv4_src", 0), dst=("ipv4_dst", 0), n_bits=32),
            m(src=member.backend.port, dst=(f"{proto}_src", 0), n_bits=16),
            m(src=(f"{proto}_src", 0), dst=(f"{proto}_dst", 0), n_bits=16),
            ld(src=mac_int(vip_mac(service.vip)), dst=("eth_src", 0), n_bits=48),
            ld(src=int(service.vip), dst=("ipv4_src", 0), n_bits=32),
            ld(src=service.port, dst=(f"{proto}_src", 0), n_bits=16),
            out(src=("in_port", 0), dst="", n_bits=32),
        ]
        fin = FIN_IDLE_S if proto == "tcp" else 0
        return [LearnWithLimit(table_id=LB_TABLE, priority=PRIO_CONN, idle_timeout=service.connection_idle,
                               fin_idle_timeout=fin, cookie=cookie, specs=specs)
                for cookie, specs in ((key.conn_cookie(), client_side), (key.reply_cookie(), reply_side))]

    def _fin_timeout(self, service: Service) -> list:
        """A TCP connection's flows go FIN_IDLE_S after its FIN or RST, as learned ones do."""
        return [self.parser.NXActionFinTimeout(fin_idle_timeout=FIN_IDLE_S, fin_hard_timeout=0)] \
            if service.protocol == "tcp" else []

    def _to_controller(self):
        return self.parser.OFPActionOutput(self.ofp.OFPP_CONTROLLER, self.ofp.OFPCML_NO_BUFFER)

    def _apply(self, actions: list) -> list:
        return [self.parser.OFPInstructionActions(self.ofp.OFPIT_APPLY_ACTIONS, actions)]

    def _flow(self, priority: int, match, instructions: list, cookie: int = LB_STATIC_COOKIE, idle: int = 0,
              table: int = LB_TABLE) -> None:
        p = self.parser
        self.dp.send_msg(p.OFPFlowMod(self.dp, cookie=cookie, table_id=table, priority=priority, match=match,
                                      instructions=instructions, idle_timeout=idle))


class LearnWithLimit(ofproto_v1_5_parser.NXActionLearn):
    """OVS's `learn` with a limit (NXAST_LEARN2), which os-ken has no class for.

    The limit caps the pinned connections of one backend (a SYN flood cannot grow the flow
    table without bound), and it changes how OVS revalidates: without one, a datapath flow
    whose learned pins are gone (a backend left the pool, or they expired) is kept and quietly
    retargeted, and a new connection that reuses its 5-tuple (a client port freed by a refused
    or reset connection) reaches the new backend with no pin learned, so its SYN-ACK leaves
    untranslated and the connection fails. With a limit, OVS drops such a datapath flow
    instead ("the translated actions depend on the result of learning"), and the next packet
    is translated afresh, learn included. Layout (OVS's nx_action_learn2): nx_action_learn's
    fields, then limit (32 bits), result_dst_ofs and padding (16 bits each), then the specs.
    """

    _subtype = NXAST_LEARN2

    def serialize_body(self) -> bytearray:
        body = super().serialize_body()
        fixed = struct.calcsize(self._fmt_str)
        return body[:fixed] + struct.pack("!IHH", PINNED_PER_BACKEND, 0, 0) + body[fixed:]


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
