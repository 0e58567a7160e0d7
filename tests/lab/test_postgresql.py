"""PostgreSQL on lab hosts, for real: a primary, a standby streaming from it, a promotion, and
nothing left behind."""

import os
import signal
import subprocess
import sys
import time

import pytest

from ha.heartbeat import postgresql as pg_resource
from ha.heartbeat.config import postgresql_resource
from harness import dbwriter, writecheck
from harness.daemons import HalabHeartbeat
from harness.daemons.heartbeat import node_config
from harness.daemons.postgresql import DbCluster, PostgreSQL, require_postgresql
from harness.faults import Faults
from harness.lab import Lab
from tests.lab.helpers import halab_leftovers, wait_until
from topologies import ClusterTopo

pytestmark = pytest.mark.mininet


def start_pair(lab: Lab, replication: str) -> tuple[PostgreSQL, PostgreSQL]:
    """node1 the primary, node2 a standby streaming from it over the service network."""
    assert lab.state is not None
    cluster = DbCluster(lab.state.run_id, replication=replication)
    primary = PostgreSQL(lab, "node1", cluster)
    primary.prepare()
    primary.start()
    primary.create_roles()
    primary.set_standbys(["node2"])
    standby = PostgreSQL(lab, "node2", cluster, upstream=str(lab.topo.addresses["node1"][0].ip))
    standby.prepare()
    standby.start()
    primary.wait_streaming("node2")
    return primary, standby


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


def managed_pair(lab: Lab, replication: str) -> tuple[PostgreSQL, PostgreSQL, list[HalabHeartbeat]]:
    """Both servers standbys (node1 turned into one of node2), then halab's heartbeat agents with
    the `postgresql` resource first and the VIP after it: the active node promotes its server."""
    primary, standby = start_pair(lab, replication)
    primary.rejoin(standby)   # no fork yet: pg_rewind has nothing to undo, and writes the standby's files
    agents = []
    for db in (primary, standby):
        assert db.host is not None
        server = pg_resource.PgServer(str(db.data_dir), str(db.cluster.socket_dir(db.host)),
                                      bin_directory=str(db.bin))
        vip = node_config(lab, db.host).resources[0]
        resources = (postgresql_resource("db", server, monitor_interval=0.2, monitor_timeout=1.0), vip)
        agents.append(HalabHeartbeat(lab, db.host, node_config(lab, db.host, resources=resources)).start())
    assert wait_until(lambda: agents[0].role() == "ACTIVE" and agents[1].role() == "STANDBY", timeout=15)
    # The role is logged when it is taken; the resources start after it, in the agent's worker.
    assert wait_until(lambda: not primary.in_recovery(), timeout=15), agents[0].events()[-5:]
    return primary, standby, agents


def test_halabs_heartbeat_agent_fails_the_database_over_without_losing_an_acknowledged_write(lab):
    """sync: node1 (promoted by its agent) crashes mid-write; node2's agent fences it, promotes
    node2 and moves the VIP; every write the client saw acknowledged is in node2's table."""
    primary, standby, (_a1, a2) = managed_pair(lab, "sync")
    assert not primary.in_recovery() and standby.in_recovery()
    primary.wait_streaming("node2")   # the agent's promotion started timeline 2; node2 follows it
    primary.set_standbys(["node2"])
    passfile = primary.cluster.write_app_passfile(lab.run_dir / "app.pgpass")
    out = lab.run_dir / "writes.jsonl"
    writer = lab.spawn("client1", "dbwriter", [sys.executable, "-m", "harness.dbwriter", "--host", "10.0.0.100",
                                               "--passfile", str(passfile), "--rate", "50", "--seconds", "6",
                                               "--timeout", "1", "--out", str(out)])
    time.sleep(2)
    fault = Faults(lab).crash_host("node1")
    assert wait_until(lambda: a2.role() == "ACTIVE", timeout=10), a2.events()[-5:]
    writer.popen.wait(30)
    writes = dbwriter.read(out)
    final = {int(i) for i in standby.sql("SELECT id FROM writes", database="app").split()}
    verdict = writecheck.check(writes, final)
    assert verdict.valid and verdict.acknowledged_lost == (), verdict
    assert {w.node for w in writes if w.outcome == "ok"} == {"node1", "node2"}
    outage = writecheck.write_outage(writes, fault.at)
    assert outage is not None and outage < 5.0, outage
    took_over = [e for e in a2.events() if e.state == "ACTIVE"]
    assert "fenced" in took_over[-1].reason, took_over   # fenced before it promoted: no two primaries
    assert not standby.in_recovery()
