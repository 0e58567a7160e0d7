"""halab's heartbeat agent on a two-node cluster: takeover, degraded links, quorum, fencing."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ha.heartbeat import fencing
from harness import heartbeat as hb
from harness.faults import Faults
from harness.lab import Lab
from tests.lab.helpers import answers, start_responders, wait_until
from topologies import ClusterTopo

pytestmark = pytest.mark.mininet
VIP = "10.0.0.100"


@pytest.fixture
def cluster(tmp_path):
    with Lab(ClusterTopo(), tmp_path, fence_secret=hb.SECRET) as lab:
        lab.responders = start_responders(lab, ["node1", "node2"])
        yield lab


def start_both(lab: Lab, **options) -> tuple[hb.HeartbeatAgent, hb.HeartbeatAgent]:
    a1 = hb.start(lab, "node1", hb.render("node1", lab, **options))
    a2 = hb.start(lab, "node2", hb.render("node2", lab, **options))
    assert wait_until(lambda: a1.role() == "ACTIVE" and a2.role() == "STANDBY", timeout=10)
    assert wait_until(lambda: serving(lab) == "node1", timeout=5)
    return a1, a2


def serving(lab: Lab) -> str | None:
    return answers(lab, "client1", [VIP])[VIP]


class VipSampler:
    """Every 10 ms, ask the VIP over UDP from client1 and note who answered."""

    def __init__(self, lab: Lab) -> None:
        self.proc = lab.spawn("client1", "sampler", [sys.executable, "-u", "-c", SAMPLER])

    def order(self) -> list[str]:
        """Who answered, in time order, each run of the same node counted once."""
        answers = [line.split()[1] for line in self.proc.log_text().splitlines() if len(line.split()) == 2]
        return [a for i, a in enumerate(answers) if i == 0 or answers[i - 1] != a]


SAMPLER = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
for seq in range(2000):
    s.sendto(b"HALAB s %d\\n" % seq, ("10.0.0.100", 7000))
    end = time.monotonic() + 0.01
    while time.monotonic() < end:
        try:
            parts = s.recv(256).split()
            print(time.monotonic(), parts[3].decode(), flush=True)
        except BlockingIOError:
            time.sleep(0.001)
"""


def test_the_standby_takes_over_when_the_active_node_crashes(cluster):
    _a1, a2 = start_both(cluster)
    Faults(cluster).crash_host("node1")
    assert wait_until(lambda: a2.role() == "ACTIVE", timeout=5), a2.records()[-5:]
    assert wait_until(lambda: serving(cluster) == "node2", timeout=5)
    fenced = [r for r in a2.records() if r.get("to") == "ACTIVE"]
    assert "fenced" in fenced[-1]["reason"], fenced


def test_cutting_only_the_heartbeat_link_is_a_degraded_link_not_a_failover(cluster):
    a1, a2 = start_both(cluster)
    Faults(cluster).cut_link("node1", "s2")
    assert wait_until(lambda: any(r.get("event") == "link degraded" for r in a2.records()), timeout=3)
    time.sleep(1.5)
    assert a1.role() == "ACTIVE" and a2.role() == "STANDBY"
    assert serving(cluster) == "node1"
    shown = cluster.run("node2", [sys.executable, "-c", "import json; from ha.heartbeat.agent import read_statuses; "
                                                        "print(json.dumps(read_statuses()))"]).stdout
    [status] = json.loads(shown)
    assert status["node"] == "node2" and status["peer_state"] == "ACTIVE" and status["quorum"]
    assert status["links"] == {"node2-eth1": False, "node2-eth0": True}


def test_a_partition_is_fenced_through_the_controller_and_two_never_answer(cluster):
    _a1, a2 = start_both(cluster)
    sampler = VipSampler(cluster)
    time.sleep(0.5)
    Faults(cluster).partition(["node1"], ["node2"])
    assert wait_until(lambda: a2.role() == "ACTIVE", timeout=5), a2.records()[-5:]
    assert wait_until(lambda: serving(cluster) == "node2", timeout=5)
    time.sleep(0.5)
    sampler.proc.stop()
    assert sampler.order() == ["node1", "node2"], "after node2 answered, node1 answered again"
    assert any("fenced" in r.get("reason", "") for r in a2.records())


def test_a_standby_cut_off_from_everything_does_not_take_over(cluster):
    _a1, a2 = start_both(cluster)
    faults = Faults(cluster)
    faults.cut_link("node2", "s1")
    faults.cut_link("node2", "s2")
    time.sleep(2.0)
    assert a2.role() == "STANDBY", a2.records()[-5:]
    assert any(r.get("event") == "no quorum" for r in a2.records())
    assert serving(cluster) == "node1"


def test_a_node_that_cannot_fence_does_not_take_over(cluster):
    a1, a2 = start_both(cluster)
    faults = Faults(cluster)
    faults.freeze(cluster.controller)  # the fencing device does not answer
    try:
        faults.partition(["node1"], ["node2"])
        assert wait_until(lambda: any("fencing node1 failed" in r.get("reason", "") for r in a2.records()),
                          timeout=8), a2.records()[-4:]
        assert a2.role() == "STANDBY" and a1.role() == "ACTIVE"
    finally:
        faults.thaw(cluster.controller)


def test_a_flapping_link_causes_at_most_one_failover(cluster):
    _a1, a2 = start_both(cluster)
    faults = Faults(cluster)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        for switch in ("s1", "s2"):
            faults.cut_link("node1", switch)
        time.sleep(0.3)
        for switch in ("s1", "s2"):
            faults.restore_link("node1", switch)
        time.sleep(0.3)
    time.sleep(1.0)
    takeovers = [r for r in a2.records() if r.get("to") == "ACTIVE"]
    assert len(takeovers) <= 1, takeovers


@pytest.mark.parametrize("auto_failback", [True, False])
def test_a_failed_service_monitor_moves_the_service_and_auto_failback_decides_the_return(cluster, auto_failback):
    a1, a2 = start_both(cluster, auto_failback=auto_failback, failure_timeout=2.0)
    responder = cluster.responders["node1"]
    responder.stop()
    assert wait_until(lambda: a1.role() == "FAULT" and a2.role() == "ACTIVE", timeout=5), a1.records()[-5:]
    assert wait_until(lambda: serving(cluster) == "node2", timeout=5)
    cluster.responders["node1"] = start_responders(cluster, ["node1"])["node1"]
    time.sleep(3.5)  # failure_timeout passes; node1 is eligible again
    expected = "node1" if auto_failback else "node2"
    assert wait_until(lambda: serving(cluster) == expected, timeout=5), (a1.records()[-4:], a2.records()[-4:])


def test_fencing_refuses_a_request_without_the_clusters_secret_and_unfences(cluster):
    a1, _a2 = start_both(cluster)
    wrong = fencing.request(cluster.fence_socket, b"not-the-secret", "fence", "node1", ["10.0.0.1"])
    assert not wrong["ok"] and "refused" in wrong["error"]
    assert serving(cluster) == "node1"
    result = subprocess.run([sys.executable, "-m", "harness.cli", "fence", "node2"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    time.sleep(1.0)
    assert serving(cluster) == "node1" and a1.role() == "ACTIVE"
    undo = subprocess.run([sys.executable, "-m", "harness.cli", "unfence", "node2"], capture_output=True,
                          text=True, timeout=30)
    assert undo.returncode == 0, undo.stdout + undo.stderr
