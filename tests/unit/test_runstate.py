"""The lock, the state file and the targeted clean-up, on ordinary processes (no root needed)."""

import subprocess
import sys

import pytest

from harness import cleanup
from harness.errors import HalabError
from harness.procs import start_ticks
from harness.runstate import LabLock, RunState, leftover_states


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    """A state directory of our own, and no touching of real OVS bridges from unit tests."""
    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(cleanup, "_delete_bridges", lambda run_id: [])


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_only_one_lab_at_a_time():
    with LabLock():
        with pytest.raises(HalabError, match="Another halab lab is running") as err:
            LabLock().acquire()
        assert "kill" in err.value.fix
    with LabLock():  # released: free again
        pass


def test_state_round_trip():
    state = RunState.new()
    state.bridges = ["s1"]
    state.netns = {"h1": 4026532000}
    state.interfaces = ["s1-eth1"]
    state.save()
    loaded = RunState.load(state.path)
    assert loaded == state
    assert leftover_states() == [state.path]


def test_undo_kills_recorded_processes_and_forgets_the_run():
    proc = _sleeper()
    state = RunState.new()
    state.track(proc.pid, "sleeper")
    cleanup.undo(state, term_grace=0.5)
    assert proc.wait(5) is not None
    assert not state.path.exists()


def test_undo_spares_a_process_that_only_reuses_a_recorded_pid():
    proc = _sleeper()
    try:
        state = RunState.new()
        state.track(proc.pid, "sleeper")
        state.processes[0].ticks -= 1  # as if the recorded process died and its PID was reused
        cleanup.undo(state, term_grace=0.2)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_clean_leftovers_discards_unreadable_state(tmp_path):
    with LabLock():
        path = RunState.new().path
        path.write_text("{not json")
        removed = cleanup.clean_leftovers()
    assert any("unreadable" in line for line in removed)
    assert not path.exists()


def test_start_ticks_of_a_missing_process_is_none():
    proc = _sleeper()
    proc.kill()
    proc.wait()
    assert start_ticks(proc.pid) is None


def test_a_state_directory_others_can_write_to_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("HALAB_STATE_DIR", str(shared))
    with pytest.raises(HalabError, match="unsafe"):
        LabLock().acquire()


def test_the_state_directory_is_created_private_and_a_link_at_the_lock_is_not_followed(tmp_path):
    state = tmp_path / "state"
    with LabLock():
        pass
    assert state.stat().st_mode & 0o777 == 0o700
    (state / "lock").unlink()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (state / "lock").symlink_to(victim)
    with pytest.raises(HalabError, match="lab lock"):
        LabLock().acquire()
    assert victim.read_text() == "precious"


def test_a_clean_up_with_its_own_state_directory_leaves_the_machines_databases_alone(tmp_path):
    """Unit tests move the state directory; their clean-up once deleted a running lab's PostgreSQL
    data under /run/halab-postgresql. The runs' data directories move with the state directory:
    PostgreSQL's, and the sync scenario's web roots."""
    from harness.contentsync import sync_root
    from harness.daemons.postgresql import pg_root

    assert (pg_root(), sync_root()) == (tmp_path / "state-postgresql", tmp_path / "state-sync")
    for kind in ("postgresql", "sync"):
        (tmp_path / f"state-{kind}" / "20261127-1-1").mkdir(parents=True)
    with LabLock():
        removed = cleanup.clean_leftovers()
    for kind in ("postgresql", "sync"):
        assert any(f"state-{kind}/20261127-1-1" in line for line in removed), removed
        assert not (tmp_path / f"state-{kind}" / "20261127-1-1").exists()


def _fake_ovs_vsctl(tmp_path, monkeypatch, script: str) -> None:
    """An `ovs-vsctl` first on PATH that runs `script` (the leftover check's only OVS call)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ovs-vsctl"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_leftovers_name_marked_bridges_only(tmp_path, monkeypatch):
    listing = ('{"headings":["name","external_ids"],"data":[["hb-s1",["map",[["halab-run","run-1"]]]],'
               '["br-other",["map",[]]]]}')
    _fake_ovs_vsctl(tmp_path, monkeypatch, f"echo '{listing}'")
    assert "bridge hb-s1" in cleanup.leftovers()
    assert not any("br-other" in line for line in cleanup.leftovers())


def test_leftovers_say_so_when_ovs_cannot_list_bridges(tmp_path, monkeypatch):
    """A failing ovs-vsctl must not read as "no bridges left"."""
    _fake_ovs_vsctl(tmp_path, monkeypatch, "echo 'database connection failed' >&2; exit 1")
    assert "bridges unknown: ovs-vsctl failed" in cleanup.leftovers()


def test_no_open_vswitch_at_all_is_not_no_bridges(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cleanup.marked_bridges() is None


@pytest.mark.parametrize("program", ["advert_watch", "holder_watch", "dbwriter"])
def test_leftovers_see_the_measuring_programs_a_lab_runs(program, tmp_path, monkeypatch):
    """Scenarios run these on lab hosts; one that outlived its lab is a leftover."""
    _fake_ovs_vsctl(tmp_path, monkeypatch, "echo '{\"data\": []}'")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", f"harness.{program}"])
    try:
        assert any(line.startswith(f"process {proc.pid} ") for line in cleanup.leftovers())
    finally:
        proc.kill()
        proc.wait()


def test_a_server_not_reached_keeps_the_runs_record_for_it_alone_until_reached_or_forgotten(monkeypatch):
    """A server that was down when its run was cleaned up still holds that run's processes and
    bridges: the record stays, for it alone, and the next clean-up tries again."""
    from harness import servers

    reachable = {"b": False, "c": True}
    tried = []

    def undo_run(server, run_id, interfaces, dirs):
        tried.append(server)
        return reachable[server], [f"{server}: {'bridge s2' if reachable[server] else 'not reached'}"]

    monkeypatch.setattr(servers, "undo_run", undo_run)
    state = RunState.new()
    state.servers, state.interfaces = ["b", "c"], ["hx-none0"]
    state.save()
    removed = cleanup.clean_leftovers()
    assert "b: not reached" in removed and "c: bridge s2" in removed
    kept = RunState.load(state.path)
    assert kept.servers == ["b"] and kept.interfaces == ["hx-none0"] and kept.processes == []
    reachable["b"] = True
    assert "b: bridge s2" in cleanup.clean_leftovers() and not state.path.exists()
    assert tried == ["b", "c", "b"]
    reachable["b"] = False
    state.save()
    assert cleanup.forget_server("b") == [f"the record of run {state.run_id} on b"]
    assert cleanup.forget_server("b") == [] and RunState.load(state.path).servers == ["c"]
    (state.path.parent / "run-broken.json").write_text("{")
    assert cleanup.forget_server("c") == [f"the record of run {state.run_id} on c"]  # the broken one skipped
