"""Every topology comes up on OVS with the controller, and every host reaches its neighbours.

Reachability is checked with UDP and TCP, not ping: with the userspace datapath, checksum
offload breaks TCP and UDP while ICMP still passes.
"""

from collections import defaultdict

import pytest

from harness.lab import Lab
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
