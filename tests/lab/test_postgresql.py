"""PostgreSQL on lab hosts, for real: a primary, a standby streaming from it, a promotion, and
nothing left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import dbwriter, writecheck
from harness.daemons.heartbeat import PRIORITIES, HalabHeartbeat
from harness.daemons.postgresql import DbCluster, PostgreSQL, require_postgresql
from harness.dbtier import ManagedPair, managed_pair, streaming_pair
from harness.errors import HalabError
from harness.faults import Faults
from harness.lab import Lab
from harness.process import LabProcess
from tests.lab.helpers import halab_leftovers, wait_until
from topologies import ClusterTopo

pytestmark = pytest.mark.mininet


def start_pair(lab: Lab, replication: str) -> tuple[PostgreSQL, PostgreSQL]:
    return streaming_pair(lab, ("node1", "node2"), replication)


@pytest.fixture
def lab(tmp_path):
    require_postgresql()
    with Lab(ClusterTopo(), tmp_path, fencing=True) as lab:
        yield lab
    assert halab_leftovers() == []   # no postgres process, no data directory


def test_a_commit_in_remote_apply_mode_is_readable_on_the_standby_at_once(lab):
    primary, standby = start_pair(lab, "remote_apply")
    assert not primary.in_recovery() and standby.in_recovery()
    for i in range(20):
        primary.sql(f"INSERT INTO writes (id) VALUES ({i})", database="app")
        assert standby.sql(f"SELECT count(*) FROM writes WHERE id = {i}", database="app") == "1"
    with pytest.raises(Exception, match="read-only transaction"):
        standby.sql("INSERT INTO writes (id) VALUES (100)", database="app")


SQUATTER = ("import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 5432)); s.listen(); "
            "print('listening', flush=True); time.sleep(60)")


def test_a_port_in_use_is_refused_before_anything_is_made(lab):
    lab.spawn("node1", "squatter", [sys.executable, "-c", SQUATTER]).wait_for("listening", timeout=10)
    assert lab.state is not None
    cluster = DbCluster(lab.state.run_id)
    with pytest.raises(HalabError, match=r"Port 5432 is already in use on node1: .*python"):
        PostgreSQL(lab, "node1", cluster).prepare()
    assert not cluster.data_dir("node1").exists()


def write_from_client(lab: Lab, cluster: DbCluster, host: str, seconds: float = 2.0) -> list[writecheck.Write]:
    """The writer on client1, 50 writes/s straight to `host`'s address."""
    passfile = cluster.write_app_passfile(lab.run_dir / "app.pgpass")
    out = lab.run_dir / f"writes-{host}.jsonl"
    result = lab.run("client1", [sys.executable, "-m", "harness.dbwriter", "--host",
                                 str(lab.topo.addresses[host][0].ip), "--passfile", str(passfile), "--rate", "50",
                                 "--seconds", str(seconds), "--out", str(out)], timeout=seconds + 20)
    assert result.returncode == 0, result.stderr
    return dbwriter.read(out)


def test_writes_through_the_primary_are_acknowledged_and_a_standby_refuses_them(lab):
    primary, standby = start_pair(lab, "sync")
    writes = write_from_client(lab, primary.cluster, "node1")
    assert len(writes) == 100 and {w.outcome for w in writes} == {"ok"}
    assert {(w.node, w.timeline) for w in writes} == {("node1", 1)}
    final = {int(i) for i in standby.sql("SELECT id FROM writes", database="app").split()}
    verdict = writecheck.check(writes, final)   # sync: the standby has every acknowledged write
    assert verdict.valid and verdict.acknowledged == 100
    refused = write_from_client(lab, primary.cluster, "node2", seconds=1.0)
    assert {w.outcome for w in refused} == {"failed"}   # read-only: nothing can have been written


def test_a_write_given_up_at_its_timeout_does_not_wait_to_cancel_on_an_unreachable_server(lab):
    """The commit waits for a standby that is cut off, then the server becomes unreachable: the
    write ends, indeterminate, at its timeout. (psycopg with libpq 15 first cancelled it over a
    new connection, whose connect() to the unreachable server took minutes: a write, and the
    whole writer, hung; a crash test failed so once.)"""
    primary, _standby = start_pair(lab, "sync")
    faults = Faults(lab)
    faults.cut_tcp("node2", "node1", 5432)   # no standby: a commit waits
    passfile = primary.cluster.write_app_passfile(lab.run_dir / "app.pgpass")
    out = lab.run_dir / "writes.jsonl"
    writer = lab.spawn("client1", "dbwriter", [sys.executable, "-m", "harness.dbwriter", "--host", "10.0.0.1",
                                               "--passfile", str(passfile), "--rate", "10", "--seconds", "0.1",
                                               "--timeout", "3", "--out", str(out)])
    time.sleep(1.5)   # connected, the INSERT waiting for the standby
    started = time.monotonic()
    faults.cut_tcp("client1", "node1", 5432)   # node1's PostgreSQL: unreachable from client1
    writer.popen.wait(15)
    assert time.monotonic() - started < 5, "the writer waited past its timeout"
    assert [w.outcome for w in dbwriter.read(out)] == ["timeout"]


@pytest.mark.parametrize("replication", ["async", "sync"])
def test_the_standby_promoted_after_the_primary_crashed_takes_writes_and_the_old_primary_rejoins(lab, replication):
    primary, standby = start_pair(lab, replication)
    primary.sql("INSERT INTO writes (id) VALUES (1)", database="app")
    # async: the standby has it a moment later (sync: already)
    assert wait_until(lambda: standby.sql("SELECT count(*) FROM writes", database="app") == "1", timeout=5)
    assert standby.timeline() == primary.timeline() == 1
    primary.crash()
    standby.promote(standbys=[])   # its only standby is down: commits must not wait for one
    standby.sql("INSERT INTO writes (id) VALUES (2)", database="app", timeout=5)
    assert standby.sql("SELECT id FROM writes ORDER BY id", database="app").split() == ["1", "2"]
    assert not standby.in_recovery() and standby.timeline() == 2
    # The crashed primary comes back as a standby of the new one, never as a second primary.
    primary.rejoin(standby)
    assert primary.rejoined_by == "pg_rewind"   # the WAL back to the fork was kept (wal_keep_size)
    assert primary.in_recovery()
    standby.wait_streaming("node1")
    standby.set_standbys(["node1"])
    standby.sql("INSERT INTO writes (id) VALUES (3)", database="app", timeout=5)
    assert wait_until(lambda: primary.sql("SELECT count(*) FROM writes", database="app") == "3", timeout=5)
    assert primary.timeline() == 2


KILLED_RUN = """
import sys, time
from pathlib import Path
from harness.lab import Lab
from tests.lab.test_postgresql import start_pair
from topologies import ClusterTopo
lab = Lab(ClusterTopo(), Path(sys.argv[1]))
lab.start()
start_pair(lab, "sync")
print("up", flush=True)
time.sleep(120)
"""


def test_halab_clean_stops_the_postgres_of_a_killed_run_and_deletes_its_data(tmp_path):
    require_postgresql()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    left = halab_leftovers()
    # The kill really left them behind, or this test would prove nothing.
    assert any(x.startswith("process") and "/bin/postgres -D" in x for x in left), left
    assert any(x.startswith("directory") for x in left), left
    clean = subprocess.run([sys.executable, "-m", "harness.cli", "clean"], capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr
    assert wait_until(lambda: halab_leftovers() == [], timeout=5), halab_leftovers()


def start_writer(lab: Lab, pair: ManagedPair, seconds: float, rate: int = 50) -> tuple[LabProcess, Path]:
    """The writer on client1, `rate` writes/s to the DB VIP for `seconds` at most (`stop_writer`)."""
    passfile = pair.cluster.write_app_passfile(lab.run_dir / "app.pgpass")
    out = lab.run_dir / "writes.jsonl"
    writer = lab.spawn("client1", "dbwriter", [sys.executable, "-m", "harness.dbwriter", "--host", "10.0.0.100",
                                               "--passfile", str(passfile), "--rate", str(rate), "--seconds",
                                               str(seconds), "--timeout", "1", "--out", str(out)])
    return writer, out


def stop_writer(writer: LabProcess, out: Path, after: float = 0.0) -> list[writecheck.Write]:
    """Its writes, once it has gone on `after` seconds more and ended (SIGTERM: the writes in
    flight finish)."""
    time.sleep(after)
    writer.signal(signal.SIGTERM)
    writer.popen.wait(30)
    return dbwriter.read(out)


def table(server: PostgreSQL) -> set[int]:
    return {int(i) for i in server.sql("SELECT id FROM writes", database="app").split()}


def test_in_strict_mode_writes_wait_while_replication_is_cut_and_none_is_lost(lab):
    pair = managed_pair(lab, PRIORITIES, "sync", strict=True)
    writer, out = start_writer(lab, pair, seconds=7)
    time.sleep(1.5)
    faults = Faults(lab)
    cut = faults.cut_tcp("node2", "node1", 5432)
    time.sleep(3.0)
    healed = faults.restore_tcp("node2", "node1")
    writes = stop_writer(writer, out, after=1.5)
    ok = [w for w in writes if w.outcome == "ok"]
    # Nothing invoked during the cut was acknowledged before the heal (writes waited for node2).
    assert not [w for w in ok if cut.at + 0.1 < w.invoked and w.completed < healed.at]
    assert [w for w in ok if w.invoked > healed.at + 0.5], "writes did not resume after the heal"
    assert wait_until(lambda: not writecheck.check(writes, table(pair.servers["node2"])).acknowledged_lost,
                      timeout=5)
    assert not [e for e in pair.agents["node1"].events() if e.state == "asynchronous"]


def test_the_old_primary_comes_back_and_its_agent_rejoins_it_as_a_standby(lab):
    """Strict sync: node1 crashes; node2 takes over and, strict, acknowledges nothing until a
    standby replicates. node1 comes back (links up, unfenced, its agent started again): its
    agent rewinds its server and starts it as node2's standby, never a second primary; writes
    go on, and no acknowledged write is lost."""
    pair = managed_pair(lab, PRIORITIES, "sync", strict=True)
    writer, out = start_writer(lab, pair, seconds=14)
    time.sleep(1.5)
    faults = Faults(lab)
    crash = faults.crash_host("node1")
    assert wait_until(lambda: pair.agents["node2"].role() == "ACTIVE", timeout=10)
    time.sleep(1.0)
    faults.restore_host("node1")
    assert lab.fence("unfence", "node1")["ok"]
    agent1 = HalabHeartbeat(lab, "node1", pair.agents["node1"].cfg).start()
    rejoined = lambda: [e for e in agent1.events() if e.subject == "resource db" and e.state == "standby"]  # noqa: E731
    assert wait_until(rejoined, timeout=40), agent1.events()[-6:]
    assert "pg_rewind" in rejoined()[0].reason, rejoined()
    assert pair.servers["node1"].in_recovery() and agent1.role() == "STANDBY"
    pair.servers["node2"].wait_streaming("node1")
    writes = stop_writer(writer, out, after=1.0)
    verdict = writecheck.check(writes, table(pair.servers["node2"]))
    assert verdict.valid and verdict.acknowledged_lost == (), verdict
    started = next(e.at for e in agent1.events() if e.state == "rejoining")
    after_crash = [w for w in writes if w.outcome == "ok" and w.invoked > crash.at]
    assert after_crash, "writes did not resume once node1 replicated again"
    assert min(w.completed for w in after_crash) > started   # strict: nothing without a standby
    assert {w.node for w in after_crash} == {"node2"}
