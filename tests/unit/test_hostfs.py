"""File operations on a lab host's machine: the same functions here and, over ssh, there."""

from __future__ import annotations

import getpass
import io
import os
import stat
import subprocess
import sys

import pytest

from harness import hostfs, servers
from harness.errors import HalabError
from harness.hostfs import REFUSED, HostFiles

ME = getpass.getuser()


def test_a_fresh_directory_replaces_what_was_there_and_a_kept_one_must_be_roots_own(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "old").write_text("x")
    hostfs.make_dir(d, owner=ME, mode=0o700, fresh=True)
    assert list(d.iterdir()) == [] and stat.S_IMODE(d.stat().st_mode) == 0o700
    if os.geteuid() != 0:
        with pytest.raises(HalabError, match="is not root's own directory") as caught:
            hostfs.make_dir(d)  # not root's: refused, not taken for the parent of every run's data
        assert f"Remove {d}" in caught.value.fix
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(HalabError, match="is not root's own directory"):
        hostfs.make_dir(link)
    with pytest.raises(HalabError, match="Cannot create") as caught:
        hostfs.make_dir(tmp_path / "missing" / "below")
    assert "writable by root" in caught.value.fix


def test_a_file_is_written_fresh_mode_600_never_through_a_link_and_appended_to(tmp_path):
    target, path = tmp_path / "elsewhere", tmp_path / "f"
    target.write_text("keep")
    path.symlink_to(target)
    hostfs.write(path, "secret\n", owner=ME)  # the link is replaced, not followed
    assert target.read_text() == "keep" and not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "secret\n"
    hostfs.write(path, "more\n", owner=ME, append=True)
    assert hostfs.read(path) == "secret\nmore\n" and hostfs.read(tmp_path / "none") is None
    hostfs.remove(path)
    hostfs.remove(path)  # gone already: nothing to do
    assert not path.exists()


def test_over_there_the_text_goes_on_standard_input_never_on_the_command_line(monkeypatch, tmp_path):
    calls = []

    def run_on(server, line, timeout=30.0, input=None):
        calls.append((server, line, input))
        return subprocess.CompletedProcess([], 0, "+the text" if " read " in line else "", "")

    monkeypatch.setattr(servers, "run_on", run_on)
    there = HostFiles("b")
    there.write(tmp_path / "pw", "s3cret", owner="postgres")
    assert calls[-1][0] == "b" and "s3cret" not in calls[-1][1] and calls[-1][2] == "s3cret"
    assert "-m harness.hostfs write" in calls[-1][1] and "--owner postgres" in calls[-1][1]
    assert there.read(tmp_path / "x") == "the text"
    there.make_dir(tmp_path / "d", owner="postgres", mode=0o700, fresh=True)
    assert "--mode 700 --fresh" in calls[-1][1]


def test_a_refusal_over_there_comes_back_as_its_problem_and_fix_and_ssh_trouble_is_named(monkeypatch, tmp_path):
    answers = iter([subprocess.CompletedProcess([], REFUSED, "", "/run/x is not root's own directory.\nRemove it.\n"),
                    subprocess.CompletedProcess([], 255, "", "ssh: connect to host b: Connection refused\n"),
                    subprocess.CompletedProcess([], 1, "", "mkdir /run/x: 'getpwnam(): name not found: postgres'\n"),
                    subprocess.CompletedProcess([], 0, "-", ""),
                    subprocess.CompletedProcess([], 0, "yes\n", ""),
                    subprocess.CompletedProcess([], 0, "no\n", "")])
    monkeypatch.setattr(servers, "run_on", lambda *a, **k: next(answers))
    there = HostFiles("b")
    with pytest.raises(HalabError) as caught:
        there.make_dir(tmp_path)
    assert caught.value.problem == "Server b: /run/x is not root's own directory." and caught.value.fix == "Remove it."
    with pytest.raises(HalabError, match=r"Server b cannot be reached by ssh \(ssh: connect to host b") as caught:
        there.make_dir(tmp_path)
    assert "ssh " in caught.value.fix
    with pytest.raises(HalabError, match="name not found: postgres") as caught:
        there.make_dir(tmp_path, owner="postgres")
    assert "sudo make setup" in caught.value.fix  # not ssh's advice: ssh worked
    assert there.read(tmp_path / "none") is None
    assert there.running("^postgres: db2: ") and not there.running("^postgres: db2: ")


def test_what_this_machine_refuses_is_one_line_with_the_fix_too(tmp_path):
    with pytest.raises(HalabError, match="no-such-user-here") as caught:
        HostFiles().write(tmp_path / "f", "x", owner="no-such-user-here")
    assert "sudo make setup" in caught.value.fix
    with pytest.raises(HalabError, match=r"write .*: \[Errno"):
        HostFiles().write(tmp_path, "x", owner=ME)  # a directory at the name


def test_the_module_run_over_there_does_what_the_functions_do(monkeypatch, tmp_path, capsys):
    path = tmp_path / "f"
    monkeypatch.setattr(sys, "stdin", io.StringIO("over ssh"))
    assert hostfs.main(["write", str(path), "--owner", ME]) == 0 and path.read_text() == "over ssh"
    assert hostfs.main(["read", str(path)]) == 0 and capsys.readouterr().out == "+over ssh"
    assert hostfs.main(["read", str(tmp_path / "none")]) == 0 and capsys.readouterr().out == "-"
    assert hostfs.main(["mkdir", str(tmp_path / "missing" / "d")]) == REFUSED
    problem, fix = capsys.readouterr().err.strip().splitlines()
    assert problem.startswith("Cannot create") and "writable by root" in fix
    assert hostfs.main(["write", str(tmp_path / "g"), "--owner", "no-such-user-here"]) == 1
    assert not (tmp_path / "g").exists()
    assert hostfs.main(["running", "^no such process of halab's$"]) == 0 and capsys.readouterr().out == "no\n"
