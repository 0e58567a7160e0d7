"""A lab people can enter: `halab up` with its prompt driven in a real terminal (tmux), and every
topology through the detached cycle up -> ls -> exec -> fault -> status -> down, leaving nothing."""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.labinfo import control_socket, descriptor_path
from tests.lab.helpers import fast_lab, halab_leftovers, wait_until

pytestmark = [pytest.mark.mininet, pytest.mark.slow]

HALAB = [sys.executable, "-m", "harness.entry"]
REPO = Path(__file__).resolve().parents[2]
TERM = ["tmux", "-L", "halab-test"]


def halab(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*HALAB, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def nothing_left() -> list[str]:
    """halab_leftovers, plus what a lab that stays up adds: its descriptor, its socket, its tmux server."""
    left = halab_leftovers()
    left += [f"file {p}" for p in (descriptor_path(), control_socket()) if p.exists()]
    if subprocess.run(["tmux", "-L", "halab", "ls"], capture_output=True).returncode == 0:
        left.append("tmux server -L halab")
    return left


@pytest.fixture
def down_after():
    yield
    halab("down", timeout=120)


# --- the prompt, in a terminal ---------------------------------------------------------------


class Terminal:
    """A tmux pane running a command: type into it, read the screen."""

    def __init__(self, command: list[str]) -> None:
        subprocess.run([*TERM, "kill-server"], capture_output=True)
        subprocess.run([*TERM, "new-session", "-d", "-s", "t", "-x", "150", "-y", "50", "-c", str(REPO),
                        shlex.join(command) + "; sleep 600"], check=True)

    def type(self, line: str) -> None:
        subprocess.run([*TERM, "send-keys", "-t", "t", line, "Enter"], check=True)

    def screen(self) -> str:
        """The whole scrollback (up to 2000 lines), without the pane's empty bottom lines."""
        return subprocess.run([*TERM, "capture-pane", "-p", "-t", "t", "-S", "-2000"], capture_output=True,
                              text=True).stdout.rstrip()

    def wait_for(self, text: str, timeout: float, after: int = 0) -> str:
        """Wait until `text` shows on the screen past the first `after` characters; the screen."""
        assert wait_until(lambda: text in self.screen()[after:], timeout, 0.2), \
            f"{text!r} did not show within {timeout} s:\n{self.screen()[-3000:]}"
        return self.screen()

    def close(self) -> None:
        subprocess.run([*TERM, "kill-server"], capture_output=True)


def test_the_prompt_shows_the_vip_moving_when_a_teacher_cuts_the_master(tmp_path):
    term = Terminal([*HALAB, "up", "-f", fast_lab(tmp_path), "--out", str(tmp_path)])
    try:
        term.wait_for("halab>", timeout=120)
        term.type("server1 ip addr   # Mininet's own host commands work")
        term.wait_for("10.0.0.100/24", timeout=10)
        term.type("vip")
        term.wait_for("10.0.0.100: held by server1; answers udp from client1: server1", timeout=20)
        mark = len(term.screen())
        term.type("fault link-cut server1")
        term.wait_for("cut server1-s1", timeout=20, after=mark)
        term.type("watch 2")
        term.wait_for("now: server2", timeout=20, after=mark)
        assert wait_until(lambda: term.screen().rstrip().endswith("halab>"), 15)
        term.type("vip")
        term.wait_for("held by server2; answers udp from client1: server2", timeout=20, after=mark)
        term.type("exit")
        term.wait_for("The lab is down", timeout=60, after=mark)
        assert nothing_left() == []
    finally:
        term.close()


# --- every topology, detached ----------------------------------------------------------------


def _vip(field: str) -> object:
    return json.loads(halab("vip", "--json").stdout)[field]


def _agent(host: str, program: str) -> dict:
    """The status row of `program` on `host` ({} when it has none)."""
    agents = json.loads(halab("status", "--json").stdout)["agents"]
    return next((a for a in agents if a["host"] == host and a["program"] == program), {})


def test_the_three_tier_lab_goes_up_detached_serves_writes_through_a_crash_and_leaves_nothing(tmp_path, down_after):
    """The detached cycle up -> ls -> exec -> status -> fault -> down, on the lab with the most parts
    (active-standby, cluster, active-active and reference go the same cycle in test_lessons.py,
    which brings those labs up anyway). And what the lab file's comment tells a newcomer to type: a
    POST to the web VIP, balanced to a web server, written through the DB VIP on the primary; again
    after the primary crashed."""
    up = halab("up", "three-tier", "--detach", "--out", str(tmp_path))
    assert up.returncode == 0, up.stderr
    assert halab("ls").stdout.startswith("three-tier  running (detached")
    shown = halab("exec", "web1", "--", "ip", "-br", "addr")
    assert shown.returncode == 0 and "web1-eth0" in shown.stdout
    assert halab("exec", "web1", "--", "sh", "-c", "exit 3").returncode == 3
    before = json.loads(halab("status", "--json").stdout)
    assert all(a["running"] for a in before["agents"]), before
    # What the live view shows as the VIP's holder (the agents' own word, cheap) is what the hosts have
    assert before["vip"]["claimed_by"] == _vip("holders"), (before["vips"], halab("vip").stdout)
    assert before["vips"]["10.0.1.100"] == ["db1"], before["vips"]  # the database tier's, on the active node
    post = ["exec", "client1", "--", "curl", "-s", "-m", "5", "-X", "POST"]
    first = json.loads(halab(*post, "http://10.0.0.100:8080/write/1").stdout)
    assert first["db"] == "db1" and first["web"] in ("web1", "web2") and first["timeline"] >= 1
    done = halab("fault", "crash", "db1")
    assert done.returncode == 0, done.stderr
    assert wait_until(lambda: _agent("db2", "halab-heartbeat").get("state") == "ACTIVE"
                      and _agent("db2", "postgresql").get("state") == "primary", timeout=20, interval=0.3), \
        halab("status").stdout + halab("vip").stdout
    ids = itertools.count(2)   # a new id each try: a write that did commit must not be refused as a duplicate
    assert wait_until(lambda: '"db": "db2"' in halab(*post, f"http://10.0.0.100:8080/write/{next(ids)}").stdout,
                      timeout=20)
    down = halab("down")
    assert down.returncode == 0 and "the lab is down" in down.stdout
    assert nothing_left() == []


# --- what a user gets wrong ------------------------------------------------------------------


def test_verbs_without_a_lab_and_bad_hosts_get_one_clear_line_and_exit_2(tmp_path, down_after):
    for argv in (["fault", "link-cut", "server1"], ["vip"], ["exec", "server1", "--", "true"]):
        done = halab(*argv)
        assert done.returncode == 2 and "No halab lab is running" in done.stderr, (argv, done)
    assert halab("up", "-f", fast_lab(tmp_path), "--detach", "--out", str(tmp_path)).returncode == 0
    second = halab("up", "cluster", "--detach", "--out", str(tmp_path))
    assert second.returncode == 2 and "already running: active-standby" in second.stderr
    for argv, says in ((["exec", "nohost", "--", "true"], "no host 'nohost'"),
                       (["fault", "link-cut", "nohost"], "no host 'nohost'"),
                       (["fault", "kill", "server1", "haproxy"], "server1 runs no haproxy"),
                       (["fault", "loss", "server1", "120%"], "choose 0 to 100"),
                       (["fault", "explode"], "invalid choice: 'explode'")):
        done = halab(*argv)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, (argv, done)
    assert _vip("answers") == "server1"  # the lab untouched


def test_down_after_the_lab_was_killed_still_removes_everything(tmp_path):
    assert halab("up", "-f", fast_lab(tmp_path), "--detach", "--out", str(tmp_path)).returncode == 0
    pid = json.loads(descriptor_path().read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: halab("ls").stdout.find("DEAD") > 0, timeout=10)
    time.sleep(0.5)
    down = halab("down")
    assert down.returncode == 0, down.stderr
    assert nothing_left() == []


def test_a_closed_terminal_hangup_then_terminate_still_tears_everything_down(tmp_path):
    """tmux closing a pane sends SIGHUP then SIGTERM; the second used to cut the teardown short."""
    assert halab("up", "-f", fast_lab(tmp_path), "--detach", "--out", str(tmp_path)).returncode == 0
    pid = json.loads(descriptor_path().read_text())["pid"]
    os.kill(pid, signal.SIGHUP)
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30)
    assert nothing_left() == []


@pytest.mark.parametrize("topology", ["active-standby", "active-active", "cluster", "reference", "three-tier"])
def test_plain_mininet_loads_every_topology_and_its_hosts_reach_each_other(topology, tmp_path):
    """`mn --custom topologies/__init__.py --topo NAME` with Open vSwitch as plain bridges: every
    pair of hosts that share a subnet pings (the lab lock keeps halab's labs away meanwhile)."""
    from harness import preflight
    from harness.runstate import LabLock
    from topologies import TOPOLOGIES

    pairs = TOPOLOGIES[topology]().reachable_pairs()
    script = tmp_path / "pings"
    script.write_text("".join(f"{src} ping -c1 -W2 {address}\n" for src, _dst, address in pairs))
    def bridges() -> list[str]:
        return subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()

    with LabLock():
        before = bridges()
        switch = f"ovsbr,datapath={preflight.ovs_datapath()}"  # as halab's labs choose it
        done = subprocess.run(["mn", "--custom", "topologies/__init__.py", "--topo", topology.replace("-", "_"),
                               "--switch", switch, "--controller", "none", "--post", str(script), "--test", "none"],
                              capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout + done.stderr  # Mininet's CLI writes host output through its logger
    assert said.count("packets transmitted") == len(pairs) and " 0 received" not in said, said[-3000:]
    assert bridges() == before and nothing_left() == []  # Mininet removed its own


def test_run_json_prints_the_result_object_and_the_run_directory_belongs_to_the_sudo_user(tmp_path):
    out = tmp_path / "runs"
    done = subprocess.run([*HALAB, "run", "active-standby", "--json", "--rate", "50", "--before", "0.5",
                           "--advert-int", "0.1", "--out", str(out)], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "SUDO_UID": "65534", "SUDO_GID": "65534"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is the JSON alone; the table went to stderr
    assert result["schema_version"] == 2 and result["outcome"]["outage"] is not None
    assert result["about"]["versions"]["halab"] and result["about"]["datapath"] in ("kernel", "user")
    assert "client-visible failover" in done.stderr
    run_dir = next(out.iterdir())
    assert {p.stat().st_uid for p in [out, run_dir, *run_dir.iterdir()]} == {65534}


def test_a_signal_that_lands_on_a_helper_thread_still_reaches_the_idle_prompt(tmp_path):
    """kill(2) may hand a process's signal to any thread that does not block it; Python runs the
    handler only in the main thread, which waits in readline at an idle prompt. Aimed at the
    control socket's thread (kill with its thread id prefers that thread), SIGTERM must still
    tear the lab down: helper threads block the terminating signals."""
    assert halab("up", "-f", fast_lab(tmp_path), "--detach", "--out", str(tmp_path)).returncode == 0
    pid = json.loads(descriptor_path().read_text())["pid"]
    time.sleep(1)  # the prompt is idle in readline
    helpers = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    assert helpers, "the lab serves its control socket from a thread"
    os.kill(helpers[0], signal.SIGTERM)
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30)
    assert nothing_left() == []


def test_programs_started_from_another_shell_still_stop_on_their_signals(tmp_path, down_after):
    """`fault restore` and `capture` run in the control socket's thread, which blocks SIGTERM and
    SIGINT (above), and a child inherits its thread's signal mask: the agent it restarts must
    not, or it could only be killed, never stopped with its goodbye; nor tcpdump, whose stop is a
    SIGINT (it says how many packets it captured only then)."""
    assert halab("up", "-f", fast_lab(tmp_path), "--detach", "--out", str(tmp_path)).returncode == 0
    assert halab("fault", "kill", "server2", "halab-vrrp").returncode == 0
    assert halab("fault", "restore").returncode == 0
    found = subprocess.run(["pgrep", "-f", "ha.vrrp --config .*halab-vrrp-server2.toml"], capture_output=True,
                           text=True).stdout.split()
    assert len(found) == 1, found
    pid = int(found[0])
    blocked = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("SigBlk:")), 16)
    assert not blocked & (1 << (signal.SIGTERM - 1)), f"SigBlk {blocked:x}"
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not _agent("server2", "halab-vrrp")["running"], timeout=10, interval=0.2)
    started = halab("capture", "server1")
    assert started.returncode == 0 and "capturing server1-eth0" in started.stdout, started
    time.sleep(0.5)  # a few of server1's adverts (every 0.1 s)
    assert halab("capture", "stop").stdout.strip() == "stopped capture-server1-eth0 on server1"
    log = next(tmp_path.glob("*/server1-capture-server1-eth0.log")).read_text()
    assert "packets captured" in log, log
    assert next(tmp_path.glob("*/capture-server1-eth0.pcap")).stat().st_size > 24  # more than its header


def test_halab_cli_attaches_to_the_background_prompt_and_exit_leaves_the_lab_running(tmp_path, down_after):
    assert halab("up", "-f", fast_lab(tmp_path), "--detach", "--out", str(tmp_path)).returncode == 0
    term = Terminal(["env", "TMUX=", *HALAB, "cli"])  # from a terminal of its own (tmux in tmux)
    try:
        term.wait_for("halab>", timeout=30)
        term.type("vip")
        term.wait_for("held by server1", timeout=20)
        term.type("exit")
        term.wait_for("detached", timeout=20)  # tmux says so when the prompt lets the client go
    finally:
        term.close()
    assert halab("ls").stdout.startswith("active-standby  running (detached")
    assert _vip("answers") == "server1"


def test_the_agents_own_commands_work_against_the_running_lab(tmp_path, down_after):
    """`halab exec server1 -- halab-vrrp status` and `halab-controller status`, as the README has them."""
    venv = Path(sys.executable).parent
    assert halab("up", "-f", fast_lab(tmp_path), "--detach", "--out", str(tmp_path)).returncode == 0
    shown = halab("exec", "server1", "--", str(venv / "halab-vrrp"), "status", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["instances"][0]["state"] == "MASTER", shown
    assert halab("down").returncode == 0
    assert halab("up", "active-active", "--detach", "--out", str(tmp_path)).returncode == 0
    status = subprocess.run([str(venv / "halab-controller"), "status", "--json"], capture_output=True, text=True,
                            timeout=30)
    assert status.returncode == 0, status.stderr
    backends = json.loads(status.stdout)["switches"][0]["services"][0]["backends"]
    assert sum(b["in_pool"] for b in backends) == 3


def test_a_lab_file_of_two_active_standby_pairs_gives_each_pair_its_own_vip(tmp_path, down_after):
    """`pairs = 2`: server1/server2 share 10.0.0.100 and server3/server4 10.0.0.202, each pair
    with its own VRRP instances, as a lab file writes them."""
    agents = "".join(
        f'\n[[agent]]\nhosts = ["server{s}"]\nprogram = "halab-vrrp"\n'
        f'config = {{ vrrp_instance = [{{ name = "VI_{pair}", '
        f'interface = "server{s}-eth0", virtual_router_id = {50 + pair}, priority = {prio}, advert_int = 0.1, '
        f'virtual_ipaddress = ["{vip}/24"] }}] }}\n'
        for pair, vip in ((1, "10.0.0.100"), (2, "10.0.0.202"))
        for s, prio in ((2 * pair - 1, 200), (2 * pair, 100)))
    lab = tmp_path / "pairs.toml"
    lab.write_text('topology = "active-standby"\n[options]\npairs = 2\n[probe]\nfrom = "client1"\n'
                   '[[agent]]\nrole = "server"\nprogram = "responder"\n' + agents)
    up = halab("up", "-f", str(lab), "--detach", "--out", str(tmp_path))
    assert up.returncode == 0, up.stderr
    shown = json.loads(halab("status", "--json").stdout)
    assert shown["vips"] == {"10.0.0.100": ["server1"], "10.0.0.202": ["server3"]}, shown["vips"]
    check = halab("exec", "client1", "--", sys.executable, "-m", "harness.probe", "check", "10.0.0.100", "10.0.0.202")
    assert json.loads(check.stdout) == {"10.0.0.100": "server1", "10.0.0.202": "server3"}, check.stdout + check.stderr
    assert halab("down").returncode == 0
    assert nothing_left() == []
