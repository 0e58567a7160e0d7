"""Health-check logic: fall/rise counting and the packet-out TCP/HTTP/UDP checks, with scapy as the oracle."""

from ipaddress import IPv4Address

from os_ken.lib.packet import packet
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from controller.health import Check, Endpoints
from controller.pool import HealthState

ENDS = Endpoints("02:48:0a:00:00:64", IPv4Address("10.0.0.100"), "02:00:00:00:00:01", IPv4Address("10.0.0.1"), 80)


def reply(check: Check, *layers) -> packet.Packet:
    frame = Ether(src=ENDS.backend_mac, dst=ENDS.vip_mac) / IP(src="10.0.0.1", dst="10.0.0.100")
    for layer in layers:
        frame = frame / layer
    return packet.Packet(bytes(frame))


def test_fall_and_rise_count_consecutive_results():
    h = HealthState(fall=3, rise=2)
    assert [h.record(False) for _ in range(3)] == [False, False, True] and not h.up
    assert h.record(True) is False and h.record(False) is False  # a good one alone does not count
    assert [h.record(True), h.record(True)] == [False, True] and h.up


def test_a_tcp_check_is_a_syn_with_valid_checksums_and_passes_on_syn_ack():
    c = Check("tcp", ENDS, deadline=1.0)
    syn = Ether(c.start())
    assert syn[TCP].flags == "S" and syn[TCP].dport == 80 and syn[TCP].sport >= 0xF000
    assert syn[IP].src == "10.0.0.100" and syn[Ether].src == ENDS.vip_mac
    rebuilt = Ether(bytes(syn))
    del rebuilt[TCP].chksum, rebuilt[IP].chksum  # scapy recomputes them: they must agree
    assert (Ether(bytes(rebuilt))[TCP].chksum, Ether(bytes(rebuilt))[IP].chksum) == (syn[TCP].chksum, syn[IP].chksum)
    verdict, frame = c.on_reply(reply(c, TCP(sport=80, dport=c.sport, flags="SA", seq=5, ack=c.seq + 1)))
    assert verdict is True and Ether(frame)[TCP].flags == "R"


def test_a_tcp_check_fails_on_reset():
    c = Check("tcp", ENDS, deadline=1.0)
    c.start()
    assert c.on_reply(reply(c, TCP(sport=80, dport=c.sport, flags="RA")))[0] is False


def test_an_http_check_sends_get_and_judges_the_status_line():
    for status, ok in ((b"HTTP/1.0 200 OK\r\n\r\n", True), (b"HTTP/1.1 503 Busy\r\n\r\n", False)):
        c = Check("http", ENDS, deadline=1.0, path="/health")
        c.start()
        verdict, frame = c.on_reply(reply(c, TCP(sport=80, dport=c.sport, flags="SA", seq=9, ack=c.seq + 1)))
        assert verdict is None and bytes(Ether(frame)[TCP].payload).startswith(b"GET /health HTTP/1.0")
        verdict, frame = c.on_reply(reply(c, TCP(sport=80, dport=c.sport, flags="PA", seq=10), status))
        assert verdict is ok and Ether(frame)[TCP].flags == "R"


def test_a_udp_check_passes_on_an_answer_and_fails_on_port_unreachable():
    c = Check("udp", ENDS, deadline=1.0, send=b"ping\n")
    sent = Ether(c.start())
    assert sent[Raw].load == b"ping\n" and sent[UDP].len == 8 + 5
    assert c.on_reply(reply(c, UDP(sport=80, dport=c.sport), b"pong"))[0] is True
    quoted = IPerror(src="10.0.0.100", dst="10.0.0.1") / UDPerror(sport=c.sport, dport=80)
    assert c.on_reply(reply(c, ICMP(type=3, code=3), quoted))[0] is False


def test_a_check_sent_because_of_a_reset_says_so_in_its_verdict():
    assert Check("tcp", ENDS, deadline=1.0).verdict(False) == "check failed"
    assert Check("tcp", ENDS, deadline=1.0).verdict(True) == "check passed"
    late = Check("tcp", ENDS, deadline=1.0, after_reset=True).verdict(False)
    assert late.startswith("check failed") and "reset a client's connection" in late
