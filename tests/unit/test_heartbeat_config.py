"""The heartbeat agent's configuration and the fencing request's signature."""

import pytest

from ha.configcheck import ConfigError
from ha.heartbeat.config import parse
from ha.heartbeat.fencing import signature


def minimal(**extra) -> dict:
    raw = {"name": "node1", "secret": "long-enough-secret-16", "peer": {"name": "node2"},
           "link": [{"interface": "node1-eth1", "peer_address": "192.168.1.2"}],
           "resource": [{"name": "vip", "kind": "vip", "address": "10.0.0.100/24", "interface": "node1-eth0"}]}
    raw.update(extra)
    return raw


def test_defaults_follow_the_interval():
    cfg = parse(minimal(interval=0.1))
    assert cfg.deadtime == pytest.approx(0.3) and cfg.initdead == 2.0 and cfg.detector == "deadtime"
    assert cfg.port == 694 and cfg.auto_failback and cfg.tiebreaker is None and cfg.fence_socket is None
    assert cfg.links[0].name == "node1-eth1" and cfg.resources[0].address.ip.exploded == "10.0.0.100"


def test_a_service_resource_is_three_commands():
    cfg = parse(minimal(resource=[{"name": "web", "kind": "service", "start": "/bin/web start",
                                   "stop": "/bin/web stop", "monitor": "/bin/web check --quick"}]))
    r = cfg.resources[0]
    assert r.start == ("/bin/web", "start") and r.monitor == ("/bin/web", "check", "--quick")


@pytest.mark.parametrize(("extra", "message"), [
    ({"interval": 0.001}, "interval = 0.001 is not allowed; expected seconds from 0.01 to 10"),
    ({"interval": 0.1, "deadtime": 0.05}, "deadtime = 0.05 is not allowed"),
    ({"detector": "gut"}, "detector = 'gut' is not allowed; expected \"deadtime\" or \"phi\""),
    ({"secret": "short"}, "secret: expected a shared secret of at least 16 characters$"),
    ({"peer": {"name": "node1"}}, "not this node's"),
    ({"link": [{"interface": "a/b", "peer_address": "192.168.1.2"}]}, "interface = 'a/b' is not allowed"),
    ({"quorum": {"tiebreaker": "gateway"}}, "tiebreaker = 'gateway' is not allowed; expected an IPv4 address"),
    ({"link": []}, r"needs at least one \[\[link\]\] table"),
    ({"resource": [{"name": "x", "kind": "disk"}]}, "kind = 'disk' is not allowed"),
    ({"resource": [{"name": "x", "kind": "vip", "address": "10.0.0.300/24", "interface": "e"}]},
     "address = '10.0.0.300/24' is not an address/prefix"),
    ({"colour": "red"}, "unknown key 'colour'"),
])
def test_a_wrong_value_names_the_key_and_what_is_allowed(extra, message):
    with pytest.raises(ConfigError, match=message):
        parse(minimal(**extra))


def test_a_fencing_signature_binds_every_field_and_is_unambiguous():
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
