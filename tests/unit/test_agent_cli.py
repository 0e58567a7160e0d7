"""The agents' shared command line (ha/daemon.py): --check, status --json, errors on stderr, exit codes."""

import json
import subprocess
import sys

import pytest

from tests.unit.test_config_roundtrip import EXAMPLES

VRRP_EXAMPLE = next(text for text in EXAMPLES if "[[vrrp_instance]]" in text)
HEARTBEAT_EXAMPLE = next(text for text in EXAMPLES if "[peer]" in text)


def agent(module: str, *args: str, state_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=30,
                          env={"HALAB_STATE_DIR": str(state_dir), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(("module", "example"), [("ha.vrrp", VRRP_EXAMPLE), ("ha.heartbeat", HEARTBEAT_EXAMPLE)])
def test_check_validates_without_starting_anything(tmp_path, module, example):
    good = tmp_path / "good.toml"
    good.write_text(example)
    ok = agent(module, "--check", "--config", str(good), state_dir=tmp_path)
    assert ok.returncode == 0 and "is valid" in ok.stdout and ok.stderr == ""
    bad = tmp_path / "bad.toml"
    bad.write_text(example.replace("priority = 200", "priority = 999"))
    refused = agent(module, "--check", "--config", str(bad), state_dir=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1 and str(bad) in refused.stderr and "priority = 999" in refused.stderr


@pytest.mark.parametrize("module", ["ha.vrrp", "ha.heartbeat"])
def test_status_without_an_agent_is_exit_1_and_an_empty_json_list(tmp_path, module):
    shown = agent(module, "status", "--json", state_dir=tmp_path)
    assert shown.returncode == 1 and json.loads(shown.stdout) == [] and "no agent is running" in shown.stderr


def test_a_secret_is_never_echoed(tmp_path):
    bad = tmp_path / "hb.toml"
    bad.write_text(HEARTBEAT_EXAMPLE.replace('secret = "change-me-to-a-long-secret"', 'secret = "hunter2"'))
    refused = agent("ha.heartbeat", "--check", "--config", str(bad), state_dir=tmp_path)
    assert refused.returncode == 2 and "hunter2" not in refused.stderr + refused.stdout
