"""Run directories made under sudo belong to the user who typed sudo, where the file system lets."""
import os
from pathlib import Path

import pytest

from harness import about


@pytest.fixture
def as_root_via_sudo(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("SUDO_UID", "1234")
    monkeypatch.setenv("SUDO_GID", "5678")


def make_run(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "20261127-active-standby"
    (run / "sub").mkdir(parents=True)
    (run / "result.json").write_text("{}")
    (run / "sub" / "agent.log").write_text("")
    return run


def test_every_file_of_the_run_and_the_runs_folder_change_owner(tmp_path, monkeypatch, as_root_via_sudo):
    run = make_run(tmp_path)
    owned = []
    monkeypatch.setattr(os, "lchown", lambda name, uid, gid: owned.append((Path(name), uid, gid)))
    runs_is_roots = run.parent.stat().st_uid == 0   # made by this sudo run: it changes hands too
    about.give_to_sudo_user(run)
    assert {name for name, _, _ in owned} == {
        run, run / "sub", run / "result.json", run / "sub" / "agent.log"} | ({run.parent} if runs_is_roots else set())
    assert {(uid, gid) for _, uid, gid in owned} == {(1234, 5678)}


def test_a_shared_folder_that_refuses_owners_is_not_an_error(tmp_path, monkeypatch, as_root_via_sudo):
    run = make_run(tmp_path)
    calls = []

    def refuse(name, uid, gid):
        calls.append(name)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "lchown", refuse)
    about.give_to_sudo_user(run)
    assert len(calls) == 1


def test_without_sudo_nothing_changes_owner(tmp_path, monkeypatch):
    run = make_run(tmp_path)
    monkeypatch.delenv("SUDO_UID", raising=False)
    monkeypatch.setattr(os, "lchown", lambda *a: pytest.fail("lchown called without sudo"))
    about.give_to_sudo_user(run)
