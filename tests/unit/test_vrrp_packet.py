"""The VRRPv3 codec, checked against scapy's VRRPv3 layer in both directions and fuzzed."""

import random
from ipaddress import ip_address

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRPv3

from ha.vrrp.packet import Advert, PacketError, checksum, decode, encode

SRC4, DST4 = ip_address("10.0.0.1"), ip_address("224.0.0.18")
SRC6, DST6 = ip_address("fe80::1"), ip_address("ff02::12")
V4 = Advert(51, 200, 100, (ip_address("10.0.0.100"), ip_address("10.0.0.101")))
V6 = Advert(7, 100, 5, (ip_address("fe80::100"), ip_address("2001:db8::100")))


def _scapy4(**fields) -> bytes:
    return bytes(IP(src=str(SRC4), dst=str(DST4), ttl=255) / VRRPv3(**fields))[20:]


def test_ipv4_with_pseudo_header_matches_scapy_byte_for_byte():
    ours = encode(V4, SRC4, DST4, pseudo_header=True)
    assert ours == _scapy4(vrid=51, priority=200, adv=100, addrlist=["10.0.0.100", "10.0.0.101"])


def test_ipv6_matches_scapy_byte_for_byte():
    theirs = bytes(IPv6(src=str(SRC6), dst=str(DST6), hlim=255) /
                   VRRPv3(vrid=7, priority=100, adv=5, addrlist=["fe80::100", "2001:db8::100"]))[40:]
    assert encode(V6, SRC6, DST6) == theirs
    assert decode(theirs, SRC6, DST6) == V6


@pytest.mark.parametrize("pseudo", [True, False])
def test_round_trip_in_both_checksum_forms(pseudo):
    data = encode(V4, SRC4, DST4, pseudo_header=pseudo)
    assert decode(data, SRC4, DST4) == V4
    parsed = VRRPv3(data)
    assert (parsed.vrid, parsed.priority, parsed.adv, parsed.ipcount) == (51, 200, 100, 2)


def test_rfc_form_without_pseudo_header_is_accepted():
    theirs = bytearray(_scapy4(vrid=51, priority=200, adv=100, addrlist=["10.0.0.100", "10.0.0.101"]))
    theirs[6:8] = b"\0\0"
    theirs[6:8] = checksum(bytes(theirs), SRC4, DST4, pseudo_header=False).to_bytes(2, "big")
    assert decode(bytes(theirs), SRC4, DST4) == V4


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda b: b[:7], "truncated"),
    (lambda b: bytes([0x21]) + b[1:], "bad_version"),
    (lambda b: bytes([0x32]) + b[1:], "bad_type"),
    (lambda b: b[:3] + bytes([3]) + b[4:], "bad_length"),
    (lambda b: b + b"\0\0\0\0", "bad_length"),
    (lambda b: b[:6] + bytes([b[6] ^ 0xFF]) + b[7:], "bad_checksum"),
    (lambda b: b[:2] + bytes([b[2] ^ 1]) + b[3:], "bad_checksum"),
])
def test_malformed_packets_are_refused_with_a_reason(mutate, reason):
    with pytest.raises(PacketError) as err:
        decode(mutate(encode(V4, SRC4, DST4)), SRC4, DST4)
    assert err.value.reason == reason


def test_no_byte_string_crashes_the_decoder():
    rng = random.Random(5798)
    valid = encode(V4, SRC4, DST4)
    for _ in range(20_000):
        n = rng.randrange(0, 40)
        data = bytes(rng.randrange(256) for _ in range(n)) if rng.random() < 0.5 else bytearray(valid)
        if isinstance(data, bytearray):
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data)
        try:
            decode(data, SRC4, DST4)
        except PacketError:
            pass


@pytest.mark.parametrize("bad", [
    Advert(0, 100, 100, (ip_address("10.0.0.1"),)),
    Advert(1, 100, 0, (ip_address("10.0.0.1"),)),
    Advert(1, 100, 4096, (ip_address("10.0.0.1"),)),
    Advert(1, 100, 100, ()),
    Advert(1, 100, 100, (ip_address("fe80::1"),)),
])
def test_encode_refuses_what_the_wire_cannot_carry(bad):
    with pytest.raises(ValueError):
        encode(bad, SRC4, DST4)
