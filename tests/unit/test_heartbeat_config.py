"""The heartbeat agent's configuration and the fencing request's signature."""

import tomllib
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from ha.configcheck import ConfigError
from ha.heartbeat import postgresql
from ha.heartbeat.config import HeartbeatConfig, Link, Resource, check, dump, load, parse
from ha.heartbeat.fencing import signature

VIP = {"name": "vip", "kind": "vip", "address": "10.0.0.100/24", "interface": "node1-eth0"}
WEB = {"name": "web", "kind": "service", "start": "/bin/web start", "stop": "/bin/web stop",
       "monitor": "/bin/web check --quick"}
DB = {"name": "db", "kind": "postgresql", "data_directory": "/srv/pg/node1", "socket_directory": "/srv/pg/sock"}
IFACE = "an interface name (1 to 15 characters, no '/', spaces or ':')"
PEER_NAME = "the peer's name: 1 to 64 bytes, not this node's ('node1')"


def minimal(**extra) -> dict:
    raw = {"name": "node1", "secret": "long-enough-secret-16", "peer": {"name": "node2"},
           "link": [{"interface": "node1-eth1", "peer_address": "192.168.1.2"}], "resource": [VIP]}
    raw.update(extra)
    return raw


def with_resource(**table) -> dict:
    return minimal(resource=[table])


def with_link(**table) -> dict:
    return minimal(link=[table])


def refusal(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    return str(info.value)


def test_every_default_when_only_the_required_keys_are_given():
    """A minimal file gets Linux-HA's defaults: 1 s heartbeats, 3 s deadtime, UDP port 694."""
    assert parse(minimal()) == HeartbeatConfig(
        name="node1", priority=100, secret=b"long-enough-secret-16", peer="node2", peer_priority=100,
        links=(Link("node1-eth1", IPv4Address("192.168.1.2")),),
        resources=(Resource("vip", "vip", address=IPv4Interface("10.0.0.100/24"), interface="node1-eth0"),),
        interval=1.0, deadtime=3.0, initdead=6.0, detector="deadtime", phi_threshold=8.0, auto_failback=True,
        failure_timeout=10.0, tiebreaker=None, fence_socket=None, port=694, event_log=None, realtime_priority=None)


@pytest.mark.parametrize(("extra", "deadtime", "initdead"), [
    ({"interval": 0.1}, 0.3, 2.0),                    # deadtime 3 x interval; initdead at least 2 s
    ({"interval": 0.5}, 1.5, 3.0),                    # initdead 2 x deadtime once that is longer
    ({"interval": 2}, 6.0, 12.0),
    ({"deadtime": 1}, 1.0, 2.0),                      # both rules agree
    ({"interval": 0.3, "deadtime": 0.9}, 0.9, 2.0),
    ({"interval": 0.1, "deadtime": 5}, 5.0, 10.0),
    ({"interval": 0.1, "initdead": 0.5}, 0.3, 0.5),   # given: as given
])
def test_deadtime_and_initdead_default_from_the_interval(extra, deadtime, initdead):
    """Tuning only the interval keeps the failure detection proportionate."""
    cfg = parse(minimal(**extra))
    assert (cfg.deadtime, cfg.initdead) == (pytest.approx(deadtime), pytest.approx(initdead))


@pytest.mark.parametrize(("extra", "field", "value"), [
    ({"interval": 0.01}, "interval", 0.01),
    ({"interval": 10}, "interval", 10.0),
    ({"interval": 0.5, "deadtime": 0.5}, "deadtime", 0.5),
    ({"deadtime": 3600}, "deadtime", 3600.0),
    ({"initdead": 0}, "initdead", 0.0),
    ({"initdead": 3600}, "initdead", 3600.0),
    ({"detector": "phi"}, "detector", "phi"),
    ({"detector": "deadtime"}, "detector", "deadtime"),
    ({"phi_threshold": 0.5}, "phi_threshold", 0.5),
    ({"phi_threshold": 30}, "phi_threshold", 30.0),
    ({"auto_failback": False}, "auto_failback", False),
    ({"failure_timeout": 0}, "failure_timeout", 0.0),
    ({"failure_timeout": 3600}, "failure_timeout", 3600.0),
    ({"event_log": "/run/halab/hb.jsonl"}, "event_log", Path("/run/halab/hb.jsonl")),
    ({"name": "n" * 64}, "name", "n" * 64),
    ({"name": "é" * 32}, "name", "é" * 32),           # 64 bytes in UTF-8
    ({"name": "a"}, "name", "a"),
    ({"priority": 1}, "priority", 1),
    ({"priority": 255}, "priority", 255),
    ({"port": 1}, "port", 1),
    ({"port": 65535}, "port", 65535),
    ({"realtime_priority": 1}, "realtime_priority", 1),
    ({"realtime_priority": 99}, "realtime_priority", 99),
    ({"secret": "s" * 16}, "secret", b"s" * 16),
    ({"peer": {"name": "p" * 64}}, "peer", "p" * 64),
    ({"peer": {"name": "é" * 32}}, "peer", "é" * 32),
    ({"peer": {"name": "b"}}, "peer", "b"),
    ({"peer": {"name": "node2", "priority": 1}}, "peer_priority", 1),
    ({"peer": {"name": "node2", "priority": 255}}, "peer_priority", 255),
    ({"quorum": {"tiebreaker": "10.0.0.254"}}, "tiebreaker", IPv4Address("10.0.0.254")),
    ({"quorum": {}}, "tiebreaker", None),
    ({"fencing": {"socket": "/run/halab/fence.sock"}}, "fence_socket", Path("/run/halab/fence.sock")),
    ({"fencing": {}}, "fence_socket", None),
])
def test_a_value_at_a_bound_is_accepted(extra, field, value):
    """Each range includes its ends, and every key lands in its own field."""
    assert getattr(parse(minimal(**extra)), field) == value


def allowed(key: str, value: str, what: str, where: str = "config") -> str:
    return f"{where}: {key} = {value} is not allowed; expected {what}"


INTERVAL, SECONDS = "seconds from 0.01 to 10", "seconds from 0 to 3600"
DEADTIME = "seconds from the interval (1.0) to 3600"
TOP_KEYS = ("assist, auto_failback, deadtime, detector, event_log, failure_timeout, fencing, initdead, interval, "
            "link, name, peer, phi_threshold, port, priority, quorum, realtime_priority, resource, secret")


@pytest.mark.parametrize(("extra", "message"), [
    ({"interval": "1"}, allowed("interval", "'1'", INTERVAL)),
    ({"interval": True}, allowed("interval", "True", INTERVAL)),
    ({"interval": 0.0099}, allowed("interval", "0.0099", INTERVAL)),
    ({"interval": 10.001}, allowed("interval", "10.001", INTERVAL)),
    ({"interval": 0.5, "deadtime": 0.49}, allowed("deadtime", "0.49", "seconds from the interval (0.5) to 3600")),
    ({"interval": 2, "deadtime": 3600.5}, allowed("deadtime", "3600.5", "seconds from the interval (2.0) to 3600")),
    ({"deadtime": "3"}, allowed("deadtime", "'3'", DEADTIME)),
    ({"initdead": -0.5}, allowed("initdead", "-0.5", SECONDS)),
    ({"initdead": 3600.5}, allowed("initdead", "3600.5", SECONDS)),
    ({"initdead": "2"}, allowed("initdead", "'2'", SECONDS)),
    ({"detector": "gut"}, allowed("detector", "'gut'", '"deadtime" or "phi"')),
    ({"detector": 1}, allowed("detector", "1", '"deadtime" or "phi"')),
    ({"phi_threshold": 0.49}, allowed("phi_threshold", "0.49", "0.5 to 30")),
    ({"phi_threshold": 30.5}, allowed("phi_threshold", "30.5", "0.5 to 30")),
    ({"phi_threshold": "8"}, allowed("phi_threshold", "'8'", "0.5 to 30")),
    ({"auto_failback": "yes"}, allowed("auto_failback", "'yes'", "true or false")),
    ({"auto_failback": 1}, allowed("auto_failback", "1", "true or false")),
    ({"failure_timeout": -1}, allowed("failure_timeout", "-1", SECONDS)),
    ({"failure_timeout": 3600.5}, allowed("failure_timeout", "3600.5", SECONDS)),
    ({"failure_timeout": "10"}, allowed("failure_timeout", "'10'", SECONDS)),
    ({"event_log": 5}, allowed("event_log", "5", "a file path")),
    ({"name": ""}, allowed("name", "''", "1 to 64 bytes")),
    ({"name": "n" * 65}, allowed("name", repr("n" * 65), "1 to 64 bytes")),
    ({"name": "é" * 33}, allowed("name", repr("é" * 33), "1 to 64 bytes")),  # 33 characters, 66 bytes
    ({"name": 1}, allowed("name", "1", "1 to 64 bytes")),
    ({"priority": 0}, allowed("priority", "0", "1 to 255")),
    ({"priority": 256}, allowed("priority", "256", "1 to 255")),
    ({"priority": "100"}, allowed("priority", "'100'", "1 to 255")),
    ({"priority": True}, allowed("priority", "True", "1 to 255")),
    ({"port": 0}, allowed("port", "0", "a UDP port")),
    ({"port": 65536}, allowed("port", "65536", "a UDP port")),
    ({"port": "694"}, allowed("port", "'694'", "a UDP port")),
    ({"realtime_priority": 0}, allowed("realtime_priority", "0", "a SCHED_RR priority from 1 to 99 (or leave it out)")),
    ({"realtime_priority": 100},
     allowed("realtime_priority", "100", "a SCHED_RR priority from 1 to 99 (or leave it out)")),
    ({"peer": "node2"}, allowed("peer", "'node2'", 'a table like {name = "node2", priority = 100}')),
    ({"peer": {"name": "node1"}}, allowed("name", "'node1'", PEER_NAME, "config: peer")),
    ({"peer": {"name": ""}}, allowed("name", "''", PEER_NAME, "config: peer")),
    ({"peer": {"name": "p" * 65}}, allowed("name", repr("p" * 65), PEER_NAME, "config: peer")),
    ({"peer": {"name": "é" * 33}}, allowed("name", repr("é" * 33), PEER_NAME, "config: peer")),
    ({"peer": {"name": 2}}, allowed("name", "2", PEER_NAME, "config: peer")),
    ({"peer": {"name": "node2", "priority": 0}}, allowed("priority", "0", "1 to 255", "config: peer")),
    ({"peer": {"name": "node2", "priority": 256}}, allowed("priority", "256", "1 to 255", "config: peer")),
    ({"peer": {"name": "node2", "priority": True}}, allowed("priority", "True", "1 to 255", "config: peer")),
    ({"quorum": "10.0.0.254"}, allowed("quorum", "'10.0.0.254'", "a table")),
    ({"quorum": {"tiebreaker": "gateway"}}, allowed("tiebreaker", "'gateway'", "an IPv4 address", "config: quorum")),
    ({"quorum": {"tiebreaker": "10.0.0.256"}},
     allowed("tiebreaker", "'10.0.0.256'", "an IPv4 address", "config: quorum")),
    ({"fencing": "/run/fence.sock"}, allowed("fencing", "'/run/fence.sock'", "a table")),
    ({"fencing": {"socket": 5}}, allowed("socket", "5", "a unix socket path", "config: fencing")),
    ({"colour": "red"}, f"config: unknown key 'colour'; allowed keys: {TOP_KEYS}"),
    ({"peer": {"name": "node2", "address": "10.0.0.2"}},
     "config: peer: unknown key 'address'; allowed keys: name, priority"),
    ({"quorum": {"timeout": 1}}, "config: quorum: unknown key 'timeout'; allowed keys: tiebreaker"),
    ({"fencing": {"path": "/run/f"}}, "config: fencing: unknown key 'path'; allowed keys: socket"),
    ({"secret": "s" * 15}, "config: secret: expected a shared secret of at least 16 characters"),
    ({"secret": 12345678901234567890}, "config: secret: expected a shared secret of at least 16 characters"),
], ids=repr)
def test_a_wrong_top_level_value_names_the_key_the_value_and_what_is_allowed(extra, message):
    """An operator reads what to fix from the one line the agent prints before refusing to start."""
    assert refusal(minimal(**extra)) == message


@pytest.mark.parametrize(("key", "message"), [
    ("name", "config: missing key 'name' (1 to 64 bytes)"),
    ("peer", 'config: missing key \'peer\' (a table like {name = "node2", priority = 100})'),
    ("secret", "config: secret: expected a shared secret of at least 16 characters"),
    ("link", "config: needs at least one [[link]] table"),
    ("resource", "config: needs at least one [[resource]] table"),
])
def test_a_missing_required_key_is_named(key, message):
    """Name, peer, secret, a link and a resource have no sensible default."""
    raw = minimal()
    del raw[key]
    assert refusal(raw) == message


def test_a_missing_peer_name_says_what_it_must_be():
    """The peer table without a name: the message says what a peer name is."""
    assert refusal(minimal(peer={"priority": 50})) == f"config: peer: missing key 'name' ({PEER_NAME})"


def test_the_secret_is_never_echoed():
    """A wrong secret must not end up in a log or a terminal scroll-back."""
    message = refusal(minimal(secret="hunter2-short"))
    assert "hunter2" not in message and message.endswith("at least 16 characters")


def test_errors_name_the_source_they_came_from():
    """`parse(raw, source)` puts the file's name at the head of every message."""
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: port = 0 is not allowed"):
        parse(minimal(port=0), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: link\[0\]: interface"):
        parse(minimal(link=[{"interface": "", "peer_address": "192.168.1.2"}]), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: peer: priority"):
        parse(minimal(peer={"name": "node2", "priority": 0}), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: quorum: tiebreaker"):
        parse(minimal(quorum={"tiebreaker": "x"}), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: fencing: socket"):
        parse(minimal(fencing={"socket": 1}), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: secret"):
        parse(minimal(secret=""), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: realtime_priority"):
        parse(minimal(realtime_priority=0), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: unknown key"):
        parse(minimal(nope=1), "/etc/hb.toml")
    with pytest.raises(ConfigError, match=r"^/etc/hb\.toml: resource 'vip': address"):
        parse(with_resource(**{**VIP, "address": "x"}), "/etc/hb.toml")


def test_links_keep_their_order_and_are_named_by_their_interface():
    """The first link is the dedicated heartbeat link; its interface names it in events."""
    cfg = parse(minimal(link=[{"interface": "eth1", "peer_address": "192.168.1.2"},
                              {"interface": "eth0", "peer_address": "10.0.0.2"}]))
    assert cfg.links == (Link("eth1", IPv4Address("192.168.1.2")), Link("eth0", IPv4Address("10.0.0.2")))
    assert [link.name for link in cfg.links] == ["eth1", "eth0"]


@pytest.mark.parametrize(("link", "message"), [
    ("eth1", 'config: link[0]: must be a table like {interface = "eth1", peer_address = "192.168.1.2"}'),
    ({"interface": "eth1", "peer_address": "192.168.1.2", "mtu": 1500},
     "config: link[0]: unknown key 'mtu'; allowed keys: interface, peer_address"),
    ({"peer_address": "192.168.1.2"}, f"config: link[0]: missing key 'interface' ({IFACE})"),
    ({"interface": "a/b", "peer_address": "192.168.1.2"}, allowed("interface", "'a/b'", IFACE, "config: link[0]")),
    ({"interface": "e" * 16, "peer_address": "192.168.1.2"},
     allowed("interface", repr("e" * 16), IFACE, "config: link[0]")),
    ({"interface": 1, "peer_address": "192.168.1.2"}, allowed("interface", "1", IFACE, "config: link[0]")),
    ({"interface": "eth1"}, "config: link[0]: missing key 'peer_address' (the peer's address on this link)"),
    ({"interface": "eth1", "peer_address": 5},
     allowed("peer_address", "5", "the peer's address on this link", "config: link[0]")),
    ({"interface": "eth1", "peer_address": "192.168.1.256"},
     allowed("peer_address", "'192.168.1.256'", "an IPv4 address", "config: link[0]")),
    ({"interface": "eth1", "peer_address": "fd00::2"},
     allowed("peer_address", "'fd00::2'", "an IPv4 address", "config: link[0]")),
], ids=repr)
def test_a_wrong_link_names_the_link_the_key_and_what_is_allowed(link, message):
    """A [[link]] table is checked key by key, like the top level."""
    assert refusal(minimal(link=[link])) == message


def test_a_second_link_is_named_by_its_index_and_links_must_differ():
    """Two links on the same interface would count one network twice."""
    first = {"interface": "eth1", "peer_address": "192.168.1.2"}
    assert refusal(minimal(link=[first, {"interface": "eth1", "peer_address": "x"}])) == allowed(
        "peer_address", "'x'", "an IPv4 address", "config: link[1]")
    assert refusal(minimal(link=[first, first])) == "config: link names must be unique, got ['eth1', 'eth1']"
    assert refusal(minimal(link={"interface": "eth1"})) == "config: needs at least one [[link]] table"


def test_a_fifteen_character_interface_is_the_longest_allowed():
    """Linux interface names are at most 15 characters (IFNAMSIZ - 1)."""
    assert parse(with_link(interface="e" * 15, peer_address="192.168.1.2")).links[0].interface == "e" * 15


def test_a_service_resource_is_three_commands_split_as_a_shell_would():
    """The commands run without a shell, so quoting must be resolved at parse time."""
    cfg = parse(with_resource(**{**WEB, "start": "/bin/web start --title 'a b'"}))
    assert cfg.resources == (Resource("web", "service", start=("/bin/web", "start", "--title", "a b"),
                                      stop=("/bin/web", "stop"), monitor=("/bin/web", "check", "--quick"),
                                      monitor_interval=1.0, monitor_timeout=1.0),)


def test_resources_keep_their_order():
    """They start in the order given and stop in reverse."""
    cfg = parse(minimal(resource=[VIP, WEB, DB]))
    assert [(r.name, r.kind) for r in cfg.resources] == [("vip", "vip"), ("web", "service"), ("db", "postgresql")]
    assert cfg.resources[2].server == postgresql.PgServer("/srv/pg/node1", "/srv/pg/sock")


@pytest.mark.parametrize(("table", "timing"), [
    (WEB, (1.0, 1.0)),
    ({**WEB, "monitor_interval": 0.5}, (0.5, 0.5)),     # the timeout follows the interval
    ({**WEB, "monitor_timeout": 3}, (1.0, 3.0)),
    ({**WEB, "monitor_interval": 0.01, "monitor_timeout": 0.01}, (0.01, 0.01)),
    ({**WEB, "monitor_interval": 3600, "monitor_timeout": 3600}, (3600.0, 3600.0)),
    (DB, (1.0, 2.0)),
    ({**DB, "monitor_interval": 0.5}, (0.5, 2.0)),      # psql's own timeout, whatever the interval
    ({**DB, "monitor_interval": 3, "monitor_timeout": 0.25}, (3.0, 0.25)),
], ids=repr)
def test_monitor_timing_defaults_and_bounds(table, timing):
    """A monitor runs every monitor_interval and is given monitor_timeout to answer."""
    r = parse(with_resource(**table)).resources[0]
    assert (r.monitor_interval, r.monitor_timeout) == timing


RESOURCE_KEYS = ("address, bin_directory, data_directory, interface, kind, monitor, monitor_interval, "
                 "monitor_timeout, name, os_user, port, primary_conninfo, promote_timeout, socket_directory, "
                 "start, stop, synchronous_fallback_timeout, synchronous_mode_strict, synchronous_standby")
KINDS = '"vip" or "service" or "postgresql"'


@pytest.mark.parametrize(("table", "message"), [
    ("vip", "config: resource[0]: must be a table"),
    ({**VIP, "colour": "red"}, f"config: resource[0]: unknown key 'colour'; allowed keys: {RESOURCE_KEYS}"),
    ({**VIP, "name": ""}, "config: resource[0]: name = '' is not allowed; expected a non-empty string"),
    ({"kind": "vip"}, "config: resource[0]: missing key 'name' (a non-empty string)"),
    ({"name": "x", "kind": "disk"}, allowed("kind", "'disk'", KINDS, "config: resource 'x'")),
    ({"name": "x", "kind": 1}, allowed("kind", "1", KINDS, "config: resource 'x'")),
    ({"name": "x"}, f"config: resource 'x': missing key 'kind' ({KINDS})"),
    ({**VIP, "start": "/bin/true"},
     "config: resource 'vip' (kind vip): unknown key 'start'; allowed keys: address, interface, kind, name"),
    ({**VIP, "monitor_interval": 1},
     "config: resource 'vip' (kind vip): unknown key 'monitor_interval'; allowed keys: address, interface, kind, name"),
    ({**WEB, "address": "10.0.0.1/24"}, "config: resource 'web' (kind service): unknown key 'address'; allowed keys: "
                                        "kind, monitor, monitor_interval, monitor_timeout, name, start, stop"),
    ({**DB, "start": "/bin/true"}, "config: resource 'db' (kind postgresql): unknown key 'start'; allowed keys: "
     "bin_directory, data_directory, kind, monitor_interval, monitor_timeout, name, os_user, port, primary_conninfo, "
     "promote_timeout, socket_directory, synchronous_fallback_timeout, synchronous_mode_strict, synchronous_standby"),
    ({**VIP, "address": 5},
     "config: resource 'vip': address = 5 is not allowed; expected an address/prefix like \"10.0.0.100/24\""),
    ({**VIP, "address": "10.0.0.300/24"},
     "config: resource 'vip': address = '10.0.0.300/24' is not an address/prefix like \"10.0.0.100/24\""),
    ({**VIP, "address": "10.0.0.100/33"},
     "config: resource 'vip': address = '10.0.0.100/33' is not an address/prefix like \"10.0.0.100/24\""),
    ({**VIP, "interface": "a b"}, allowed("interface", "'a b'", IFACE, "config: resource 'vip'")),
    ({"name": "vip", "kind": "vip", "address": "10.0.0.100/24"}, f"config: resource 'vip': missing key 'interface' "
                                                                 f"({IFACE})"),
    ({**WEB, "monitor_interval": 0.009},
     allowed("monitor_interval", "0.009", "seconds from 0.01 to 3600", "config: resource 'web'")),
    ({**WEB, "monitor_interval": 3600.5},
     allowed("monitor_interval", "3600.5", "seconds from 0.01 to 3600", "config: resource 'web'")),
    ({**WEB, "monitor_interval": "1"},
     allowed("monitor_interval", "'1'", "seconds from 0.01 to 3600", "config: resource 'web'")),
    ({**WEB, "monitor_timeout": 0.009}, allowed("monitor_timeout", "0.009", "seconds", "config: resource 'web'")),
    ({**WEB, "monitor_timeout": 3600.5}, allowed("monitor_timeout", "3600.5", "seconds", "config: resource 'web'")),
    ({**WEB, "monitor_timeout": True}, allowed("monitor_timeout", "True", "seconds", "config: resource 'web'")),
    ({**DB, "monitor_interval": 0},
     allowed("monitor_interval", "0", "seconds from 0.01 to 3600", "config: resource 'db'")),
    ({**DB, "monitor_timeout": 3601}, allowed("monitor_timeout", "3601", "seconds", "config: resource 'db'")),
    ({"name": "web", "kind": "service", "stop": "s", "monitor": "m"},
     "config: resource 'web': missing key 'start' (a command line)"),
    ({"name": "web", "kind": "service", "start": "s", "monitor": "m"},
     "config: resource 'web': missing key 'stop' (a command line)"),
    ({"name": "web", "kind": "service", "start": "s", "stop": "s"},
     "config: resource 'web': missing key 'monitor' (a command line)"),
    ({**WEB, "stop": "  "}, allowed("stop", "'  '", "a command line", "config: resource 'web'")),
    ({**WEB, "monitor": "check 'x"}, "config: resource 'web': monitor = \"check 'x\" is not a command line "
                                     "(No closing quotation); check its quotes"),
], ids=repr)
def test_a_wrong_resource_names_the_resource_the_key_and_what_is_allowed(table, message):
    """Each kind of resource takes its own keys, each checked with a message naming the resource."""
    assert refusal(minimal(resource=[table])) == message


def test_resource_names_must_be_unique():
    """Events and the status page tell resources apart by name."""
    assert refusal(minimal(resource=[VIP, {**WEB, "name": "vip"}])) == (
        "config: resource names must be unique, got ['vip', 'vip']")


def full() -> dict:
    """A configuration in which every key is set, and set away from its default."""
    return {
        "name": "alpha", "priority": 254, "secret": "a-secret-of-twenty-chars", "interval": 0.25, "deadtime": 1.25,
        "initdead": 0, "detector": "phi", "phi_threshold": 12.5, "auto_failback": False, "failure_timeout": 0,
        "event_log": "/run/halab/alpha.jsonl", "realtime_priority": 42, "port": 6940,
        "peer": {"name": "beta", "priority": 7},
        "link": [{"interface": "alpha-eth1", "peer_address": "192.168.1.2"},
                 {"interface": "alpha-eth0", "peer_address": "10.0.0.2"}],
        "quorum": {"tiebreaker": "10.0.0.254"},
        "fencing": {"socket": "/run/halab/fence.sock"},
        "assist": {"socket": "/run/halab/assist.sock"},
        "resource": [{**VIP, "interface": "alpha-eth0"},
                     {**WEB, "start": "/bin/web start --title 'a b'", "monitor_interval": 0.5, "monitor_timeout": 4},
                     {**DB, "port": 5433, "promote_timeout": 5, "monitor_interval": 3, "monitor_timeout": 0.25}],
    }


def test_every_key_is_read():
    """Each key given lands in its field, none is replaced by its default."""
    assert parse(full()) == HeartbeatConfig(
        name="alpha", priority=254, secret=b"a-secret-of-twenty-chars", peer="beta", peer_priority=7,
        links=(Link("alpha-eth1", IPv4Address("192.168.1.2")), Link("alpha-eth0", IPv4Address("10.0.0.2"))),
        resources=(
            Resource("vip", "vip", address=IPv4Interface("10.0.0.100/24"), interface="alpha-eth0"),
            Resource("web", "service", start=("/bin/web", "start", "--title", "a b"), stop=("/bin/web", "stop"),
                     monitor=("/bin/web", "check", "--quick"), monitor_interval=0.5, monitor_timeout=4.0),
            parse(minimal(resource=[full()["resource"][2]])).resources[0]),
        interval=0.25, deadtime=1.25, initdead=0.0, detector="phi", phi_threshold=12.5, auto_failback=False,
        failure_timeout=0.0, tiebreaker=IPv4Address("10.0.0.254"), fence_socket=Path("/run/halab/fence.sock"),
        assist_socket=Path("/run/halab/assist.sock"), port=6940, event_log=Path("/run/halab/alpha.jsonl"),
        realtime_priority=42)


@pytest.mark.parametrize("raw", [full(), minimal(), minimal(resource=[WEB]), minimal(resource=[DB])],
                         ids=["every key", "defaults", "service", "postgresql"])
def test_dump_then_parse_gives_the_same_configuration(raw):
    """The harness hands each node the dump of a configuration it built; the node must read back the same."""
    cfg = parse(raw)
    assert parse(tomllib.loads(dump(cfg))) == cfg
    assert check(cfg) == cfg


def test_dump_leaves_out_the_optional_tables_it_has_no_value_for():
    """An absent tiebreaker, fence socket, event log or real-time priority stays absent."""
    raw = tomllib.loads(dump(parse(minimal())))
    assert not {"quorum", "fencing", "event_log", "realtime_priority"} & set(raw)
    raw = tomllib.loads(dump(parse(full())))
    assert raw["quorum"] == {"tiebreaker": "10.0.0.254"} and raw["fencing"] == {"socket": "/run/halab/fence.sock"}
    assert raw["event_log"] == "/run/halab/alpha.jsonl" and raw["realtime_priority"] == 42
    assert raw["resource"][0] == {"name": "vip", "kind": "vip", "address": "10.0.0.100/24", "interface": "alpha-eth0"}
    assert raw["resource"][1] == {"name": "web", "kind": "service", "start": "/bin/web start --title 'a b'",
                                  "stop": "/bin/web stop", "monitor": "/bin/web check --quick",
                                  "monitor_interval": 0.5, "monitor_timeout": 4.0}
    assert raw["resource"][2]["monitor_interval"] == 3.0 and raw["resource"][2]["monitor_timeout"] == 0.25


def test_check_refuses_a_configuration_built_in_code_as_it_would_a_file():
    """The harness builds configurations in code; a wrong one fails before any node starts."""
    cfg = parse(minimal())
    bad = HeartbeatConfig(**{**cfg.__dict__, "interval": 0.0})
    with pytest.raises(ConfigError) as info:
        check(bad)
    assert str(info.value) == allowed("interval", "0.0", INTERVAL, "the configuration built by halab")


def test_load_reads_a_file_and_names_it_in_errors(tmp_path):
    """The agent's --config file: parsed as TOML, and its path at the head of any refusal."""
    path = tmp_path / "hb.toml"
    path.write_text(dump(parse(full())))
    assert load(path) == parse(full())
    path.write_text(dump(parse(minimal())).replace("port = 694", "port = 0"))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == allowed("port", "0", "a UDP port", str(path))


@pytest.mark.parametrize("value", [5, True])
def test_a_tiebreaker_that_is_not_a_string_is_refused(value):
    """Only a dotted quad is a tiebreaker address; a bare number is a typo, not 0.0.0.5."""
    assert refusal(minimal(quorum={"tiebreaker": value})) == allowed(
        "tiebreaker", repr(value), "an IPv4 address", "config: quorum")


def test_a_vip_without_an_address_is_refused_with_a_message():
    """A forgotten address must stop the agent with a message, not a KeyError traceback."""
    assert refusal(with_resource(name="vip", kind="vip", interface="eth0")) == (
        "config: resource 'vip': missing key 'address' (an address/prefix like \"10.0.0.100/24\")")


def test_a_fencing_signature_binds_every_field_and_is_unambiguous():
    """A fencing request signed for one node, action or time is no good for another."""
    base = signature(b"secret", "fence", "node1", ["10.0.0.1", "192.168.1.1"], 100.0, "n1")
    assert base == signature(b"secret", "fence", "node1", ["192.168.1.1", "10.0.0.1"], 100.0, "n1")
    for other in (signature(b"secret", "unfence", "node1", ["10.0.0.1", "192.168.1.1"], 100.0, "n1"),
                  signature(b"secret", "fence", "node2", ["10.0.0.1", "192.168.1.1"], 100.0, "n1"),
                  signature(b"other", "fence", "node1", ["10.0.0.1", "192.168.1.1"], 100.0, "n1"),
                  signature(b"secret", "fence", "node1", ["10.0.0.1", "192.168.1.1"], 101.0, "n1"),
                  signature(b"secret", "fence", "node1", ["10.0.0.1", "192.168.1.1"], 100.0, "n2")):
        assert base != other
    # Joining fields with a separator would make these two the same text.
    assert signature(b"s", "fence", "a\nb", ["c"], 1.0, "n") != signature(b"s", "fence", "a", ["b", "c"], 1.0, "n")
