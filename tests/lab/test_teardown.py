"""Teardown is certain: a run stopped by SIGTERM or Ctrl-C leaves nothing, and one killed with
SIGKILL (which no process can catch) is cleaned by the next start, and only its own things."""

import os
import signal
import subprocess
import sys
import time

import pytest

from ha.statusfile import state_root
from harness.lab import Lab
from tests.lab.helpers import answers, halab_leftovers, start_responders, wait_until
from topologies import ActiveStandbyTopo

pytestmark = [pytest.mark.mininet, pytest.mark.slow]


def _start_run(out) -> subprocess.Popen:
    """`halab run active-standby` in the background, returned once keepalived runs on its hosts."""
    argv = [sys.executable, "-m", "harness.cli", "run", "active-standby", "--agent", "keepalived", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = wait_until(lambda: any("keepalived" in p.read_text() for p in state_root().glob("run-*.json"))
                         or proc.poll() is not None, timeout=60)
    assert started and proc.poll() is None, proc.stderr.read().decode() if proc.poll() is not None else "slow"
    time.sleep(1)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_cleans_up_after_itself(tmp_path, sig):
    proc = _start_run(tmp_path)
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    assert halab_leftovers() == []


def test_the_next_start_removes_what_a_killed_run_left(tmp_path):
    proc = _start_run(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    left = halab_leftovers()
    # The kill really left things behind, or this test would prove nothing.
    assert any(x.startswith("bridge") for x in left) and any("keepalived" in x for x in left), left
    with Lab(ActiveStandbyTopo(), tmp_path / "next") as lab:
        start_responders(lab, ["server1", "server2"])
        assert answers(lab, "client1", ["10.0.0.1", "10.0.0.2"]) == {"10.0.0.1": "server1",
                                                                     "10.0.0.2": "server2"}
    assert halab_leftovers() == []


def test_a_bridge_halab_did_not_create_is_never_touched(tmp_path):
    subprocess.run(["ovs-vsctl", "add-br", "s1", "--", "set", "bridge", "s1", "datapath_type=netdev"], check=True)
    try:
        from harness.errors import HalabError

        with pytest.raises(HalabError, match="did not create"):
            Lab(ActiveStandbyTopo(), tmp_path).start()
        assert subprocess.run(["ovs-vsctl", "br-exists", "s1"]).returncode == 0
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", "s1"], check=True)
    assert halab_leftovers() == []
