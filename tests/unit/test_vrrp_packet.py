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


@pytest.mark.parametrize(("mutate", "reason", "message"), [
    (lambda b: b[:7], "truncated", "truncated: 7 bytes"),
    (lambda b: b[:8], "bad_length", "bad_length: 8 bytes for 2 addresses"),  # a header alone is no advert
    (lambda b: bytes([0x21]) + b[1:], "bad_version", "bad_version: 2"),
    (lambda b: bytes([0x32]) + b[1:], "bad_type", "bad_type: 2"),
    (lambda b: b[:3] + bytes([3]) + b[4:], "bad_length", "bad_length: 16 bytes for 3 addresses"),
    (lambda b: b[:3] + bytes([0]) + b[4:], "bad_length", "bad_length: 16 bytes for 0 addresses"),
    (lambda b: b + b"\0\0\0\0", "bad_length", "bad_length: 20 bytes for 2 addresses"),
    (lambda b: b[:6] + b"\0\0" + b[8:], "bad_checksum", "bad_checksum: 0x0000"),
    (lambda b: b[:2] + bytes([b[2] ^ 1]) + b[3:], "bad_checksum", None),
])
def test_malformed_packets_are_refused_with_a_reason(mutate, reason, message):
    """The reason is the drop counter's name; the message says what was wrong with the packet."""
    with pytest.raises(PacketError) as err:
        decode(mutate(encode(V4, SRC4, DST4)), SRC4, DST4)
    assert err.value.reason == reason
    if message is not None:
        assert str(err.value) == message


def test_a_packet_error_without_detail_is_just_its_reason():
    """The detail is optional; without it the message is the bare counter name."""
    assert str(PacketError("truncated")) == "truncated"
    assert str(PacketError("truncated", "3 bytes")) == "truncated: 3 bytes"


# Exact adverts worked out by hand (RFC 9568 5.1, 5.2.8): VRID 1, one address 10.0.0.1, 100 cs, sent
# from 10.0.0.1 to 224.0.0.18. The IPv4 pseudo-header (src, dst, 0, 112, length 12) sums to 0xea8f.
# Priority 255: message words 3101 ff01 0064 0a00 0001 sum to 0x13a67 -> ~0x3a68 = 0xc597 alone,
# ~(0xea8f + 0x13a67 folded = 0x24f8) = 0xdb07 with the pseudo-header. Priority 0: 0x3b67 -> 0xc498 / 0xda08.
# scapy's VRRPv3 layer agrees with the pseudo-header forms.
ONE = (ip_address("10.0.0.1"),)


@pytest.mark.parametrize(("priority", "pseudo", "wire"), [
    (255, True, "31 01 ff 01 00 64 db 07 0a 00 00 01"),
    (255, False, "31 01 ff 01 00 64 c5 97 0a 00 00 01"),
    (0, True, "31 01 00 01 00 64 da 08 0a 00 00 01"),
    (0, False, "31 01 00 01 00 64 c4 98 0a 00 00 01"),
])
def test_the_owner_and_the_farewell_priorities_are_encoded_exactly(priority, pseudo, wire):
    """255 (the address owner) and 0 (a master leaving) are the priorities that trigger takeovers."""
    adv = Advert(1, priority, 100, ONE)
    data = encode(adv, SRC4, DST4, pseudo_header=pseudo)
    assert data == bytes.fromhex(wire)
    assert decode(data, SRC4, DST4) == adv
    if pseudo:
        assert data == _scapy4(vrid=1, priority=priority, adv=100, addrlist=["10.0.0.1"])


def test_the_ipv4_pseudo_header_is_the_default_of_encode_and_checksum():
    """keepalived and FRR checksum with the pseudo-header by default; so do we, unless told otherwise."""
    assert encode(Advert(1, 255, 100, ONE), SRC4, DST4) == bytes.fromhex("3101ff010064db070a000001")
    message = bytes.fromhex("3101ff01006400000a000001")
    assert checksum(message, SRC4, DST4) == 0xDB07
    assert checksum(message, SRC4, DST4, pseudo_header=False) == 0xC597


def test_ipv6_always_carries_the_pseudo_header():
    """RFC 9568 5.2.8: for IPv6 the pseudo-header is not optional, in either direction."""
    wire = bytes.fromhex("3101ff010064d2f7" + "fe80" + "00" * 12 + "0001")  # as scapy builds it
    adv = Advert(1, 255, 100, (ip_address("fe80::1"),))
    assert encode(adv, SRC6, DST6, pseudo_header=False) == wire
    assert decode(wire, SRC6, DST6) == adv
    without = wire[:6] + bytes.fromhex("d116") + wire[8:]  # the message alone: 3101+ff01+0064+fe80+0001
    with pytest.raises(PacketError) as err:
        decode(without, SRC6, DST6)
    assert err.value.reason == "bad_checksum"


@pytest.mark.parametrize(("fields", "wire", "message"), [
    ({"vrid": 0, "adv": 100}, "31 00 64 01 00 64 76 09 0a 00 00 01", "bad_vrid: 0"),
    ({"vrid": 1, "adv": 0}, "31 01 64 01 00 00 76 6c 0a 00 00 01", "bad_interval: 0"),
])
def test_vrid_zero_and_a_zero_interval_are_refused_even_with_a_good_checksum(fields, wire, message):
    """RFC 9568 7.1: such an advert is invalid; taken as valid, one would make a backup take over."""
    data = bytes.fromhex(wire)
    assert data == _scapy4(priority=100, addrlist=["10.0.0.1"], **fields)  # the checksum is right
    with pytest.raises(PacketError) as err:
        decode(data, SRC4, DST4)
    assert (err.value.reason, str(err.value)) == (message.split(":")[0], message)


def test_the_reserved_bits_do_not_make_a_zero_interval():
    """The 4 bits before Max Adver Int are reserved and ignored on receipt: 0xf000 is still 0 cs."""
    with pytest.raises(PacketError) as err:
        decode(bytes.fromhex("31 01 64 01 f0 00 86 6b 0a 00 00 01"), SRC4, DST4)
    assert err.value.reason == "bad_interval"


def test_the_smallest_vrid_and_interval_are_accepted():
    """VRID 1 and 1 cs are valid: the refusals above are exactly at zero."""
    adv = Advert(1, 100, 1, ONE)
    assert decode(encode(adv, SRC4, DST4), SRC4, DST4) == adv


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


def _addresses(n: int) -> tuple:
    return tuple(ip_address(f"10.1.{i // 256}.{i % 256}") for i in range(n))


@pytest.mark.parametrize("adv", [
    Advert(1, 100, 100, ONE),
    Advert(255, 100, 100, ONE),
    Advert(1, 0, 100, ONE),
    Advert(1, 255, 100, ONE),
    Advert(1, 100, 1, ONE),
    Advert(1, 100, 4095, ONE),
    Advert(1, 100, 100, _addresses(255)),
])
def test_encode_accepts_every_field_at_its_bounds(adv):
    """VRID 1..255, priority 0..255, 1..4095 cs and 1..255 addresses all fit the wire and come back."""
    assert decode(encode(adv, SRC4, DST4), SRC4, DST4) == adv


@pytest.mark.parametrize(("bad", "message"), [
    (Advert(0, 100, 100, ONE), "vrid 0 / priority 100 out of range"),
    (Advert(256, 100, 100, ONE), "vrid 256 / priority 100 out of range"),
    (Advert(1, -1, 100, ONE), "vrid 1 / priority -1 out of range"),
    (Advert(1, 256, 100, ONE), "vrid 1 / priority 256 out of range"),
    (Advert(1, 100, 0, ONE), "max_adver_int 0 cs out of range 1..4095"),
    (Advert(1, 100, 4096, ONE), "max_adver_int 4096 cs out of range 1..4095"),
    (Advert(1, 100, 100, ()), "addresses must be 1 to 255 of the source's IP version"),
    (Advert(1, 100, 100, _addresses(256)), "addresses must be 1 to 255 of the source's IP version"),
    (Advert(1, 100, 100, (ip_address("fe80::1"),)), "addresses must be 1 to 255 of the source's IP version"),
])
def test_encode_refuses_what_the_wire_cannot_carry(bad, message):
    """A configuration that cannot go on the wire is refused with the field and value, not mangled."""
    with pytest.raises(ValueError) as err:
        encode(bad, SRC4, DST4)
    assert str(err.value) == message
