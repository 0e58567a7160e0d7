"""The agent's TOML: what it accepts, and the error that names the key, the value and the rule."""

import re
import tomllib
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_interface
from pathlib import Path

import pytest

from ha.vrrp.config import ConfigError, TrackInterface, TrackScript, check, dump, load, parse

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

#: What every message about an instance starts with: the file (parse's default source) and the instance.
AT = "config: vrrp_instance 'VI_1': "
INTERFACE = "an interface name (1 to 15 characters, no '/', spaces or ':')"
WEIGHT = "an integer from -253 to 253 (0: FAULT while failed)"


def test_a_full_instance(tmp_path):
    """A file with the common keys loads into the values it says."""
    path = tmp_path / "vrrp.toml"
    path.write_text(GOOD)
    cfg = load(path)
    inst = cfg.instances[0]
    assert cfg.event_log == Path("/tmp/events.jsonl")
    assert (inst.virtual_router_id, inst.priority, inst.advert_int, inst.preempt) == (51, 200, 0.1, True)
    assert str(inst.virtual_ipaddress[0]) == "10.0.0.100/24" and inst.family == 4
    assert inst.track_interface == (TrackInterface("server1-eth1", weight=0), TrackInterface("server1-eth2", -50))
    assert inst.track_interface[0].weight == 0  # a bare name: FAULT while down
    script = inst.track_script[0]
    assert script.argv == ("/bin/check", "--fast") and (script.fall, script.rise, script.weight) == (2, 3, -20)
    assert script.timeout == 0.5
    assert inst.checksum_with_pseudo_header and inst.garp_master_repeat == 5


def minimal(**extra) -> dict:
    inst = {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddress": ["10.0.0.100/24"]}
    return {"vrrp_instance": [{**inst, **extra}]}


def refusal(raw: dict, *args) -> str:
    with pytest.raises(ConfigError) as err:
        parse(raw, *args)
    return str(err.value)


# --- defaults -------------------------------------------------------------------------------------------------

def test_the_documented_defaults_when_a_key_is_absent():
    """An instance with only the required keys gets keepalived's defaults, literally."""
    cfg = parse(minimal())
    inst = cfg.instances[0]
    assert (cfg.event_log, cfg.realtime_priority) == (None, None)
    assert (inst.name, inst.interface, inst.virtual_router_id) == ("VI_1", "eth0", 51)
    assert inst.virtual_ipaddress == (ip_interface("10.0.0.100/24"),)
    assert inst.priority == 100
    assert inst.advert_int == 1.0
    assert inst.preempt is True
    assert inst.preempt_delay == 0.0
    assert inst.accept is True
    assert inst.unicast_peer == ()
    assert inst.notify is None
    assert inst.garp_master_repeat == 5
    assert inst.garp_master_delay == 5.0
    assert inst.garp_lower_prio_delay == 5.0
    assert inst.checksum_with_pseudo_header is True
    assert inst.track_interface == ()
    assert inst.track_script == ()
    assert inst.use_vmac is None


def test_garp_lower_prio_delay_defaults_to_garp_master_delay():
    """keepalived's default: the lower-priority GARP delay follows garp_master_delay when not given."""
    assert parse(minimal(garp_master_delay=2)).instances[0].garp_lower_prio_delay == 2.0
    assert parse(minimal(garp_master_delay=2, garp_lower_prio_delay=3)).instances[0].garp_lower_prio_delay == 3.0


def test_track_script_defaults():
    """A track script with only `script`: every second, 1 s timeout, weight 0 (FAULT), fall and rise 1."""
    script = parse(minimal(track_script=[{"script": "/bin/check"}])).instances[0].track_script
    assert script == (TrackScript(argv=("/bin/check",), interval=1.0, timeout=1.0, weight=0, fall=1, rise=1),)


def test_track_script_timeout_defaults_to_its_interval():
    """A script that runs every 5 s may take up to 5 s unless its timeout says otherwise."""
    script = parse(minimal(track_script=[{"script": "/bin/check", "interval": 5}])).instances[0].track_script[0]
    assert (script.interval, script.timeout) == (5.0, 5.0)


def test_a_tracked_interface_table_without_weight_means_fault():
    """`{interface = "eth1"}` is the same as the bare name: weight 0, FAULT while down."""
    tracked = parse(minimal(track_interface=[{"interface": "eth1"}, "eth2"])).instances[0].track_interface
    assert [(t.interface, t.weight) for t in tracked] == [("eth1", 0), ("eth2", 0)]


# --- accepted values: each bound, and a value other than the default ------------------------------------------

@pytest.mark.parametrize(("extra", "attribute", "expected"), [
    ({"interface": "a" * 15}, "interface", "a" * 15),
    ({"virtual_router_id": 1}, "virtual_router_id", 1),
    ({"virtual_router_id": 255}, "virtual_router_id", 255),
    ({"priority": 1}, "priority", 1),
    ({"priority": 255}, "priority", 255),
    ({"advert_int": 0.01}, "advert_int", 0.01),
    ({"advert_int": 40.95}, "advert_int", 40.95),
    ({"advert_int": 3}, "advert_int", 3.0),
    ({"preempt": False}, "preempt", False),
    ({"preempt_delay": 0}, "preempt_delay", 0.0),
    ({"preempt_delay": 1000}, "preempt_delay", 1000.0),
    ({"preempt_delay": 2.5}, "preempt_delay", 2.5),
    ({"accept": False}, "accept", False),
    ({"notify": "/usr/local/bin/notify"}, "notify", "/usr/local/bin/notify"),
    ({"garp_master_repeat": 0}, "garp_master_repeat", 0),
    ({"garp_master_repeat": 100}, "garp_master_repeat", 100),
    ({"garp_master_delay": 0}, "garp_master_delay", 0.0),
    ({"garp_master_delay": 1000}, "garp_master_delay", 1000.0),
    ({"garp_lower_prio_delay": 0}, "garp_lower_prio_delay", 0.0),
    ({"garp_lower_prio_delay": 1000}, "garp_lower_prio_delay", 1000.0),
    ({"checksum_with_pseudo_header": False}, "checksum_with_pseudo_header", False),
    ({"unicast_peer": ["10.0.0.2", "10.0.0.3"]}, "unicast_peer", (IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3"))),
    ({"virtual_ipaddress": ["fd00::100/64"], "unicast_peer": ["fd00::2"]}, "unicast_peer", (IPv6Address("fd00::2"),)),
    ({"virtual_ipaddress": ["10.0.0.100/24", "10.0.1.100/24"]}, "virtual_ipaddress",
     (ip_interface("10.0.0.100/24"), ip_interface("10.0.1.100/24"))),
    ({"use_vmac": False}, "use_vmac", None),
    ({"use_vmac": True}, "use_vmac", "vrrp.51"),
    ({"use_vmac": True, "virtual_ipaddress": ["fd00::100/64"]}, "use_vmac", "vrrp6.51"),
    ({"use_vmac": "vmac51"}, "use_vmac", "vmac51"),
    ({"track_interface": [{"interface": "eth1", "weight": -253}]}, "track_interface", (TrackInterface("eth1", -253),)),
    ({"track_interface": [{"interface": "eth1", "weight": 253}]}, "track_interface", (TrackInterface("eth1", 253),)),
])
def test_each_bound_and_a_non_default_value_is_accepted(extra, attribute, expected):
    """The values at each end of a key's range are allowed, and a given value is the one the agent uses."""
    assert getattr(parse(minimal(**extra)).instances[0], attribute) == expected


@pytest.mark.parametrize(("keys", "expected"), [
    ({"interval": 0.01}, {"interval": 0.01, "timeout": 0.01}),
    ({"interval": 3600}, {"interval": 3600.0, "timeout": 3600.0}),
    ({"interval": 2, "timeout": 0.01}, {"interval": 2.0, "timeout": 0.01}),
    ({"timeout": 3600}, {"timeout": 3600.0}),
    ({"weight": -253}, {"weight": -253}),
    ({"weight": 253}, {"weight": 253}),
    ({"fall": 1, "rise": 1}, {"fall": 1, "rise": 1}),
    ({"fall": 100, "rise": 100}, {"fall": 100, "rise": 100}),
    ({"script": "/bin/check 'a b'"}, {"argv": ("/bin/check", "a b")}),
])
def test_track_script_bounds_are_accepted(keys, expected):
    """A track script's keys accept each end of their range."""
    script = parse(minimal(track_script=[{"script": "/bin/check", **keys}])).instances[0].track_script[0]
    assert {key: getattr(script, key) for key in expected} == expected


@pytest.mark.parametrize(("extra", "expected"), [
    ({"event_log": "/run/halab/vrrp.jsonl"}, (Path("/run/halab/vrrp.jsonl"), None)),
    ({"event_log": ""}, (None, None)),
    ({"realtime_priority": 1}, (None, 1)),
    ({"realtime_priority": 99}, (None, 99)),
])
def test_top_level_keys_are_accepted(extra, expected):
    """The optional top-level keys: an event log path ("" means none) and a SCHED_RR priority from 1 to 99."""
    cfg = parse({**minimal(), **extra})
    assert (cfg.event_log, cfg.realtime_priority) == expected


def test_instances_may_share_a_vrid_on_other_interfaces_or_families():
    """The VRID is unique per interface and family only; vrrp.51 and vrrp6.51 do not collide."""
    raw = minimal(use_vmac=True)
    raw["vrrp_instance"] += [
        {**raw["vrrp_instance"][0], "name": "VI_6", "virtual_ipaddress": ["fd00::100/64"]},
        {**raw["vrrp_instance"][0], "name": "VI_2", "interface": "eth1", "use_vmac": False},
    ]
    assert [i.use_vmac for i in parse(raw).instances] == ["vrrp.51", "vrrp6.51", None]


# --- refused values: a wrong type, just outside each bound, unknown keys ----------------------------------------

@pytest.mark.parametrize(("extra", "message"), [
    ({"interface": "a" * 16}, f"interface = '{'a' * 16}' is not allowed; expected {INTERFACE}"),
    ({"interface": 7}, f"interface = 7 is not allowed; expected {INTERFACE}"),
    ({"interface": "../all"}, f"interface = '../all' is not allowed; expected {INTERFACE}"),
    ({"virtual_router_id": 0}, "virtual_router_id = 0 is not allowed; expected an integer from 1 to 255"),
    ({"virtual_router_id": 256}, "virtual_router_id = 256 is not allowed; expected an integer from 1 to 255"),
    ({"virtual_router_id": "51"}, "virtual_router_id = '51' is not allowed; expected an integer from 1 to 255"),
    ({"priority": 0}, "priority = 0 is not allowed; expected an integer from 1 to 255 (255: the address owner)"),
    ({"priority": 256}, "priority = 256 is not allowed; expected an integer from 1 to 255 (255: the address owner)"),
    ({"priority": True}, "priority = True is not allowed; expected an integer from 1 to 255 (255: the address owner)"),
    ({"priority": 1.0}, "priority = 1.0 is not allowed; expected an integer from 1 to 255 (255: the address owner)"),
    ({"advert_int": 0.009}, "advert_int = 0.009 is not allowed; expected seconds from 0.01 to 40.95"),
    ({"advert_int": 40.96}, "advert_int = 40.96 is not allowed; expected seconds from 0.01 to 40.95"),
    ({"advert_int": "1"}, "advert_int = '1' is not allowed; expected seconds from 0.01 to 40.95"),
    ({"advert_int": 0.015}, "advert_int = 0.015 is not allowed; VRRPv3 counts in centiseconds (0.01 s steps)"),
    ({"preempt": "yes"}, "preempt = 'yes' is not allowed; expected true or false"),
    ({"preempt_delay": -0.5}, "preempt_delay = -0.5 is not allowed; expected seconds from 0 to 1000"),
    ({"preempt_delay": 1000.5}, "preempt_delay = 1000.5 is not allowed; expected seconds from 0 to 1000"),
    ({"preempt_delay": "2"}, "preempt_delay = '2' is not allowed; expected seconds from 0 to 1000"),
    ({"accept": 1}, "accept = 1 is not allowed; expected true or false"),
    ({"notify": 7}, "notify = 7 is not allowed; expected a command path"),
    ({"garp_master_repeat": -1}, "garp_master_repeat = -1 is not allowed; expected an integer from 0 to 100"),
    ({"garp_master_repeat": 101}, "garp_master_repeat = 101 is not allowed; expected an integer from 0 to 100"),
    ({"garp_master_repeat": 5.0}, "garp_master_repeat = 5.0 is not allowed; expected an integer from 0 to 100"),
    ({"garp_master_delay": -0.5}, "garp_master_delay = -0.5 is not allowed; expected seconds from 0 to 1000"),
    ({"garp_master_delay": 1000.5}, "garp_master_delay = 1000.5 is not allowed; expected seconds from 0 to 1000"),
    ({"garp_master_delay": "5"}, "garp_master_delay = '5' is not allowed; expected seconds from 0 to 1000"),
    ({"garp_lower_prio_delay": -0.5}, "garp_lower_prio_delay = -0.5 is not allowed; expected seconds from 0 to 1000"),
    ({"garp_lower_prio_delay": 1000.5},
     "garp_lower_prio_delay = 1000.5 is not allowed; expected seconds from 0 to 1000"),
    ({"garp_lower_prio_delay": "5"}, "garp_lower_prio_delay = '5' is not allowed; expected seconds from 0 to 1000"),
    ({"checksum_with_pseudo_header": "no"},
     "checksum_with_pseudo_header = 'no' is not allowed; expected true (keepalived's default) or false (RFC 9568)"),
    ({"virtual_ipaddress": []},
     'virtual_ipaddress = [] is not allowed; expected a non-empty list like ["10.0.0.100/24"]'),
    ({"virtual_ipaddress": "10.0.0.100/24"},
     "virtual_ipaddress = '10.0.0.100/24' is not allowed; expected a non-empty list like [\"10.0.0.100/24\"]"),
    ({"virtual_ipaddress": ["10.0.0.300/24"]},
     "virtual_ipaddress entry '10.0.0.300/24' is not an address/prefix like \"10.0.0.100/24\" or \"fd00::100/64\""),
    ({"virtual_ipaddress": ["10.0.0.100/24", "fd00::1/64"]},
     "virtual_ipaddress mixes IPv4 and IPv6; use one instance per family"),
    ({"unicast_peer": "10.0.0.2"}, "unicast_peer = '10.0.0.2' is not allowed; expected a list of addresses"),
    ({"unicast_peer": ["nope"]}, "unicast_peer entry 'nope' is not an IP address"),
    ({"unicast_peer": ["fd00::2"]},
     "unicast_peer entry 'fd00::2' is IPv6, the instance's virtual_ipaddress IPv4; use peers of the same family"),
    ({"use_vmac": "a/b"}, "use_vmac = 'a/b' is not allowed; expected true, false or an interface name"),
    ({"use_vmac": 7}, "use_vmac = 7 is not allowed; expected true, false or an interface name"),
    ({"use_vmac": "eth0"}, "use_vmac = 'eth0' names an interface the instance uses; the virtual-MAC interface is "
                           "created and deleted by the agent: give it a name of its own"),
    ({"use_vmac": "eth1", "track_interface": ["eth1"]},
     "use_vmac = 'eth1' names an interface the instance uses; the virtual-MAC interface is "
     "created and deleted by the agent: give it a name of its own"),
])
def test_instance_errors_name_the_key_the_value_and_the_rule(extra, message):
    """One line: the file and instance, the key, the value given and what is allowed instead."""
    assert refusal(minimal(**extra)) == AT + message


@pytest.mark.parametrize(("tracked", "message"), [
    ("eth1", "track_interface = 'eth1' is not allowed; expected a list"),
    ([7], 'track_interface entry 7 is not an interface name or {interface = "eth1", weight = -20}'),
    (["a/b"], "track_interface entry 'a/b' is not an interface name or {interface = \"eth1\", weight = -20}"),
    ([{"interface": "eth1", "weight": -254}], f"weight = -254 is not allowed; expected {WEIGHT}"),
    ([{"interface": "eth1", "weight": 254}], f"weight = 254 is not allowed; expected {WEIGHT}"),
    ([{"interface": "eth1", "weight": "-20"}], f"weight = '-20' is not allowed; expected {WEIGHT}"),
    ([{"weight": -20}], f"missing key 'interface' ({INTERFACE})"),
    ([{"interface": "a/b"}], f"interface = 'a/b' is not allowed; expected {INTERFACE}"),
    ([{"interface": "eth1", "wieght": 1}],
     "track_interface entry: unknown key 'wieght'; allowed keys: interface, weight"),
])
def test_track_interface_errors(tracked, message):
    """A bad tracked interface is refused with the instance, the key, the value and the rule."""
    assert refusal(minimal(track_interface=tracked)) == AT + message


@pytest.mark.parametrize(("scripts", "message"), [
    ({"script": "x"}, "track_script = {'script': 'x'} is not allowed; expected a list of tables"),
    (["/bin/check"], 'track_script[0]: must be a table like {script = "/usr/bin/check", interval = 1}'),
    ([{}], "track_script[0]: missing key 'script' (a command line)"),
    ([{"script": "  "}], "track_script[0]: script = '  ' is not allowed; expected a command line"),
    ([{"script": "x", "interval": 0.009}], "track_script[0]: interval = 0.009 is not allowed; expected seconds from "
                                           "0.01 to 3600"),
    ([{"script": "x", "interval": 3600.5}], "track_script[0]: interval = 3600.5 is not allowed; expected seconds from "
                                            "0.01 to 3600"),
    ([{"script": "x", "interval": "1"}], "track_script[0]: interval = '1' is not allowed; expected seconds from "
                                         "0.01 to 3600"),
    ([{"script": "x", "timeout": 0.009}], "track_script[0]: timeout = 0.009 is not allowed; expected seconds from "
                                          "0.01 to 3600"),
    ([{"script": "x", "timeout": 3600.5}], "track_script[0]: timeout = 3600.5 is not allowed; expected seconds from "
                                           "0.01 to 3600"),
    ([{"script": "x", "timeout": "1"}], "track_script[0]: timeout = '1' is not allowed; expected seconds from "
                                        "0.01 to 3600"),
    ([{"script": "x", "weight": -254}], f"track_script[0]: weight = -254 is not allowed; expected {WEIGHT}"),
    ([{"script": "x", "weight": 254}], f"track_script[0]: weight = 254 is not allowed; expected {WEIGHT}"),
    ([{"script": "x", "weight": 1.5}], f"track_script[0]: weight = 1.5 is not allowed; expected {WEIGHT}"),
    ([{"script": "x", "fall": 0}], "track_script[0]: fall = 0 is not allowed; expected 1 to 100"),
    ([{"script": "x", "fall": 101}], "track_script[0]: fall = 101 is not allowed; expected 1 to 100"),
    ([{"script": "x", "fall": "2"}], "track_script[0]: fall = '2' is not allowed; expected 1 to 100"),
    ([{"script": "x", "rise": 0}], "track_script[0]: rise = 0 is not allowed; expected 1 to 100"),
    ([{"script": "x", "rise": 101}], "track_script[0]: rise = 101 is not allowed; expected 1 to 100"),
    ([{"script": "x", "rise": "2"}], "track_script[0]: rise = '2' is not allowed; expected 1 to 100"),
    ([{"script": "x"}, {"script": "y", "rise": 0}], "track_script[1]: rise = 0 is not allowed; expected 1 to 100"),
    ([{"scrpt": "x"}], "track_script[0]: unknown key 'scrpt'; allowed keys: fall, interval, rise, script, timeout, "
                       "weight"),
    ([{"script": 'check "web'}], "track_script[0]: script = 'check \"web' is not a command line (No closing "
                                 "quotation); check its quotes"),
])
def test_track_script_errors(scripts, message):
    """A bad track script is refused with the instance, which script, the key, the value and the rule."""
    assert refusal(minimal(track_script=scripts)) == AT + message


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "config: needs at least one [[vrrp_instance]] table"),
    ({"vrrp_instance": {"name": "VI_1"}}, "config: needs at least one [[vrrp_instance]] table"),
    ({"vrrp_instance": [7]}, "config: vrrp_instance[0]: must be a table"),
    ({"vrrp_instances": []}, "config: unknown key 'vrrp_instances'; allowed keys: assist_socket, event_log, "
                             "realtime_priority, vrrp_instance"),
    ({**minimal(), "assist_socket": "run/assist.sock"},
     "config: assist_socket = 'run/assist.sock' is not allowed; expected an absolute path shorter than 108 bytes: "
     "the controller's assist socket"),
    (minimal(virtual_ipaddress=["fd00::100/64"], assist=True),
     "config: vrrp_instance 'VI_1': assist = true works for IPv4 instances only (the controller finds a master's "
     "switch port by ARP); remove it from this IPv6 instance"),
    ({**minimal(), "event_log": 7}, "config: event_log = 7: expected a file path (string)"),
    ({**minimal(), "realtime_priority": 0},
     "config: realtime_priority = 0 is not allowed; expected a SCHED_RR priority from 1 to 99 (or leave it out)"),
    ({**minimal(), "realtime_priority": 100},
     "config: realtime_priority = 100 is not allowed; expected a SCHED_RR priority from 1 to 99 (or leave it out)"),
    (minimal(name=""), "config: vrrp_instance[0]: name = '' is not allowed; expected a non-empty string"),
    (minimal(advert_intt=1),
     "config: vrrp_instance[0]: unknown key 'advert_intt'; allowed keys: accept, advert_int, "
     "assist, checksum_with_pseudo_header, garp_lower_prio_delay, garp_master_delay, garp_master_repeat, interface, "
     "name, notify, preempt, preempt_delay, priority, track_interface, track_script, unicast_peer, use_vmac, "
     "virtual_ipaddress, virtual_router_id"),
    (minimal(state="MASTER"),
     "config: vrrp_instance[0]: state = 'MASTER': halab-vrrp has no configured state; every router starts as BACKUP "
     "and the election makes the highest priority MASTER (keepalived treats `state` as a hint too); remove the line "
     "and give the master the higher priority"),
    ({"vrrp_instance": [{"name": "A", "interface": "eth0", "virtual_ipaddress": ["10.0.0.1/24"]}]},
     "config: vrrp_instance 'A': missing key 'virtual_router_id' (an integer from 1 to 255)"),
    ({"vrrp_instance": [{"name": "A", "virtual_router_id": 1, "virtual_ipaddress": ["10.0.0.1/24"]}]},
     f"config: vrrp_instance 'A': missing key 'interface' ({INTERFACE})"),
    ({"vrrp_instance": [{"name": "A", "interface": "eth0", "virtual_router_id": 1}]},
     "config: vrrp_instance 'A': missing key 'virtual_ipaddress' (a non-empty list like [\"10.0.0.100/24\"])"),
])
def test_top_level_errors_name_the_file_and_the_key(raw, message):
    """Mistakes outside an instance are named too, each on one line starting with the file."""
    assert refusal(raw) == message


def two(first: dict | None = None, **second) -> dict:
    """Two instances: the minimal one (with `first`'s keys) and a copy with `second`'s keys."""
    raw = minimal(**(first or {}))
    raw["vrrp_instance"].append({**raw["vrrp_instance"][0], **second})
    return raw


@pytest.mark.parametrize(("raw", "message"), [
    (two(), "config: vrrp_instance names must be unique, got ['VI_1', 'VI_1']"),
    (two(name="VI_2"), "config: two instances use the same virtual_router_id on one interface and family"),
    (two({"use_vmac": "vmac1"}, name="VI_2", virtual_router_id=52),
     "config: two instances name the same use_vmac interface"),
])
def test_conflicts_between_instances(raw, message):
    """Two instances that would fight over a VRID or a virtual-MAC interface are refused."""
    assert refusal(raw) == message


def test_the_source_names_the_file_in_every_message():
    """parse(raw, source) puts the caller's file name where "config" would be, at every level."""
    assert refusal({}, "/etc/vrrp.toml") == "/etc/vrrp.toml: needs at least one [[vrrp_instance]] table"
    assert refusal({**minimal(), "x": 1}, "/etc/vrrp.toml").startswith("/etc/vrrp.toml: unknown key 'x'")
    assert refusal(minimal(priority=0), "/etc/vrrp.toml").startswith("/etc/vrrp.toml: vrrp_instance 'VI_1': priority")
    assert refusal({**minimal(), "realtime_priority": 0}, "/etc/vrrp.toml").startswith(
        "/etc/vrrp.toml: realtime_priority = 0")
    assert refusal(two({"use_vmac": "vmac1"}, name="VI_2", virtual_router_id=52), "/etc/vrrp.toml") == (
        "/etc/vrrp.toml: two instances name the same use_vmac interface")


# --- files --------------------------------------------------------------------------------------------------------

def test_unreadable_files(tmp_path):
    """A missing file or broken TOML is one line naming the file, not a traceback."""
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[vrrp_instance]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def test_load_names_the_file_in_value_errors(tmp_path):
    """An error in a loaded file starts with the file's path, so the operator knows which file to fix."""
    path = tmp_path / "vrrp.toml"
    path.write_text(GOOD.replace("priority = 200", "priority = 0"))
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: vrrp_instance 'VI_1': priority = 0 is not allowed")


@pytest.mark.parametrize(("content", "message"), [
    (None, "is a directory"),
    (b"\xff\xfe[[vrrp_instance]]", "not UTF-8"),
    (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply|not valid TOML"),
    (b"x = 'unterminated", "not valid TOML"),
])
def test_files_that_are_not_configurations_are_named_not_tracebacks(tmp_path, content, message):
    """Whatever the file holds, the operator gets a ConfigError naming it."""
    path = tmp_path / "vrrp.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load(path)


def test_keepalived_users_state_line_is_explained():
    """keepalived's `state MASTER` has no meaning here; the message says what to do instead."""
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
    """Values that would walk a path or cannot work are refused before anything starts."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(tomllib.loads(GOOD.replace(*change)))


# --- dump: how the harness hands a daemon its configuration ----------------------------------------------------

EVERY_KEY = """
event_log = "/run/halab/vrrp.jsonl"
realtime_priority = 10
assist_socket = "/run/halab/assist-lab.sock"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 200
advert_int = 0.25
virtual_ipaddress = ["10.0.0.100/24", "10.0.1.100/24"]
preempt = false
preempt_delay = 2.5
accept = false
unicast_peer = ["10.0.0.2", "10.0.0.3"]
notify = "/usr/local/bin/notify --all"
garp_master_repeat = 3
garp_master_delay = 7.5
garp_lower_prio_delay = 9
checksum_with_pseudo_header = false
track_interface = ["eth1", {interface = "eth2", weight = -50}]
track_script = [{script = "/bin/check 'a b' --fast", interval = 0.5, timeout = 2, weight = -20, fall = 2, rise = 3}]
use_vmac = "vmac51"
assist = true

[[vrrp_instance]]
name = "VI_6"
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["fd00::100/64"]
unicast_peer = ["fd00::2"]
use_vmac = true
"""


@pytest.mark.parametrize("raw", [tomllib.loads(EVERY_KEY), minimal()], ids=["every-key", "defaults"])
def test_dump_then_parse_gives_the_same_configuration(raw):
    """What the harness writes for a daemon is read back exactly: every key, non-default or default."""
    cfg = parse(raw)
    assert parse(tomllib.loads(dump(cfg))) == cfg
    assert check(cfg) == cfg


def test_every_key_example_is_really_non_default():
    """The round-trip above only proves something if each key differs from its default."""
    inst = parse(tomllib.loads(EVERY_KEY)).instances[0]
    defaults = parse(minimal()).instances[0]
    same = [k for k in vars(inst) if k not in ("name", "interface", "virtual_router_id", "virtual_ipaddress")
            and getattr(inst, k) == getattr(defaults, k)]
    assert same == []
    assert inst.track_script[0].argv == ("/bin/check", "a b", "--fast")
    assert inst.notify == "/usr/local/bin/notify --all"


def test_check_refuses_a_configuration_built_wrong_in_code():
    """A configuration built in code gets the same checks as a file, named as built by halab."""
    cfg = parse(minimal())
    bad = replace(cfg, instances=(replace(cfg.instances[0], priority=0),))
    with pytest.raises(ConfigError) as err:
        check(bad)
    assert str(err.value) == ("the configuration built by halab: vrrp_instance 'VI_1': priority = 0 is not allowed; "
                              "expected an integer from 1 to 255 (255: the address owner)")


@pytest.mark.parametrize("extra", [{"virtual_ipaddress": [7]}, {"unicast_peer": [7]}])
def test_an_integer_is_not_an_address(extra):
    """`virtual_ipaddress = [7]` or `unicast_peer = [7]` is a typo, not the address 0.0.0.7."""
    with pytest.raises(ConfigError, match="entry 7 is not"):
        parse(minimal(**extra))
