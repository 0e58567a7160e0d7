"""Every scenario added for `halab run`, run from the command line as a user would (--json), with
what it must show asserted: who serves after the fault, and that the client recovered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.helpers import halab_leftovers

pytestmark = [pytest.mark.mininet, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *argv: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "harness.entry", "run", *argv, "--json", "--before", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=180, cwd=REPO)
    assert done.returncode in (0, 1), done.stderr
    assert halab_leftovers() == []
    return json.loads(done.stdout)


def last_server(result: dict) -> str | None:
    """Who answered the probe's last answered request (server_after is who ended the outage)."""
    return [q["server"] for q in result["timeline"] if q["server"]][-1]


def states(result: dict, host: str) -> list[str]:
    return [e["state"] for e in result["agent_events"] if e["host"] == host]


def test_active_standby_partition_moves_the_vip_to_the_backup(tmp_path):
    r = run(tmp_path, "active-standby", "--fault", "partition", "--advert-int", "0.2", "--rate", "200",
            "--after", "1.5")
    assert r["outcome"]["outage"] is not None and r["outcome"]["server_after"] == "server2"
    assert "MASTER" in states(r, "server2")


def test_active_standby_flap_ends_with_a_master_serving(tmp_path):
    r = run(tmp_path, "active-standby", "--fault", "flap", "--flap-period", "0.4", "--flap-count", "5",
            "--advert-int", "0.2", "--rate", "200", "--after", "3.5")
    assert r["outcome"]["outage"] is not None and r["outcome"]["server_after"] in ("server1", "server2")


# The cluster's heartbeat-link cut and its partition (fenced before the VIP moves) are lesson 3's checks
# (tests/lab/test_lessons.py), on the same lab and the same faults.


def test_cluster_loss_for_a_while_heals(tmp_path):
    r = run(tmp_path, "cluster", "--fault", "loss", "--loss-percent", "100", "--for", "2", "--rate", "200",
            "--after", "4.5")
    assert r["outcome"]["outage"] is not None


def test_any_lab_file_with_a_fault_typed_as_at_the_prompt(tmp_path):
    """A lasting fault (`--for`): the backup takes over, and once it ends server1's adverts win and
    the clients follow (the loss fault's own effect is tests/lab/test_faults.py's; lasting, the
    cluster's above)."""
    lab = tmp_path / "lab.toml"
    lab.write_text((REPO / "labs" / "active-standby.toml").read_text().replace("advert_int = 1.0", "advert_int = 0.2"))
    r = run(tmp_path, "-f", str(lab), "--fault", "link-cut server1", "--for", "2", "--rate", "100", "--after", "4")
    assert r["scenario"] == "lab-file" and r["fault"]["kind"] == "cut-link"
    assert r["outcome"]["server_after"] == "server2" and last_server(r) == "server1"
