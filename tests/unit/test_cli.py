"""The CLI turns bad input into one clear paragraph with a fix, never a traceback."""

import subprocess
import sys

import pytest

from harness import cli, preflight


def _halab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("args", "problem", "fix"), [
    (["run", "nope"], "invalid choice: 'nope'", "active-standby"),
    (["run", "active-standby", "--fault", "meteor"], "invalid choice: 'meteor'", "link-cut"),
    (["run", "active-standby", "--advert-int", "0"], "advert_int 0 s", "0.01 to 40.95"),
    (["run", "active-standby", "--rate", "5"], "rate 5/s", "10 to 1000"),
    (["run", "active-standby", "--runs", "0"], "--runs 0", "1 to 50"),
    (["run", "active-active", "--advert-int", "0.1"], "unrecognized arguments: --advert-int", ""),
    (["run", "cluster", "--interval", "20"], "interval 20 s", "0.01 to 10"),
    (["run", "active-active", "--backends", "1"], "--backends 1 is out of range", "Choose 2 to 32"),
    (["run", "sync", "--method", "ftp"], "invalid choice: 'ftp'", "tar"),
    (["run", "sync", "--period", "0"], "--period 0 is out of range", "more than 0 and at most 60"),
    (["run", "sync", "--write-rate", "500"], "--write-rate 500 is out of range", "at most 100"),
    (["run", "sync", "--files", "0"], "--files 0 is out of range", "1 to 1000"),
    (["run", "sync", "--for", "2"], "--for does not apply to the sync scenario", "Leave --for out"),
    (["compare", "--loads", "100,5000"], "5000 requests/s is beyond what the probe can send", "10 to 1000"),
    (["compare", "--loads", "100,x"], "'100,x' is not a list of numbers", ""),
    (["compare", "--runs", "0"], "--runs 0 is out of range", "1 to 10"),
    (["compare", "--lang", "fr"], "invalid choice: 'fr'", "ko"),
])
def test_bad_input_names_the_problem_and_the_fix(args, problem, fix):
    result = _halab(*args)
    assert result.returncode == 2
    assert problem in result.stderr and fix in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_not_root_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "needs root" in err and "sudo" in err


def test_missing_program_names_the_package(monkeypatch, capsys):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setattr(preflight.shutil, "which", lambda prog: None if prog == "mnexec" else "/bin/x")
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "mininet" in err and "make setup" in err


def test_ovs_not_running_says_how_to_start_it(monkeypatch, capsys):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setattr(preflight, "require_programs", lambda: None)
    monkeypatch.setattr(preflight, "require_mininet", lambda: None)
    monkeypatch.setattr(preflight.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 1, b"", b""))
    assert cli.main(["demo"]) == 2
    assert "Open vSwitch is not running" in capsys.readouterr().err
