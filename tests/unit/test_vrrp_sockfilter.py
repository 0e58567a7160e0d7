"""The source-address socket filters, run by the kernel itself on loopback UDP sockets (no root):
a filter keeps exactly the listed sources, its complement exactly the others."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address

import pytest

from ha.vrrp import sockfilter


def _received_by(listed: list[str], keep_listed: bool, senders: list[str]) -> set[str]:
    """The sources a loopback UDP socket with the filter hears, of one datagram from each sender."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.bind(("127.0.0.1", 0))
        sockfilter.attach(sock, sockfilter.program([IPv4Address(a) for a in listed], keep_listed))
        for src in senders:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((src, 0))
                s.sendto(b"x", sock.getsockname())
        got = set()
        while True:
            try:
                got.add(sock.recvfrom(64)[1][0])
            except TimeoutError:
                return got


@pytest.mark.parametrize("listed", [[], ["127.0.0.2"], ["127.0.0.2", "127.0.0.4"]])
def test_a_filter_keeps_the_listed_sources_and_its_complement_the_others(listed):
    senders = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    assert _received_by(listed, True, senders) == set(listed)
    assert _received_by(listed, False, senders) == set(senders) - set(listed)


def test_ipv6_blocks_compare_every_word_and_jumps_stay_in_range():
    addresses = [IPv6Address(f"fe80::{i:x}") for i in range(1, sockfilter.MAX_ADDRESSES + 1)]
    prog = sockfilter.program(addresses, keep_listed=True)
    assert len(prog) == 8 * len(addresses) + 2
    assert all(0 <= jt <= 255 and 0 <= jf <= 255 for _, jt, jf, _ in prog)
    with pytest.raises(ValueError, match="at most"):
        sockfilter.program([*addresses, IPv6Address("fe80::ffff")], keep_listed=True)
    with pytest.raises(ValueError, match="one IP version"):
        sockfilter.program([IPv4Address("10.0.0.1"), IPv6Address("::1")], keep_listed=True)
