"""The servers of a lab over several machines: names, placement, the checks' verdicts, quoting for ssh."""

from __future__ import annotations

import os
import pwd
import shlex
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import labfile, servers
from harness.errors import HalabError
from harness.servers import LOCAL, REMOTE_PID, ServerPlan

NODES = ["client1", "s1", "server1", "server2"]


def test_server_names_are_split_on_commas_and_each_named_once():
    assert servers.parse_servers("localhost, 10.10.0.2,b-2.lab") == (LOCAL, "10.10.0.2", "b-2.lab")
    for bad, words in (("a,,b", "'' is not a server name"), ("a;rm,b", "'a;rm' is not"), ("a,a", "twice")):
        with pytest.raises(HalabError, match=words):
            servers.parse_servers(bad)


def test_a_plan_is_spread_only_when_it_names_another_server():
    assert not ServerPlan()
    assert not ServerPlan((LOCAL,))
    assert ServerPlan((LOCAL, "b")).remote == ("b",)
    assert ServerPlan(("a", "b")).remote == ("a", "b")


def test_placement_names_a_node_of_the_lab_and_one_of_its_servers():
    assert servers.parse_place(["server2=b", " s1 = b "], (LOCAL, "b"), NODES) == {"server2": "b", "s1": "b"}
    with pytest.raises(HalabError, match="'server2' is not NODE=SERVER"):
        servers.parse_place(["server2"], (LOCAL, "b"), NODES)
    with pytest.raises(HalabError, match=r"the lab has no node server9.*client1, s1, server1, server2"):
        servers.parse_place(["server9=b"], (LOCAL, "b"), NODES)
    with pytest.raises(HalabError, match=r"c is not one of the lab's servers.*localhost, b"):
        servers.parse_place(["server2=c"], (LOCAL, "b"), NODES)


def test_the_command_line_sets_the_servers_and_adds_placements():
    spec = labfile.load(labfile.builtin("active-standby"))
    spread = labfile.with_overrides(spec, servers="localhost,b", place=["server2=b"])
    assert spread.servers == ServerPlan((LOCAL, "b"), {"server2": "b"})
    assert labfile.with_overrides(spec).servers == ServerPlan()
    with pytest.raises(HalabError, match="--place puts nodes on servers, but the lab has none"):
        labfile.with_overrides(spec, place=["server2=b"])


def _lab_file(tmp_path: Path, servers_table: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(labfile.builtin("active-standby").read_text() + "\n[servers]\n" + servers_table)
    return path


def test_a_lab_file_names_its_servers_and_placements(tmp_path):
    spec = labfile.load(_lab_file(tmp_path, 'list = ["localhost", "b"]\nplace = { server1 = "b" }\n'))
    assert spec.servers == ServerPlan((LOCAL, "b"), {"server1": "b"})
    # the command line's --place adds to the file's; its --servers replaces the file's (and its places)
    assert labfile.with_overrides(spec, place=["s1=b"]).servers.place == {"server1": "b", "s1": "b"}
    assert labfile.with_overrides(spec, servers="localhost,c").servers == ServerPlan((LOCAL, "c"), {})


@pytest.mark.parametrize(("table", "words"), [
    ('list = ["localhost", "b"]\nzone = 1\n', "servers.*zone"),
    ("list = [1, 2]\n", "list = \\[1, 2\\]: expected host names"),
    ('list = "a,b"\n', "list"),
    ('list = ["a", "a"]\n', "names a server twice"),
    ('list = ["localhost", "b"]\nplace = { server7 = "b" }\n', "no node server7"),
    ('list = ["localhost", "b"]\nplace = { server1 = "c" }\n', "c is not one of the lab's servers"),
])
def test_a_bad_servers_table_names_the_file_and_the_key(tmp_path, table, words):
    path = _lab_file(tmp_path, table)
    with pytest.raises(HalabError, match=words) as caught:
        labfile.load(path)
    assert str(path) in caught.value.problem


def test_a_command_for_another_server_survives_its_shell_word_for_word_and_says_its_pid():
    argv = ["printf", "%s|", "a b", "$HOME", "it's", "*"]
    line = " ".join(servers.remote_argv(argv, "20261128-1-2", announce_pid=True, timeout=5))  # as ssh joins them
    assert shlex.split(line)[:8] == ["env", "HALAB_RUN=20261128-1-2", "timeout", "-s", "KILL", "5", "sh", "-c"]
    ran = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True)
    first, rest = ran.stdout.split("\n", 1)
    assert first.startswith(REMOTE_PID) and int(first[len(REMOTE_PID):]) > 1
    assert rest == "a b|$HOME|it's|*|"
    quiet = subprocess.run(["sh", "-c", " ".join(servers.remote_argv(["sh", "-c", "echo $HALAB_RUN"], "r"))],
                           capture_output=True, text=True, check=True)
    assert quiet.stdout == "r\n"


def test_a_shell_line_for_a_server_goes_as_the_sudo_user_with_sudo_there():
    argv = servers.ssh_argv("b", "echo 'x y'", user="alice")
    assert argv[:4] == ["sudo", "-E", "-u", "alice"] and argv[argv.index("alice@b") - 1] == "-n"
    assert shlex.split(" ".join(argv[argv.index("alice@b") + 1:])) == ["sudo", "-n", "sh", "-c", "echo 'x y'"]
    for terminal, io in ((True, "-tt"), (False, "-T")):
        argv = servers.ssh_argv("b", "sh", user="alice", terminal=terminal)
        assert argv[argv.index("alice@b") - 1] == io


GOOD = {"ran": "yes", "mnexec": "yes", "mininet": "2.3.0", "ovs": "ovs-vsctl (Open vSwitch) 3.1.0",
        "ovs_running": "yes", "tunnel": "ethernet", "tun_open": "yes", "python": "yes", "seen": "token"}
MINE = {"mininet": "2.3.0", "ovs": "ovs-vsctl (Open vSwitch) 3.1.0"}


@pytest.mark.parametrize(("changed", "words"), [
    ({"mnexec": "no"}, "has no Mininet"),
    ({"mininet": ""}, "has no Mininet"),
    ({"ovs": ""}, "has no Open vSwitch"),
    ({"mininet": "2.2.2"}, "runs Mininet '2.2.2', this machine '2.3.0'"),
    ({"ovs": "ovs-vsctl (Open vSwitch) 2.17.9"}, "runs Open vSwitch"),
    ({"ovs_running": "no"}, "Open vSwitch is not running"),
    ({"tunnel": "no"}, "does not allow ethernet tunnels \\(PermitTunnel no\\)"),
    ({"tunnel": ""}, "PermitTunnel unknown"),
    ({"tun_open": "no"}, "may not open /dev/net/tun there.*chmod 666 /dev/net/tun"),
    ({"foreign": "s1"}, "bridge named s1 that halab did not create"),
    ({"python": "no"}, "has no .*python"),
    ({"seen": ""}, "does not see the run directory /r"),
])
def test_each_thing_a_server_lacks_gets_its_own_error_naming_the_server(changed, words):
    servers._check_one("b", GOOD, MINE, "token", Path("/r"))  # all there: no error
    with pytest.raises(HalabError, match=words) as caught:
        servers._check_one("b", {**GOOD, **changed}, MINE, "token", Path("/r"))
    assert "Server b" in caught.value.problem and caught.value.fix


def test_what_the_server_says_tells_an_unreachable_server_from_a_sudo_asking_for_a_password(monkeypatch):
    def answer(stdout, stderr, code):
        monkeypatch.setattr(servers, "run_on", lambda *a, **k: subprocess.CompletedProcess([], code, stdout, stderr))

    answer("ran=yes\nmnexec=yes\n", "", 0)
    assert servers._facts("b", Path("/r/p"), ["s1"]) == {"ran": "yes", "mnexec": "yes"}
    answer("", "sudo: a password is required\n", 1)
    with pytest.raises(HalabError, match=r"sudo asks .* for a password"):
        servers._facts("b", Path("/r/p"), ["s1"])
    answer("", "ssh: connect to host b port 22: Connection refused\n", 255)
    with pytest.raises(HalabError, match=r"cannot be reached by ssh .*Connection refused"):
        servers._facts("b", Path("/r/p"), ["s1"])
    answer("mnexec=yes\n", "", 0)  # the script did not run through
    with pytest.raises(HalabError, match="cannot be reached"):
        servers._facts("b", Path("/r/p"), ["s1"])


def test_a_server_is_reached_by_name_or_address():
    with pytest.raises(HalabError, match=r"Server no-such-host\.invalid: no such host"):
        servers.address_towards("no-such-host.invalid")
    with pytest.raises(HalabError, match="No route from this machine to server localhost"):
        servers.address_towards("localhost")  # resolved (to loopback), then refused


def test_a_run_is_undone_on_a_server_only_by_a_run_id_of_halabs_shape(monkeypatch):
    asked = []
    monkeypatch.setattr(servers, "run_on", lambda server, line, timeout, shared: asked.append(line) or
                        subprocess.CompletedProcess([], 0, "process 7\nOVS bridge s1\n", ""))
    assert servers.undo_run("b", "20261128-1-2", ["s1-eth1"], (Path("/run/pg/20261128-1-2"),)) == (
        True, ["process 7 on b", "OVS bridge s1 on b"])
    assert "HALAB_RUN=20261128-1-2" in asked[0] and "s1-eth1" in asked[0] and "/run/pg/20261128-1-2" in asked[0]
    assert servers.undo_run("b", "x; rm -rf /", []) == (True, []) and len(asked) == 1
    monkeypatch.setattr(servers, "run_on", lambda server, line, timeout, shared:
                        subprocess.CompletedProcess([], 255, "", "Connection timed out"))
    reached, [line] = servers.undo_run("b", "r", [])
    assert not reached and line.startswith("server b: not reached, nothing removed there (Connection timed out)")
    assert "halab clean --forget b" in line


def test_a_node_on_another_server_is_stood_for_here_by_its_ssh_client():
    here = SimpleNamespace(pid=10, shell=SimpleNamespace(pid=9))
    there = SimpleNamespace(pid=10, shell=SimpleNamespace(pid=9), isRemote=True)
    assert not servers.is_remote(here) and servers.local_pid(here) == 10
    assert servers.is_remote(there) and servers.local_pid(there) == 9


class _Session:
    """An ssh client that has said `first` and ends when its input closes."""

    def __init__(self, first: bytes) -> None:
        read, write = os.pipe()
        os.write(write, first)
        os.close(write)
        self.stdout = os.fdopen(read, "rb")
        self.stdin = SimpleNamespace(closed=False)
        self.stdin.close = lambda: setattr(self.stdin, "closed", True)

    def wait(self, _timeout: float) -> int:
        return 0


def test_the_controllers_sockets_reach_each_server_over_the_users_own_ssh(monkeypatch, tmp_path):
    started: list[list[str]] = []

    def session(argv, held, stderr=None):
        started.append(argv)
        held.append(_Session(b"forwarding\n"))
        return held[-1]

    monkeypatch.setattr(servers, "_session", session)
    monkeypatch.setattr(servers, "ssh_user", lambda: "alice")
    held = servers.forward_sockets(ServerPlan((LOCAL, "b", "c")), "r1", Path("/run/halab-relay/r1"),
                                   ["fence", "assist"], tmp_path / "log")
    assert len(held) == 2 and [a[a.index("-T") + 1] for a in started] == ["alice@b", "alice@c"]
    argv = started[0]
    assert not any(word.startswith("Control") for word in argv)  # not the shared connection: its own
    assert argv[:4] == ["sudo", "-E", "-u", "alice"]
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "-R"] == [
        "/tmp/halab-r1-fence.sock:/run/halab-relay/r1/fence.sock",
        "/tmp/halab-r1-assist.sock:/run/halab-relay/r1/assist.sock"]
    assert "ExitOnForwardFailure=yes" in argv
    # the command there waits for both sockets, makes them root's, and removes them at the end
    there = shlex.split(argv[-1])[0]
    assert "test -S /tmp/halab-r1-fence.sock && test -S /tmp/halab-r1-assist.sock" in there
    assert "chown 0:0 /tmp/halab-r1-fence.sock /tmp/halab-r1-assist.sock && chmod 600" in there
    assert '[ "$(stat -c %u /tmp/halab-r1-fence.sock)" = "$(id -u alice)" ]' in there  # sshd's, not another user's
    assert there.endswith("cat; rm -f /tmp/halab-r1-fence.sock /tmp/halab-r1-assist.sock")


def test_a_server_that_refuses_the_sockets_gets_the_reason_and_no_session_is_kept(monkeypatch, tmp_path):
    held_here: list[_Session] = []

    def session(argv, held, stderr=None):
        stderr.write(b"Error: remote port forwarding failed for listen path /tmp/halab-r1-fence.sock\n")
        stderr.flush()
        held.append(_Session(b"" if "alice@c" in argv else b"forwarding\n"))
        held_here.append(held[-1])
        return held[-1]

    monkeypatch.setattr(servers, "_session", session)
    monkeypatch.setattr(servers, "ssh_user", lambda: "alice")
    with pytest.raises(HalabError, match=r"Server c did not take the controller's sockets over ssh \(Error: remote "
                                         r"port forwarding failed.*AllowStreamLocalForwarding yes"):
        servers.forward_sockets(ServerPlan(("b", "c")), "r1", Path("/run/x"), ["fence"], tmp_path / "log")
    assert len(held_here) == 2 and all(s.stdin.closed for s in held_here)


def test_the_runs_socket_directory_is_the_ssh_users_and_closed_to_everyone_else(monkeypatch, tmp_path):
    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path / "halab"))
    monkeypatch.setattr(servers, "ssh_user", lambda: "nobody")
    directory = servers.socket_dir("r1")
    assert directory == tmp_path / "halab-relay" / "r1"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700 and directory.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert stat.S_IMODE(directory.parent.stat().st_mode) == 0o711
    assert servers.socket_dir("r1") == directory  # made once


def test_the_scenarios_that_spread_name_the_nodes_place_may_put_elsewhere():
    from dataclasses import fields

    from harness.scenarios import SCENARIOS

    spreading = {n for n, s in SCENARIOS.items() if "servers" in {f.name for f in fields(s.options)}}
    assert spreading == {"active-standby", "active-active", "cluster", "reference", "three-tier", "sync"}
    for name in spreading:
        scenario = SCENARIOS[name]
        assert "client1" in scenario.nodes(scenario.options()), name  # the client that measures
    reference = SCENARIOS["reference"]
    assert {"lb1", "lb2", "web1", "web2", "s1"} <= set(reference.nodes(reference.options()))
    assert "web3" in reference.nodes(reference.options(web_servers=3))
    three_tier = SCENARIOS["three-tier"]
    assert {"db1", "db2", "web1", "web2", "s2"} <= set(three_tier.nodes(three_tier.options()))
    assert set(SCENARIOS["cluster"].nodes(SCENARIOS["cluster"].options())) >= {"node1", "node2", "gateway"}


def test_the_controller_listens_on_the_one_address_every_server_reaches(monkeypatch):
    ways = {"b": "10.1.0.1", "c": "10.1.0.1", "d": "10.2.0.1"}
    monkeypatch.setattr(servers, "address_towards", ways.get)
    assert servers.controller_address(ServerPlan((LOCAL, "b", "c"))) == "10.1.0.1"
    with pytest.raises(HalabError, match=r"addresses .*b through 10\.1\.0\.1, d through 10\.2\.0\.1") as caught:
        servers.controller_address(ServerPlan((LOCAL, "b", "d")))
    assert "one network" in caught.value.fix


def test_two_servers_besides_this_one_must_each_ssh_to_the_other(monkeypatch):
    """The cluster edition opens a link between two remote servers as an ssh tunnel from one to
    the other: one that cannot would fail halfway through the build."""
    asked = []

    def run_on(server, line, timeout):
        asked.append((server, line))
        refused = server == "c" and line.endswith("alice@b true")
        return subprocess.CompletedProcess([], 255 if refused else 0, "", "Permission denied (publickey)." * refused)

    monkeypatch.setattr(servers, "run_on", run_on)
    monkeypatch.setattr(servers, "ssh_user", lambda: "alice")
    servers._check_between(("b",))  # one remote server: nothing to check
    assert asked == []
    with pytest.raises(HalabError, match=r"Server c cannot ssh to server b as alice \(Permission denied") as caught:
        servers._check_between(("b", "c"))
    assert "ssh-copy-id alice@b" in caught.value.fix
    assert [server for server, _ in asked] == ["b", "c"] and "BatchMode=yes" in asked[0][1]


def test_a_clean_up_goes_over_a_connection_of_its_own():
    """A killed lab's shared ssh connection outlives it, and hangs on a server gone meanwhile: a
    clean-up through it waited 30 s, past ssh's ConnectTimeout."""
    shared, own = servers.ssh_argv("b", "true", user="alice"), servers.ssh_argv("b", "true", user="alice", shared=False)
    assert f"ControlPath={servers.COMMAND_PATH}" in shared and "ControlMaster=auto" in shared
    assert servers.COMMAND_PATH != servers.CONTROL_PATH   # not on the sessions of the cluster edition's hosts
    assert "ControlPath=none" in own and "ControlMaster=auto" not in own
    assert f"ConnectTimeout={servers.SSH_TIMEOUT_S}" in own


def test_programs_missing_on_a_server_are_named_with_the_server_and_their_packages(monkeypatch):
    from harness import preflight

    asked = []

    def run_on(server, command, timeout=30.0, input=None, shared=True):
        asked.append((server, command))
        return subprocess.CompletedProcess(command, 0, "lsyncd\n", "")

    monkeypatch.setattr(servers, "run_on", run_on)
    with pytest.raises(HalabError, match=r"package\(s\) lsyncd on server 10\.0\.0\.2\.") as found:
        preflight.require_programs({"rsync": "rsync", "lsyncd": "lsyncd"}, "10.0.0.2")
    assert "apt-get install lsyncd" in found.value.fix
    assert asked[0][0] == "10.0.0.2" and "command -v rsync" in asked[0][1] and "command -v lsyncd" in asked[0][1]
    monkeypatch.setattr(servers, "run_on", lambda *a, **k: subprocess.CompletedProcess("", 0, "", ""))
    preflight.require_programs({"rsync": "rsync"}, "10.0.0.2")   # all there: no error
