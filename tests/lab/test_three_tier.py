"""`halab run three-tier`, as a user runs it: a client writes through the web VIP and the web tier
to the DB VIP; a fault hits the primary database or its replication; the write checker's verdict
is what must hold (README, "The database tier")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.daemons.postgresql import require_postgresql
from tests.lab.helpers import halab_leftovers, lesson
from tests.unit.test_lessons import lesson_line

pytestmark = [pytest.mark.mininet, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, *argv: str) -> dict:
    require_postgresql()
    done = subprocess.run([sys.executable, "-m", "harness.entry", "run", "three-tier", *argv, "--json",
                           "--before", "1.5", "--out", str(tmp_path)], capture_output=True, text=True, timeout=240,
                          cwd=REPO)
    assert done.returncode in (0, 1), done.stderr
    assert halab_leftovers() == []   # no postgres, no web server, no data directory
    return json.loads(done.stdout)


def verdict(result: dict) -> dict:
    return result["database"]["verdict"]


def test_sync_replication_cut_then_crash_stops_writes_rather_than_losing_them(tmp_path):
    """Not strict: db1 falls back to asynchronous once db2's lease has run out, acknowledges
    writes db2 never gets, and crashes. db2 refuses promotion, without even fencing db1: writes
    stop rather than being lost. The danger was real: db2 lacks what db1 acknowledged alone after
    the fallback (and nothing from before the cut). db1's disk, read after the run, holds every
    acknowledged write."""
    r = run(tmp_path, *lesson_line(6, "run three-tier --fault replication-cut-then-crash --replication sync")[2:],
            "--fallback-timeout", "1.5", "--after", "2.5")
    v, database = verdict(r), r["database"]
    assert v["valid"] and v["acknowledged_lost"] == []
    assert database["primary_after"] is None and database["write_outage"] is None
    assert database["servers_after"]["db2"]["role"] == "standby", database["servers_after"]
    crash, cut = r["fault"]["at"], next(e["at"] for e in database["other_faults"] if e["kind"] == "tcp-cut")
    db2 = [e for e in r["agent_events"] if e["host"] == "db2" and e["at"] > crash]
    assert not [e for e in db2 if e["state"] in ("FENCING", "ACTIVE")], db2   # not even fencing
    refused = [e["reason"] for e in r["agent_events"] if e["host"] == "db2" and e["state"] == "refused"]
    assert refused and all("not a synchronous standby" in why for why in refused)
    # The fallback this cut caused (a stale reply before it may have caused one too: its writes reached db2)
    fell_back = [e["at"] for e in r["agent_events"] if e["host"] == "db1" and e["state"] == "asynchronous"
                 and e["at"] > cut]
    assert fell_back, r["agent_events"]
    acknowledged = {q["seq"]: q for q in r["timeline"] if q["replied"] is not None}
    assert not [i for i, q in acknowledged.items() if q["sent"] > crash], "a write was acknowledged after the crash"
    would_lose = set(database["standby_would_lose"])
    alone = {i for i, q in acknowledged.items() if q["sent"] > fell_back[0]}
    assert alone and would_lose >= alone, (sorted(alone), sorted(would_lose))
    assert not [i for i in would_lose if acknowledged[i]["replied"] < cut]   # nothing from before the cut
    lesson(tmp_path, "start", "6")
    assert "The same fault lost no acknowledged write" in lesson(tmp_path, "check", "sync_cut")


def test_async_replication_cut_then_crash_loses_what_the_standby_never_received(tmp_path):
    """Asynchronous replication promotes whatever the standby has: with replication cut for
    seconds before the crash, the writes of those seconds were acknowledged and are gone. The
    checker must see them (a checker that finds nothing here could not find anything)."""
    r = run(tmp_path, *lesson_line(6, "run three-tier --fault replication-cut-then-crash --replication async")[2:],
            "--cut-lead", "2", "--after", "2.5")
    v = verdict(r)
    assert r["database"]["primary_after"] == "db2"
    cut = next(e["at"] for e in r["database"]["other_faults"] if e["kind"] == "tcp-cut")
    acknowledged_during_cut = [q["seq"] for q in r["timeline"]
                               if q["server"] == "db1" and q["sent"] > cut + 0.5 and q["replied"]]
    assert len(acknowledged_during_cut) > 20
    assert set(acknowledged_during_cut) <= set(v["acknowledged_lost"])
    assert not v["valid"] and v["stale"] == []
    lesson(tmp_path, "start", "6")
    assert "Acknowledged writes were lost, and the checker found each of them" in lesson(tmp_path, "check",
                                                                                         "async_loss")
    # this async run is not the synchronous one stage sync_cut reads
    assert ("no run of `halab run three-tier --fault replication-cut-then-crash --replication sync --manager halab`"
            in lesson(tmp_path, "check", "sync_cut", rc=1))


def test_remote_apply_process_kill_fails_over_from_web1_straight_to_the_db_vip(tmp_path):
    r = run(tmp_path, "--fault", "db-process-kill", "--replication", "remote_apply", "--writes", "db",
            "--after", "3")
    v = verdict(r)
    assert v["valid"] and v["acknowledged_lost"] == []
    assert r["database"]["primary_after"] == "db2" and r["database"]["write_outage"] is not None
