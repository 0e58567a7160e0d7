"""Address changes written by hand: read back by pyroute2 (the oracle), and applied by a real
kernel in a network namespace of their own."""

import errno
import os
import shutil
import socket
import subprocess
import sys
from ipaddress import ip_interface

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from ha import netlink


@pytest.mark.parametrize("address", ["10.0.0.100/24", "2001:db8::64/64"])
@pytest.mark.parametrize("kind", [netlink.RTM_NEWADDR, netlink.RTM_DELADDR])
def test_the_message_says_what_pyroute2_reads_in_it(address, kind):
    a = ip_interface(address)
    [msg] = MarshalRtnl().parse(netlink.address_message(kind, 41, 7, a))
    assert msg["event"] == ("RTM_NEWADDR" if kind == netlink.RTM_NEWADDR else "RTM_DELADDR")
    assert msg["header"]["sequence_number"] == 41
    assert (msg["family"], msg["prefixlen"], msg["index"], msg["scope"]) == (
        socket.AF_INET if a.version == 4 else socket.AF_INET6, a.network.prefixlen, 7, 0)
    assert msg.get_attr("IFA_LOCAL") == msg.get_attr("IFA_ADDRESS") == str(a.ip)
    assert msg["flags"] == (IFA_F_NODAD if a.version == 6 else 0)
    wanted = netlink.NLM_F_REQUEST | netlink.NLM_F_ACK
    if kind == netlink.RTM_NEWADDR:
        wanted |= netlink.NLM_F_CREATE | netlink.NLM_F_EXCL
    assert msg["header"]["flags"] == wanted


KERNEL = """
from ipaddress import ip_interface
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from ha import netlink
a4, a6 = ip_interface("10.9.8.7/24"), ip_interface("fd00::7/64")
def held():
    with IPRoute() as ipr:
        return sorted({m.get_attr("IFA_ADDRESS") for m in ipr.get_addr(index=1)} & {"10.9.8.7", "fd00::7"})
with IPRoute() as ipr:
    ipr.link("set", index=1, state="up")
netlink.add_addresses(1, (a4, a6))
netlink.add_addresses(1, (a4,))            # already there: fine
print(held())
netlink.remove_addresses(1, (a4, a6))
netlink.remove_addresses(1, (a6,))         # already gone: fine
print(held())
try:
    netlink.add_addresses(99999, (a4,))
except NetlinkError as exc:
    print(exc.code)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="a network namespace of its own needs root and unshare")
def test_a_real_kernel_adds_and_removes_them_and_says_why_it_cannot():
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", KERNEL], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['10.9.8.7', 'fd00::7']", "[]", str(errno.ENODEV)]
