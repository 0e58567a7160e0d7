"""Lab files: the shipped ones load, options follow the command line, and every mistake is one
clear message naming the file, the key and the value (no root, no lab needed)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from harness import cli, labfile
from harness.errors import HalabError
from topologies import TOPOLOGIES


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_every_builtin_topology_ships_a_lab_file_that_loads(topology):
    spec = labfile.load(labfile.builtin(topology))
    topo = spec.topo()
    assert spec.topology == topology
    assert spec.probe.source in topo.roles
    assert spec.agents and all(a.hosts_in(topo) for a in spec.agents)


def test_agents_given_by_role_follow_the_host_counts():
    spec = labfile.with_overrides(labfile.load(labfile.builtin("active-active")), backends=5, clients=2)
    topo = spec.topo()
    assert spec.agents[0].hosts_in(topo) == tuple(f"backend{i}" for i in range(1, 6))
    assert topo.hosts_with_role("client") == ["client1", "client2"]


def test_agent_switches_the_vrrp_daemon_and_keeps_its_configuration():
    spec = labfile.load(labfile.builtin("active-standby"))
    swapped = labfile.with_overrides(spec, agent="keepalived")
    assert [a.program for a in swapped.agents] == ["responder", "keepalived", "keepalived"]
    assert [a.config for a in swapped.agents] == [a.config for a in spec.agents]


def test_assist_turns_it_on_for_every_vrrp_instance_and_for_the_lab():
    spec = labfile.load(labfile.builtin("active-standby"))
    assert not spec.assisted
    assisted = labfile.with_overrides(spec, assist=True)
    assert assisted.assisted and assisted.assist
    vrrp = [a for a in assisted.agents if a.program == "halab-vrrp"]
    assert vrrp and all(i["assist"] is True for a in vrrp for i in a.config["vrrp_instance"])
    cluster = labfile.with_overrides(labfile.load(labfile.builtin("cluster")), assist=True)
    assert cluster.assisted, "the heartbeat agents get the lab's assist socket"
    with pytest.raises(HalabError, match="--assist speeds up halab's VRRP and heartbeat agents"):
        labfile.with_overrides(labfile.load(labfile.builtin("active-active")), assist=True)


def test_keepalived_with_assist_is_refused_naming_the_fix(tmp_path):
    raw = tomllib.loads(labfile.builtin("active-standby").read_text())
    vrrp = next(a for a in raw["agent"] if a["program"] == "halab-vrrp")
    vrrp["program"] = "keepalived"
    for instance in vrrp["config"]["vrrp_instance"]:
        instance["assist"] = True
    with pytest.raises(HalabError, match="keepalived has no failover assist; run halab-vrrp, or remove assist"):
        labfile.load(_write(tmp_path, tomli_w.dumps(raw)))


@pytest.mark.parametrize("overrides, says", [
    ({"backends": 3}, "--backends does not apply to the active-standby topology"),
    ({"lb": "haproxy"}, "--lb applies to the active-active and three-tier topologies"),
    ({"clients": 0}, "--clients 0 is out of range"),
    ({"bw": -1.0}, "cannot be negative"),
])
def test_options_that_do_not_fit_are_refused(overrides, says):
    with pytest.raises(HalabError, match=says):
        labfile.with_overrides(labfile.load(labfile.builtin("active-standby")), **overrides)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return path


BASE = 'topology = "active-standby"\n[probe]\nfrom = "client1"\n'
TIERS = 'topology = "three-tier"\n[probe]\nfrom = "client1"\n'


@pytest.mark.parametrize("text, says", [
    ('topology = "ring"\n[probe]\nfrom = "client1"\n', "topology = 'ring' is not allowed"),
    (BASE + "colour = 1\n", "unknown key 'colour'"),
    (BASE.replace("client1", "client9"), "from = 'client9' is not a host of this lab"),
    (BASE + "[options]\nbackends = 3\n", "options (for active-standby): unknown key 'backends'"),
    (BASE + "[options]\npairs = 50\n", "pairs = 50 is not allowed; expected a count from 1 to 49"),
    (BASE + "[links]\nloss = 150\n", "loss = 150 is not allowed"),
    (BASE + '[[agent]]\nhosts = ["server7"]\nprogram = "responder"\n', "hosts = ['server7'] is not allowed"),
    (BASE + '[[agent]]\nrole = "server"\nprogram = "nginx"\n', "program = 'nginx' is not allowed"),
    (BASE + '[[agent]]\nrole = "server"\nhosts = ["server1"]\nprogram = "responder"\n', "not both or neither"),
    (BASE + '[[agent]]\nhosts = ["server1"]\nprogram = "halab-vrrp"\n'
            'config = { vrrp_instance = [{ name = "VI_1", interface = "server1-eth0", virtual_router_id = 51, '
            'priority = 300, virtual_ipaddress = ["10.0.0.100/24"] }] }\n', "priority = 300"),
    (BASE + '[[agent]]\nhosts = ["server1"]\nprogram = "responder"\nconfig = { port = 1 }\n',
     "takes no configuration"),
    (BASE + '[lb]\nkind = "sdn"\n', "only the active-active and three-tier topologies have a load balancer"),
    (BASE + '[database]\nreplication = "sync"\n', "database: only the three-tier topology has a database tier"),
    (TIERS + '[database]\nreplication = "semi"\n', "database: replication = 'semi' is not allowed; expected async"),
    (TIERS + '[database]\nfallback_timeout = 0.5\n', "fallback_timeout = 0.5 is not allowed; expected seconds "
                                                     "from 1.3"),
    (TIERS + '[database]\nmanager = "repmgr"\n', "manager = 'repmgr' is not allowed"),
    (TIERS + '[lb]\ncheck_interval = 0.01\n', "lb: check_interval = 0.01 is not allowed; expected seconds from 0.05"),
    (TIERS + '[lb]\ncheck_interval = "1s"\n', "lb: check_interval = '1s' is not allowed"),
    (TIERS + '[lb]\ncheck = 1\n', "lb: unknown key 'check'"),
])
def test_a_bad_lab_file_is_one_message_naming_file_key_and_value(tmp_path, text, says):
    path = _write(tmp_path, text)
    with pytest.raises(HalabError) as caught:
        labfile.load(path)
    assert str(path) in caught.value.problem
    assert says in caught.value.problem


def test_the_balancers_health_checks_take_the_interval_a_big_lab_needs(tmp_path):
    """Each backend checked every check_interval (and that long a timeout), by the switch's
    controller or by HAProxy: a lab of many backends on a small machine needs a longer one."""
    from harness import lb
    from harness.livelab import LiveLab

    assert labfile.load(labfile.builtin("active-active")).check_interval == 0.1
    raw = tomllib.loads(labfile.builtin("active-active").read_text())
    raw["lb"]["check_interval"] = 0.5
    spec = labfile.load(_write(tmp_path, tomli_w.dumps(raw)))
    assert spec.check_interval == 0.5
    live = object.__new__(LiveLab)
    live.spec, live.topo, live.daemons = spec, spec.topo(), []
    check = live._lb_config().services[0].health_check
    assert (check.interval, check.timeout) == (0.5, 0.5)
    assert lb.service(spec.topo()).health_check.interval == 0.1  # what scenarios use


def test_a_lab_file_never_carries_the_cluster_secret(tmp_path):
    cluster = tomllib.loads(labfile.builtin("cluster").read_text())
    cluster["agent"][1]["config"]["secret"] = "a-secret-that-would-sit-in-a-file"
    path = _write(tmp_path, tomli_w.dumps(cluster))
    with pytest.raises(HalabError, match="secret is set by the lab for each run; remove it") as caught:
        labfile.load(path)
    assert "a-secret-that-would" not in str(caught.value)


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(HalabError, match="no such lab file"):
        labfile.load(tmp_path / "nope.toml")
    with pytest.raises(HalabError, match="not valid TOML"):
        labfile.load(_write(tmp_path, "topology = \n"))


def test_halab_up_refuses_bad_input_in_one_line_before_touching_anything(tmp_path, capsys):
    assert cli.main(["up", "active-standby", "--backends", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("halab: --backends does not apply") and "Traceback" not in err
    assert cli.main(["up"]) == 2
    assert "needs a topology or a lab file" in capsys.readouterr().err
    assert cli.main(["up", "-f", str(_write(tmp_path, BASE + "x = 1\n"))]) == 2
    assert "unknown key 'x'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["run", "-f", "labs/cluster.toml", "--fault", "restore"], "mends; it breaks nothing"),
    (["run", "-f", "labs/cluster.toml", "--fault", "melt node1"], "invalid choice: 'melt'"),
    (["run", "-f", "labs/cluster.toml"], "needs --fault"),
    (["run", "-f", "labs/nope.toml", "--fault", "crash node1"], "no such lab file"),
])
def test_run_with_a_lab_file_refuses_what_it_cannot_measure(argv, says, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert cli.main(argv) == 2
    assert says in capsys.readouterr().err
