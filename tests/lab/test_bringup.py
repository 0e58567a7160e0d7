"""Every topology comes up on OVS with the controller, and every host reaches its neighbours.

Reachability is checked with UDP and TCP, not ping: with the userspace datapath, checksum
offload breaks TCP and UDP while ICMP still passes.
"""

import socket
import subprocess
import threading
from collections import defaultdict

import pytest

from harness.errors import HalabError
from harness.lab import Lab, lab_controller_class
from tests.lab.helpers import answers, halab_leftovers, start_responders
from topologies import TOPOLOGIES

pytestmark = pytest.mark.mininet


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_all_pairs_reach_each_other(name, tmp_path):
    topo = TOPOLOGIES[name]()
    with Lab(topo, tmp_path) as lab:
        start_responders(lab, topo.hosts())
        targets = defaultdict(list)
        for src, dst, ip in topo.reachable_pairs():
            targets[src].append((dst, ip))
        for proto in ("udp", "tcp"):
            for src, pairs in targets.items():
                got = answers(lab, src, [ip for _dst, ip in pairs], proto)
                assert got == {ip: dst for dst, ip in pairs}, f"{proto} from {src}"
    assert halab_leftovers() == []


def test_a_switch_of_many_ports_gets_every_one_of_them(tmp_path):
    """65 ports on one switch: its ovs-vsctl command is over 4 KB, which a shell's pty would have
    cut (every port past the 55th was silently missing, and 64 backends never joined the pool)."""
    topo = TOPOLOGIES["active-active"](backends=64, clients=1)
    with Lab(topo, tmp_path) as lab:
        ports = subprocess.run(["ovs-vsctl", "list-ports", "s1"], capture_output=True, text=True).stdout.split()
        assert len(ports) == 65 and "s1-eth65" in ports, ports
        start_responders(lab, ["backend64"])
        assert answers(lab, "client1", ["10.0.0.64"]) == {"10.0.0.64": "backend64"}
    assert halab_leftovers() == []


def test_hosts_on_different_subnets_do_not_reach_each_other(tmp_path):
    topo = TOPOLOGIES["reference"]()
    with Lab(topo, tmp_path) as lab:
        start_responders(lab, ["web1"])
        assert answers(lab, "client1", ["10.0.1.11"]) == {"10.0.1.11": None}


def test_an_exception_inside_the_lab_still_tears_it_down(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), Lab(TOPOLOGIES["active-standby"](), tmp_path) as lab:
        start_responders(lab, ["server1"])
        raise RuntimeError("boom")
    assert halab_leftovers() == []


def test_the_controller_check_survives_a_binary_openflow_hello():
    """Mininet's own check piped telnet to the port and decoded the controller's HELLO as UTF-8;
    its random transaction id often is not UTF-8, and the lab died at start-up."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.1)
        port = server.getsockname()[1]
        stop = threading.Event()

        def greet() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.sendall(b"\x04\x00\x00\x08C\xb3\xa7P")  # OFPT_HELLO, xid not valid UTF-8

        greeter = threading.Thread(target=greet)
        greeter.start()
        try:
            lab_controller_class()("c0", ip="127.0.0.1", port=port).terminate()
        finally:
            stop.set()
            greeter.join()
    with pytest.raises(HalabError, match="does not listen"):
        lab_controller_class()("c0", ip="127.0.0.1", port=port)
