"""Each fault changes reachability as it should, and its undo brings it back.

One lab for the whole module (active-standby: server1, server2, client1 on s1); every test
leaves it as it found it.
"""

import json
import re
import subprocess
import time

import pytest

from harness.errors import HalabError
from harness.faults import CRASH_SETTLE_S, Faults
from harness.lab import Lab
from tests.lab.helpers import PORT, answers, probe_cmd, start_responders, wait_until
from topologies import ActiveStandbyTopo

pytestmark = pytest.mark.mininet

S1, S2 = "10.0.0.1", "10.0.0.2"
BOTH = {S1: "server1", S2: "server2"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with Lab(ActiveStandbyTopo(), tmp_path_factory.mktemp("faults")) as lab:
        lab.responders = start_responders(lab, ["server1", "server2"])
        yield lab


@pytest.fixture
def faults(lab):
    assert answers(lab, "client1", [S1, S2]) == BOTH, "lab not healthy before the test"
    yield Faults(lab)
    assert wait_until(lambda: answers(lab, "client1", [S1, S2]) == BOTH, timeout=10), "not restored"


def test_cut_link_isolates_one_server_and_restore_brings_it_back(lab, faults):
    cut = faults.cut_link("server1", "s1")
    assert answers(lab, "client1", [S1, S2]) == {S1: None, S2: "server2"}
    restore = faults.restore_link("server1", "s1")
    assert restore.at > cut.at
    assert [e.kind for e in faults.events] == ["cut-link", "restore-link"]


def test_freeze_hangs_the_server_and_thaw_resumes_it(lab, faults):
    proc = lab.responders["server2"]
    faults.freeze(proc)
    assert answers(lab, "client1", [S2]) == {S2: None}
    assert proc.alive()
    faults.thaw(proc)


def test_kill_ends_the_process(lab, faults):
    proc = lab.responders["server2"]
    faults.kill(proc)
    proc.process.popen.wait(5)
    assert answers(lab, "client1", [S2], proto="tcp") == {S2: None}
    lab.responders.update(start_responders(lab, ["server2"]))


def test_crash_host_kills_everything_on_it_and_cuts_its_links(lab, faults):
    crash = faults.crash_host("server2")
    # frozen and cut off first; its own end of the link and its processes follow, out of the way
    assert time.monotonic() - crash.at >= CRASH_SETTLE_S
    assert "state DOWN" in lab.run("server2", ["ip", "link", "show", "server2-eth0"]).stdout
    assert lab.responders["server2"].process.popen.wait(5) is not None
    ping = lab.run("client1", ["ping", "-c1", "-W1", S2])
    assert ping.returncode != 0
    faults.restore_host("server2")
    assert wait_until(lambda: lab.run("client1", ["ping", "-c1", "-W1", S2]).returncode == 0, timeout=10)
    lab.responders.update(start_responders(lab, ["server2"]))


def test_partition_separates_the_two_sides_only(lab, faults):
    faults.partition(["server1"], ["client1", "server2"])
    assert answers(lab, "client1", [S1, S2]) == {S1: None, S2: "server2"}
    assert answers(lab, "server2", [S1]) == {S1: None}
    assert lab.run("server1", ["ping", "-c1", "-W1", S2]).returncode != 0
    faults.heal()


def test_partition_refuses_a_host_on_both_sides(faults):
    with pytest.raises(HalabError, match="both sides"):
        faults.partition(["server1"], ["server1", "client1"])


def test_loss_drops_a_share_of_packets_both_ways(lab, faults, tmp_path):
    faults.loss("client1", "s1", 30)
    out = lab.run_dir / "loss-probe.json"
    result = lab.run("client1", probe_cmd("client", "--target", S1, "--port", str(PORT), "--rate", "500",
                                          "--duration", "2", "--timeout", "0.5", "--out", str(out)))
    faults.clear_loss("client1", "s1")
    assert result.returncode == 0, result.stderr
    reqs = json.loads(out.read_text())["requests"]
    assert len(reqs) >= 900
    answered = sum(1 for r in reqs if r["replied"] is not None) / len(reqs)
    # 30 % each way: 0.7 x 0.7 = 49 % of the round trips survive (sigma about 0.016 over 1000
    # requests); loss one way only would leave 70 %, none 100 %.
    assert 0.40 < answered < 0.58, answered


def test_loss_needs_a_host_end(faults):
    with pytest.raises(HalabError, match="out of range"):
        faults.loss("client1", "s1", 0)
    with pytest.raises(HalabError, match="not linked"):
        faults.loss("client1", "server1", 10)


def _kernel_has_netem(lab) -> bool:
    """Asked of the kernel directly, not through the code under test."""
    added = lab.run("client1", ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
    lab.run("client1", ["tc", "qdisc", "del", "dev", "lo", "root"])
    return added.returncode == 0


def test_delay_adds_latency(lab, faults):
    if not _kernel_has_netem(lab):
        pytest.skip("this kernel has no netem (sch_netem): the delay fault cannot work here")
    faults.delay("client1", 50)
    rtt = lab.run("client1", ["ping", "-c1", "-W2", S1]).stdout
    lab.run("client1", ["tc", "qdisc", "del", "dev", "client1-eth0", "root"])
    assert float(re.search(r"time=([\d.]+)", rtt).group(1)) >= 45


def test_delay_without_netem_says_what_to_do(lab, faults, monkeypatch):
    """tc's own words for a kernel without netem, whatever this kernel has."""
    refused = subprocess.CompletedProcess([], 2, "", "Error: Specified qdisc kind is unknown.\n")
    monkeypatch.setattr(lab, "run", lambda host, argv, **kw: refused)
    with pytest.raises(HalabError) as err:
        faults.delay("client1", 50)
    assert "netem" in err.value.problem and "qdisc kind is unknown" in err.value.problem
    assert "Vagrant" in err.value.fix
