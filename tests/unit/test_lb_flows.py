"""The load balancer's hand-made OpenFlow encodings, checked byte by byte (no switch needed)."""

from __future__ import annotations

import struct

from os_ken.ofproto import ofproto_v1_5 as ofp
from os_ken.ofproto import ofproto_v1_5_parser as parser

from controller import ids
from controller.lb_flows import NX_CT_F_COMMIT, NX_NAT_F_DST, PaddedNat, SelectionMethod


class Recorder:
    """A datapath that keeps what the balancer sends it."""

    ofproto, ofproto_parser = ofp, parser

    def __init__(self) -> None:
        self.sent: list = []

    def send_msg(self, msg) -> None:
        self.sent.append(msg)


def actions_in(buf: bytes) -> list[tuple[int, bytes]]:
    """(type, bytes) of each action in a list, walking the lengths the actions claim."""
    out, at = [], 0
    while at < len(buf):
        kind, length = struct.unpack_from("!HH", buf, at)
        assert length >= 8 and length % 8 == 0, (at, length)
        out.append((kind, buf[at:at + length]))
        at += length
    assert at == len(buf)
    return out


def test_nat_with_a_port_inside_ct_keeps_the_next_action_where_its_length_says():
    """os-ken's own `nat` claims 32 bytes and writes 28: the set_field after it inside ct(...)
    started 4 bytes early and Open vSwitch refused the flow (OFPBAC_BAD_LEN)."""
    nat = PaddedNat(flags=NX_NAT_F_DST, range_ipv4_min="10.0.0.1", range_ipv4_max="10.0.0.1",
                    range_proto_min=7000, range_proto_max=7000)
    mark = parser.OFPActionSetField(ct_mark=ids.BackendKey(0, 1).mark)
    ct = parser.NXActionCT(flags=NX_CT_F_COMMIT, zone_src="", zone_ofs_nbits=ids.CT_ZONE, recirc_table=4, alg=0,
                           actions=[nat, mark])
    buf = bytearray()
    ct.serialize(buf, 0)
    [(kind, whole)] = actions_in(bytes(buf))
    assert kind == ofp.OFPAT_EXPERIMENTER
    nested = actions_in(whole[24:])  # nx_action_conntrack is 24 bytes before its actions
    assert [k for k, _ in nested] == [ofp.OFPAT_EXPERIMENTER, ofp.OFPAT_SET_FIELD]
    nat_bytes = nested[0][1]
    assert nat_bytes[16:20] == bytes([10, 0, 0, 1]) and struct.unpack_from("!HH", nat_bytes, 24) == (7000, 7000)
    assert nested[1][1][-8:-4] == struct.pack("!I", ids.BackendKey(0, 1).mark)  # the mark, not shifted


def test_a_nat_without_a_port_needs_no_padding():
    nat = PaddedNat(flags=NX_NAT_F_DST, range_ipv4_min="10.0.0.1", range_ipv4_max="10.0.0.1")
    buf = bytearray()
    nat.serialize(buf, 0)
    assert len(buf) == 24 == struct.unpack_from("!H", buf, 2)[0]


def test_the_selection_method_property_reads_back_as_written():
    prop = SelectionMethod.hash_of(["ip_proto", "ipv4_src", "tcp_src"])
    (length,) = struct.unpack_from("!H", prop.raw, 2)
    assert len(prop.raw) % 8 == 0 and length <= len(prop.raw) < length + 8
    assert prop.raw[16:20] == b"hash"
    assert SelectionMethod.parser(prop.raw + b"trailing").raw == prop.raw[:length]


def test_a_first_packet_is_read_as_the_packet_parser_reads_it():
    """The round-robin path reads five header fields itself; scapy builds the frames."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    from controller.load_balancer import _connection_of

    base = Ether(src="02:00:00:00:00:04", dst="02:48:0a:00:00:64")
    syn = bytes(base / IP(src="10.0.0.101", dst="10.0.0.100", options=b"\x01" * 4) / TCP(sport=40000, dport=7001))
    assert _connection_of(syn) == (0x0A000065, 0x0A000064, 7001, 6, 40000)  # an IP option moves the ports
    datagram = bytes(base / IP(src="10.0.0.102", dst="10.0.0.100") / UDP(sport=5353, dport=53))
    assert _connection_of(datagram) == (0x0A000066, 0x0A000064, 53, 17, 5353)
    assert _connection_of(bytes(base / IP(src="10.0.0.1", dst="10.0.0.2") / b"x")) is None  # too short
    assert _connection_of(syn[:12] + b"\x86\xdd" + syn[14:]) is None  # not IPv4
    assert _connection_of(syn[:30]) is None


def test_the_balancer_overrides_only_the_switch_methods_it_means_to():
    """The balancer extends the L2 switch; a helper that happens to share a name with one of the
    switch's replaces it. One did (`_forget`): the switch's idle-source handler then raised, and
    os-ken's native hub ends an app's event loop on any exception, silently: after 30 s every
    health check timed out and the pool emptied."""
    from controller.l2_switch import L2Switch
    from controller.load_balancer import LoadBalancer

    overridden = {name for name in vars(LoadBalancer) if name in vars(L2Switch) and not name.startswith("__")}
    assert overridden == {"packet_in_handler", "port_status_handler", "switch_features_handler", "learnable",
                          "OFP_VERSIONS", "TABLE", "DST_TABLE"}


def test_only_a_syn_begins_a_balanced_tcp_connection():
    """Conntrack takes up a TCP connection it has no entry for from any segment. The segments a
    client still sends on a connection whose backend died (its entry flushed) were committed to
    another backend, which reset them, and the entry left behind held the client's port: a new
    connection from that port failed (1 run in 15 of a lab test). Only a SYN without ACK may be
    new; for UDP every first datagram is."""
    from ipaddress import IPv4Address

    from controller.lb_config import Backend, HealthCheck, Service
    from controller.lb_flows import CLIENT_TABLE, PRIO_NEW, TCP_ACK, TCP_SYN, LbMessages

    def new_connection_match(protocol: str) -> dict:
        dp = Recorder()
        service = Service("web", IPv4Address("10.0.0.100"), 7000, protocol, "consistent",
                          (Backend(IPv4Address("10.0.0.1"), 7000),), HealthCheck(kind=protocol))
        LbMessages(dp).service_entry(service, 0)
        [flow] = [m for m in dp.sent if m.table_id == CLIENT_TABLE and m.priority == PRIO_NEW]
        return dict(flow.match.items())

    tcp, udp = new_connection_match("tcp"), new_connection_match("udp")
    assert tcp["tcp_flags"] == (TCP_SYN, TCP_SYN | TCP_ACK) and tcp["ct_mark"] == 0
    assert "tcp_flags" not in udp and udp["udp_dst"] == 7000


def test_a_backends_resets_reach_the_controller_through_its_own_meter_and_clients_get_them_too():
    """The copy of a reset must not cost the client its reset (the meter drops only the copy's
    branch: resubmitted after the reply went out), and a backend that resets a lot cannot flood
    the controller or starve another backend's copies."""
    from ipaddress import IPv4Address

    from controller.lb_config import Backend, HealthCheck, Service
    from controller.lb_flows import (
        L2_DST_TABLE,
        PRIO_CONN,
        REPLY_TABLE,
        RESET_COPIES_PER_S,
        RESET_TABLE,
        TCP_RST,
        LbMessages,
    )

    def flows(protocol: str, check: str) -> tuple[Recorder, list]:
        dp = Recorder()
        service = Service("web", IPv4Address("10.0.0.100"), 7000, protocol, "consistent",
                          (Backend(IPv4Address("10.0.0.1"), 7000),), HealthCheck(kind=check))
        msgs, k = LbMessages(dp), ids.BackendKey(0, 0)
        msgs.backend(service, k, "02:00:00:00:00:01", 1)
        msgs.reset_copies(k)
        return dp, [m for m in dp.sent if getattr(m, "table_id", None) == REPLY_TABLE and m.priority == PRIO_CONN + 1]

    dp, [reset] = flows("tcp", "tcp")
    k = ids.BackendKey(0, 0)
    assert dict(reset.match.items())["tcp_flags"] == (TCP_RST, TCP_RST)
    assert dict(reset.match.items())["ct_mark"] == k.mark
    out = reset.instructions[0].actions
    assert [a.table_id for a in out if isinstance(a, parser.NXActionResubmitTable)] == [L2_DST_TABLE, RESET_TABLE]
    [meter] = [m for m in dp.sent if isinstance(m, parser.OFPMeterMod) and m.command == ofp.OFPMC_ADD]
    assert meter.meter_id == k.meter and meter.bands[0].rate == RESET_COPIES_PER_S
    [copy] = [m for m in dp.sent if getattr(m, "table_id", None) == RESET_TABLE]
    assert ids.BackendKey.of_reset_cookie(copy.cookie) == k
    assert isinstance(copy.instructions[0].actions[0], parser.OFPActionMeter)
    assert ids.BackendKey.of_reset_cookie(k.reply_cookie()) is None
    assert flows("udp", "udp")[1] == [] and flows("tcp", "none")[1] == []
