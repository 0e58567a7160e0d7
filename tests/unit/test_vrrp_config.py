"""The agent's TOML: what it accepts, and the error that names the key, the value and the rule."""

import re
import tomllib
from pathlib import Path

import pytest

from ha.vrrp.config import ConfigError, TrackInterface, load, parse

GOOD = """
event_log = "/tmp/events.jsonl"

[[vrrp_instance]]
name = "VI_1"
interface = "server1-eth0"
virtual_router_id = 51
priority = 200
advert_int = 0.1
virtual_ipaddress = ["10.0.0.100/24"]
preempt_delay = 2
unicast_peer = ["10.0.0.2"]
track_interface = ["server1-eth1", {interface = "server1-eth2", weight = -50}]
track_script = [{script = "/bin/check --fast", interval = 0.5, fall = 2, rise = 3, weight = -20}]
"""


def test_a_full_instance(tmp_path):
    path = tmp_path / "vrrp.toml"
    path.write_text(GOOD)
    cfg = load(path)
    inst = cfg.instances[0]
    assert cfg.event_log == Path("/tmp/events.jsonl")
    assert (inst.virtual_router_id, inst.priority, inst.advert_int, inst.preempt) == (51, 200, 0.1, True)
    assert str(inst.virtual_ipaddress[0]) == "10.0.0.100/24" and inst.family == 4
    assert inst.track_interface == (TrackInterface("server1-eth1"), TrackInterface("server1-eth2", -50))
    script = inst.track_script[0]
    assert script.argv == ("/bin/check", "--fast") and (script.fall, script.rise, script.weight) == (2, 3, -20)
    assert script.timeout == 0.5
    assert inst.checksum_with_pseudo_header and inst.garp_master_repeat == 5


def minimal(**extra) -> dict:
    inst = {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddress": ["10.0.0.100/24"]}
    return {"vrrp_instance": [{**inst, **extra}]}


@pytest.mark.parametrize(("extra", "message"), [
    ({"virtual_router_id": 0}, "virtual_router_id = 0 is not allowed; expected an integer from 1 to 255"),
    ({"priority": 256}, "priority = 256"),
    ({"priority": True}, "priority = True"),
    ({"advert_int": 0.005}, "advert_int = 0.005"),
    ({"advert_int": 0.015}, "centiseconds"),
    ({"virtual_ipaddress": ["10.0.0.300/24"]}, "'10.0.0.300/24' is not an address/prefix"),
    ({"virtual_ipaddress": ["10.0.0.100/24", "fd00::1/64"]}, "mixes IPv4 and IPv6"),
    ({"virtual_ipaddress": []}, "virtual_ipaddress = []"),
    ({"unicast_peer": ["nope"]}, "unicast_peer entry 'nope'"),
    ({"advert_intt": 1}, "unknown key 'advert_intt'; allowed keys: accept, advert_int"),
    ({"track_script": [{"script": "x", "fall": 0}]}, "fall = 0"),
    ({"track_script": [{"scrpt": "x"}]}, "unknown key 'scrpt'"),
    ({"track_interface": [7]}, "track_interface entry 7"),
    ({"track_interface": [{"interface": "eth1", "weight": 300}]}, "weight = 300"),
])
def test_errors_name_the_key_the_value_and_the_rule(extra, message):
    with pytest.raises(ConfigError, match=None) as err:
        parse(minimal(**extra))
    assert message in str(err.value)
    assert "vrrp_instance 'VI_1'" in str(err.value) or "vrrp_instance[0]" in str(err.value)


def test_missing_and_duplicate_things():
    with pytest.raises(ConfigError, match="at least one"):
        parse({})
    with pytest.raises(ConfigError, match="missing key 'virtual_router_id'"):
        parse({"vrrp_instance": [{"name": "A", "interface": "eth0", "virtual_ipaddress": ["10.0.0.1/24"]}]})
    two = minimal()
    two["vrrp_instance"].append(dict(two["vrrp_instance"][0]))
    with pytest.raises(ConfigError, match="names must be unique"):
        parse(two)
    two["vrrp_instance"][1]["name"] = "VI_2"
    with pytest.raises(ConfigError, match="same virtual_router_id"):
        parse(two)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[vrrp_instance]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


@pytest.mark.parametrize(("content", "message"), [
    (None, "is a directory"),
    (b"\xff\xfe[[vrrp_instance]]", "not UTF-8"),
    (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply|not valid TOML"),
    (b"x = 'unterminated", "not valid TOML"),
])
def test_files_that_are_not_configurations_are_named_not_tracebacks(tmp_path, content, message):
    path = tmp_path / "vrrp.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load(path)


def test_keepalived_users_state_line_is_explained():
    raw = tomllib.loads(GOOD.replace('name = "VI_1"', 'name = "VI_1"\nstate = "MASTER"'))
    with pytest.raises(ConfigError, match=r"no configured state.*priority"):
        parse(raw)


@pytest.mark.parametrize(("change", "message"), [
    (('interface = "server1-eth0"', 'interface = "../all"'), "interface = '../all'"),
    (('priority = 200', 'priority = 200\nuse_vmac = "server1-eth0"'), "names an interface the instance uses"),
    (('unicast_peer = ["10.0.0.2"]', 'unicast_peer = ["fd00::2"]'), "IPv6, the instance's virtual_ipaddress IPv4"),
    (('script = "/bin/check --fast"', 'script = "check \\"web"'), "not a command line"),
])
def test_dangerous_or_impossible_values_are_refused_by_name(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(tomllib.loads(GOOD.replace(*change)))
