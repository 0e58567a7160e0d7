"""A lab over two machines, with Mininet's cluster edition: the second machine is emulated here
(harness.emulated_server: its own network, mount and PID namespaces, sshd and Open vSwitch), so
every ssh, `mnexec` and `ovs-vsctl` call for its nodes really crosses a machine boundary."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid

import pytest

from harness.emulated_server import EmulatedServer
from harness.labinfo import descriptor_path
from harness.servers import ServerPlan, hold_locks, release, run_on
from tests.lab.helpers import fast_lab, lesson, wait_until
from tests.lab.test_up import REPO, down_after, halab, nothing_left  # noqa: F401 (a fixture)
from tests.unit.test_lessons import lesson_line

pytestmark = [pytest.mark.mininet, pytest.mark.slow]


@pytest.fixture(scope="module")
def machine():
    with EmulatedServer(1) as server:
        yield server


@pytest.fixture
def out():
    """Run directories under the checkout, which both machines see (as /vagrant in the Vagrant VMs)."""
    path = REPO / "runs" / f"test-servers-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


LEFT = r"""
for p in /proc/[0-9]*; do tr '\0' '\n' < $p/environ 2>/dev/null | grep -q '^HALAB_RUN=' && echo $p; done
ovs-vsctl --timeout=5 list-br
ip -o link show | grep -o ' s[0-9]*-eth[0-9]*'
ls /tmp/halab-*.sock 2>/dev/null || true
ls -d /run/halab-postgresql/* /run/halab-sync/* 2>/dev/null || true
"""


def left_on(address: str) -> list[str]:
    """What a halab run left on the server: processes marked with a run, bridges, lab interfaces,
    the controller's sockets carried there."""
    found = run_on(address, LEFT)
    assert found.returncode in (0, 1), found.stderr
    return [line.strip() for line in found.stdout.splitlines() if line.strip()]


def _agents() -> dict[tuple[str, str], dict]:
    return {(a["host"], a["program"]): a for a in json.loads(halab("status", "--json").stdout)["agents"]}


@pytest.mark.usefixtures("down_after")
def test_a_vrrp_pair_over_two_machines_fails_over_and_leaves_nothing_on_either(machine, out, tmp_path):
    """The lab file places server2 over there (its [servers] table: what `--servers` and `--place`
    say on the command line, which `halab run` takes in the tests below)."""
    servers = f'\n[servers]\nlist = ["localhost", "{machine.address}"]\nplace = {{ server2 = "{machine.address}" }}\n'
    up = halab("up", "-f", fast_lab(tmp_path, extra=servers), "--detach", "--out", str(out))
    assert up.returncode == 0, up.stderr
    hosts = json.loads(descriptor_path().read_text())["hosts"]
    assert hosts["server2"]["server"] == machine.address and "server" not in hosts["server1"]
    # server2 really is on the other machine: another PID namespace, whose first process is its init
    there = halab("exec", "server2", "--", "cat", "/proc/1/cmdline")
    assert there.returncode == 0 and "init.sh" in there.stdout, there
    assert halab("exec", "server2", "--", "sh", "-c", "exit 3").returncode == 3
    assert wait_until(lambda: _agents()[("server1", "halab-vrrp")].get("state") == "VI_1 MASTER"
                      and _agents()[("server2", "halab-vrrp")].get("state") == "VI_1 BACKUP", 20, 0.3), \
        halab("status").stdout
    # The master's link is cut on this machine; the backup over there takes the VIP, across the tunnel
    assert halab("fault", "link-cut", "server1").returncode == 0
    assert wait_until(lambda: _agents()[("server2", "halab-vrrp")].get("state") == "VI_1 MASTER", 20, 0.3), \
        halab("status").stdout
    assert wait_until(lambda: json.loads(halab("vip", "--json").stdout)["holders"] == ["server2"], 20, 0.3)
    # A partition's nftables rules are read there from the run directory: both sides become master
    assert halab("fault", "restore", "server1").returncode == 0
    assert wait_until(lambda: _agents()[("server1", "halab-vrrp")].get("state") == "VI_1 MASTER", 20, 0.3)
    assert halab("fault", "partition", "server1", "server2").returncode == 0
    assert wait_until(lambda: _agents()[("server2", "halab-vrrp")].get("state") == "VI_1 MASTER", 20, 0.3)
    assert halab("fault", "heal").returncode == 0
    assert wait_until(lambda: _agents()[("server2", "halab-vrrp")].get("state") == "VI_1 BACKUP", 20, 0.3)
    # Signals reach processes over there: SIGSTOP freezes the responder, SIGKILL ends the agent
    assert halab("fault", "stop", "server2", "responder").returncode == 0
    assert wait_until(lambda: "frozen" in (_agents()[("server2", "responder")].get("state") or ""), 10, 0.3)
    assert halab("fault", "cont", "server2", "responder").returncode == 0
    assert halab("fault", "kill", "server2", "halab-vrrp").returncode == 0
    assert wait_until(lambda: not _agents()[("server2", "halab-vrrp")]["running"], 10, 0.3)
    assert run_on(machine.address, "pgrep -f 'm ha[.]vrrp'").stdout == ""  # dead over there, not just its ssh
    assert left_on(machine.address) != []  # what follows checks something
    # A crash over there: everything of server2's frozen, its link cut, then killed, by ssh
    crashed = halab("fault", "crash", "server2")
    assert crashed.returncode == 0, crashed.stderr
    assert not any(a["running"] for (host, _), a in _agents().items() if host == "server2")
    assert [p for p in left_on(machine.address) if p.startswith("/proc/")] == []
    down = halab("down")
    assert down.returncode == 0, down.stderr
    assert nothing_left() == []
    assert left_on(machine.address) == []


def test_halab_clean_removes_a_killed_lab_from_every_server(machine, out, tmp_path):
    """The switch too is on the other machine: the controller there is reached over the network.
    That machine is unreachable at the first clean-up: the run's record stays for it, and the
    next clean-up, with the machine back, removes what the run left there."""
    up = halab("up", "-f", fast_lab(tmp_path), "--servers", f"localhost,{machine.address}", "--place",
               f"server2={machine.address}", "--place", f"s1={machine.address}", "--detach", "--out", str(out))
    assert up.returncode == 0, up.stderr
    assert wait_until(lambda: _agents()[("server2", "halab-vrrp")].get("state") == "VI_1 BACKUP", 20, 0.3)
    os.kill(json.loads(descriptor_path().read_text())["pid"], signal.SIGKILL)
    assert wait_until(lambda: "DEAD" in halab("ls").stdout, 10)
    assert any(line.startswith("/proc/") for line in left_on(machine.address))
    assert "s1" in left_on(machine.address)
    subprocess.run(["ip", "link", "set", machine.name, "down"], check=True)  # its cable, this side
    try:
        clean = halab("clean")
    finally:
        subprocess.run(["ip", "link", "set", machine.name, "up"], check=True)
    assert clean.returncode == 0 and "not reached" in clean.stdout, clean.stdout + clean.stderr
    assert f"halab clean --forget {machine.address}" in clean.stdout, clean.stdout
    assert "s1" in left_on(machine.address)
    clean = halab("clean")
    assert clean.returncode == 0, clean.stderr
    assert f"OVS bridge s1 on {machine.address}" in clean.stdout, clean.stdout
    assert left_on(machine.address) == []
    assert nothing_left() == []


def test_halab_run_measures_a_failover_to_a_backup_on_the_other_machine_from_a_client_there(machine, out):
    """server2, the backup, and client1, which measures, both over there. client1's stamps, and
    the adverts it hears, are put on this machine's clock, where the fault is stamped."""
    place = {"server2": machine.address, "client1": machine.address}
    ran = halab("run", "active-standby", "--servers", f"localhost,{machine.address}",
                *(w for node, server in place.items() for w in ("--place", f"{node}={server}")),
                "--advert-int", "0.1", "--json", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["options"]["servers"] == {"servers": ["localhost", machine.address], "place": place}
    outcome = result["outcome"]
    assert (outcome["server_before"], outcome["server_after"]) == ("server1", "server2"), outcome
    # Master_Down_Interval is 0.36 s at advert_int 0.1 s; the tunnel adds well under a millisecond
    assert 0.25 < outcome["outage"] < 1.0, outcome
    assert outcome["outage_start"] <= result["fault"]["at"] <= outcome["outage_end"], outcome
    assert left_on(machine.address) == [] and nothing_left() == []


def test_a_heartbeat_standby_over_there_fences_and_takes_over_in_milliseconds_through_the_carried_sockets(
        machine, out):
    """node2's agent reaches the controller here through ssh's socket forwarding: the assist
    notice that node1's ports went down comes over it, and the fencing request goes back. Without
    the notice, node2 would wait out the deadtime (3 s at 1 s heartbeats)."""
    ran = halab("run", "cluster", "--servers", f"localhost,{machine.address}", "--place", "node1=localhost",
                "--place", f"node2={machine.address}", "--assist", "--interval", "1", "--rate", "1000",
                "--before", "0.5", "--after", "1", "--json", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    outcome = result["outcome"]
    assert (outcome["server_before"], outcome["server_after"]) == ("node1", "node2"), outcome
    assert outcome["outage"] is not None and outcome["outage"] < 0.3, outcome
    node2 = [(e["state"], e["reason"]) for e in result["agent_events"]
             if e["host"] == "node2" and e["at"] > result["fault"]["at"]]
    assert [state for state, _ in node2[:2]] == ["FENCING", "ACTIVE"], node2
    assert node2[1][1].startswith("node1 fenced"), node2
    assert left_on(machine.address) == [] and nothing_left() == []


def test_the_notes_architecture_with_its_vip_node_over_there_moves_the_vip_here_when_haproxy_dies(machine, out):
    """`halab run reference` with halab's agent: HAProxy and the agent on lb1 over there, lb2 here.
    The agent's track script over there sees HAProxy killed, and the VIP comes to lb2; the client
    here is served again by a web server through it. (keepalived over there gives the VIP up the
    same way below; the web servers' and load balancers' crashes are lesson 5's checks.)"""
    ran = halab("run", "reference", "--agent", "halab", "--servers", f"localhost,{machine.address}", "--place",
                f"lb1={machine.address}", "--fault", "haproxy-kill", "--rate", "100", "--after", "4", "--json",
                "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    outcome = result["outcome"]
    assert outcome["outage"] is not None and outcome["server_after"] in ("web1", "web2"), outcome
    masters = [e["host"] for e in result["agent_events"] if e["state"] == "MASTER"]
    assert masters[0] == "lb1" and masters[-1] == "lb2", masters
    assert left_on(machine.address) == [] and nothing_left() == []


def test_a_server_whose_lab_lock_is_taken_is_refused_and_keeps_its_lock(machine, out):
    """A lab running over there holds its lock; so does a lab spread onto it, for its whole run."""
    held = hold_locks(ServerPlan(("localhost", machine.address)))
    try:
        up = halab("up", "active-standby", "--servers", f"localhost,{machine.address}", "--place",
                   f"server2={machine.address}", "--detach", "--out", str(out))
        assert up.returncode != 0 and "is running a halab lab of its own" in up.stderr, up.stderr
        assert all(ssh.poll() is None for ssh in held)
    finally:
        release(held)
    assert nothing_left() == [] and left_on(machine.address) == []


def test_the_switch_balances_over_machines_and_drops_a_backend_that_crashed_over_there(machine, out):
    ran = halab("run", "active-active", "--servers", f"localhost,{machine.address}", "--place",
                f"backend2={machine.address}", "--json", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["fault"]["target"].startswith("backend2"), result["fault"]
    answered = {r["server"] for r in result["timeline"] if r["server"]}
    assert answered == {"backend1", "backend2", "backend3"}, answered  # backend2, over there, served too
    after = {r["server"] for r in result["timeline"] if r["server"] and r["sent"] > result["fault"]["at"] + 1.0}
    assert after == {"backend1", "backend3"}, after  # health checks over the tunnel took it out
    assert left_on(machine.address) == [] and nothing_left() == []


@pytest.mark.usefixtures("down_after")
def test_haproxy_over_there_reports_its_pool_and_keepalived_there_gives_up_the_vip_when_it_dies(
        machine, out, tmp_path):
    up = halab("up", "-f", fast_lab(tmp_path, name="reference"), "--servers", f"localhost,{machine.address}",
               "--place", f"lb1={machine.address}", "--detach", "--out", str(out))
    assert up.returncode == 0, up.stderr
    assert wait_until(lambda: json.loads(halab("vip", "--json").stdout)["holders"] == ["lb1"], 20, 0.3)
    # HAProxy's own view of its servers, read from its runtime socket over there
    assert wait_until(lambda: "probe: 2/2 in pool" in halab("status").stdout, 20, 0.3), halab("status").stdout
    assert halab("fault", "link-cut", "web1").returncode == 0
    assert wait_until(lambda: "probe: 1/2 in pool (out: web1)" in halab("status").stdout, 20, 0.3)
    # keepalived's track script over there sees HAProxy gone: the VIP comes here, to lb2
    assert halab("fault", "kill", "lb1", "haproxy").returncode == 0
    assert wait_until(lambda: json.loads(halab("vip", "--json").stdout)["holders"] == ["lb2"], 20, 0.3)
    assert halab("down").returncode == 0
    assert left_on(machine.address) == [] and nothing_left() == []


def test_patroni_over_there_takes_over_a_primary_crashed_here_and_no_acknowledged_write_is_lost(machine, out):
    """The production baseline (Patroni tuned as far as its documentation allows: Raft with a
    witness on the gateway, HAProxy holding the DB VIP) with db2's Patroni on the other machine:
    it joins through the tunnel, and when db1 crashes here it takes the leader lock and promotes
    its server there, safely. How long that takes is the benchmark's to measure (tens of
    seconds: its ttl)."""
    ran = halab("run", "three-tier", "--manager", "patroni-tuned", "--servers", f"localhost,{machine.address}",
                "--place", f"db2={machine.address}", "--replication", "sync", "--before", "1.5", "--json",
                "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    database = result["database"]
    v = database["verdict"]
    assert v["valid"] and v["acknowledged_lost"] == [] and v["stale"] == [], v
    assert database["primary_after"] == "db2" and not database["two_primaries"], database
    assert database["write_outage"] is not None, database
    assert "PROMOTED" in [e["state"] for e in result["agent_events"] if e["host"] == "db2"]   # its log, over there
    assert left_on(machine.address) == [] and nothing_left() == []


def test_the_standby_database_over_there_takes_over_a_crashed_primary_and_loses_no_write(machine, out):
    """Lesson 6's first run, with db2 on the other machine: db2's PostgreSQL keeps its data on
    that machine's own disk and streams from db1 here through the tunnel; its heartbeat agent
    there fences db1 and promotes db2 when db1 crashes mid-write. Every write the web tier
    acknowledged is in db2's table, and db2 takes writes without a standby (it fell back at its
    promotion). Lesson 6 grades the run as a student's."""
    ran = halab(*lesson_line(6, "run three-tier --replication sync"), "--servers", f"localhost,{machine.address}",
                "--place", f"db2={machine.address}", "--before", "1.5", "--after", "3", "--json", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    database = result["database"]
    v = database["verdict"]
    assert result["options"]["fault"] == "db-primary-crash"
    assert v["valid"] and v["acknowledged_lost"] == [] and v["stale"] == [], v
    assert database["replication_lag_before"]["sync_state"] == "sync"
    assert database["primary_after"] == "db2" and not database["two_primaries"], database
    assert database["servers_after"] == {"db1": {"role": "down"}, "db2": {"role": "primary", "timeline": 3}}
    outage = database["write_outage"]
    assert outage is not None and outage < 5.0, outage   # the benchmark measures it; this only bounds it
    parts = database["outage_parts"]   # detection, fencing, promotion and the VIP: where it went
    assert parts is not None and all(p >= 0 for p in parts.values()), parts
    assert sum(parts.values()) <= outage + 0.1, (parts, outage)
    assert {q["server"] for q in result["timeline"] if q["server"]} == {"db1", "db2"}   # db2 took writes alone
    took_over = [e for e in result["agent_events"] if e["host"] == "db2" and e["state"] == "ACTIVE"]
    assert took_over and took_over[-1]["reason"].startswith("db1 fenced"), took_over   # fenced, then promoted
    assert left_on(machine.address) == [] and nothing_left() == []
    lesson(out, "start", "6")
    assert "Read the table's 'acknowledged lost' column" in lesson(out, "check", "sync_crash", "--value", "2", rc=1)
    said = lesson(out, "check", "sync_crash", "--value", "0")
    assert "no acknowledged write was lost" in said and "the database tier's recovery time" in said


def test_the_web_root_synced_to_a_standby_over_there_by_rsync_is_measured_on_one_clock(machine, out):
    """server2's copy of the web root lives on the other machine's own disk, its rsync daemon
    and the reader run there; the writer's stamps (here) and the reader's (there) meet on this
    machine's clock, whose offset to the other one is measured: zero here, within its bound,
    since the emulated machine shares this one's kernel. What rsync must show: changes and
    deletions sent, never a part of a file. (tar and lsyncd run in `halab compare --quick`,
    tests/lab/test_compare.py.)"""
    ran = halab("run", "sync", "--servers", f"localhost,{machine.address}", "--place", f"server2={machine.address}",
                "--method", "rsync", "--period", "0.5", "--before", "4", "--json", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    s = result["sync"]
    assert result["outcome"]["server_after"] == "server2", result["outcome"]  # VRRP moved the VIP after the crash
    assert s["cpu_seconds_per_second"] > 0, s   # the CPU read over there too
    assert s["writes"]["count"] >= 20 and 0 < s["writes"]["p50"] < 1.5 and s["writes"]["p99"] < 10, s["writes"]
    assert s["deletions"]["count"] >= s["deletions"]["of"] - 3          # all but the last moments' ones
    assert s["partial_views"] == 0 and s["missing_for_a_moment"] == 0   # a temporary name, then a rename
    assert s["lost_at_crash"]["partial"] == 0 and s["lost_at_crash"]["rpo"] < 3.0
    assert s["transfers"] >= 3 and s["bytes_per_transfer"] < 5e6        # what changed, not the whole root
    clock = s["clocks"][machine.address]   # the true offset is 0: the estimate is within its bound of it
    assert abs(clock["seconds"]) <= clock["uncertainty"] < 0.05, clock
    assert left_on(machine.address) == [] and nothing_left() == []


BAD = {
    # what is wrong: (how the emulated machine differs, the words the one error line must have)
    "unreachable": (None, "cannot be reached by ssh"),
    "no Open vSwitch running": ({"with_ovs": False}, "Open vSwitch is not running"),
    "no Mininet": ({"overrides": {"/usr/bin/mnexec": ""}}, "has no Mininet"),
    "another Mininet": ({"overrides": {"/usr/bin/mn": "#!/bin/sh\necho 2.2.2 >&2\n"}}, "runs Mininet '2.2.2'"),
    "run directory not shared": ({}, "does not see the run directory"),
    "sshd without tunnels": ({"permit_tunnel": "no"}, "does not allow ethernet tunnels (PermitTunnel no)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_server_that_cannot_take_part_gets_one_clear_error_and_nothing_starts(case, out, tmp_path):
    options, words = BAD[case]
    where = tmp_path if case == "run directory not shared" else out  # /tmp is the other machine's own
    if options is None:
        # No route to it: ssh fails at once, as it does after its ConnectTimeout for a silent address
        subprocess.run(["ip", "route", "add", "unreachable", "169.254.77.254/32"], check=True)
        try:
            up = halab("up", "active-standby", "--servers", "localhost,169.254.77.254", "--place",
                       "server2=169.254.77.254", "--detach", "--out", str(where))
        finally:
            subprocess.run(["ip", "route", "del", "unreachable", "169.254.77.254/32"], check=True)
    else:
        with EmulatedServer(2, **options) as server:
            up = halab("up", "active-standby", "--servers", f"localhost,{server.address}", "--place",
                       f"server2={server.address}", "--detach", "--out", str(where))
            if options.get("with_ovs", True):
                assert run_on(server.address, "ovs-vsctl list-br").stdout == ""
    assert up.returncode != 0
    assert up.stderr.startswith("halab: ") and words in up.stderr and "Traceback" not in up.stderr, up.stderr
    assert nothing_left() == []
