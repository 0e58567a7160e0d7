"""The load balancer's configuration: what it accepts, and the messages for what it refuses."""

import subprocess
import sys
from ipaddress import IPv4Address

import pytest

from controller.lb_config import ConfigError, parse

BACKENDS = [{"ip": "10.0.0.1", "port": 80, "weight": 2}, {"ip": "10.0.0.2"}]


def service(**extra) -> dict:
    return {"service": [{"name": "web", "vip": "10.0.0.100", "port": 80, "backends": BACKENDS, **extra}]}


def test_defaults_fill_what_is_left_out():
    s = parse(service()).services[0]
    assert (s.protocol, s.algorithm, s.in_switch) == ("tcp", "consistent", True)
    assert s.backends[1].port == 80 and s.backends[1].weight == 1 and s.backends[0].weight == 2
    assert (s.health_check.kind, s.health_check.fall, s.health_check.rise) == ("tcp", 3, 2)
    assert s.vip == IPv4Address("10.0.0.100")


def test_round_robin_is_not_in_the_switch():
    assert not parse(service(algorithm="round_robin")).services[0].in_switch


@pytest.mark.parametrize(("extra", "message"), [
    ({"algorithm": "fastest"}, "algorithm = 'fastest' is not allowed; expected round_robin | weighted"),
    ({"protocol": "sctp"}, "protocol = 'sctp'"),
    ({"vip": "10.0.0.300"}, "vip = '10.0.0.300' is not allowed; expected an IPv4 address"),
    ({"port": 0}, "port = 0 is not allowed; expected a port number from 1 to 65535"),
    ({"backends": []}, "backends = [] is not allowed"),
    ({"backends": [{"ip": "10.0.0.1", "weight": 0}]}, "weight = 0 is not allowed; expected an integer from 1 to 100"),
    ({"backends": [{"ip": "10.0.0.1", "colour": "red"}]}, "unknown key 'colour'"),
    ({"backends": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.1"}]}, "listed twice"),
    ({"backends": [{"ip": "10.0.0.100"}]}, "backend 10.0.0.100 is a VIP"),
    ({"health_check": {"kind": "icmp"}}, "kind = 'icmp' is not allowed; expected tcp | http | udp | none"),
    ({"health_check": {"interval": 0.1, "timeout": 0.5}}, "timeout = 0.5 is not allowed"),
    ({"protocol": "udp", "health_check": {"kind": "http"}}, "kind = 'http' does not fit protocol = 'udp'"),
    ({"speed": 1}, "unknown key 'speed'"),
])
def test_a_wrong_value_names_the_key_and_what_is_allowed(extra, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("|", r"\|")):
        parse(service(**extra))


def test_two_services_on_one_vip_port_and_protocol_are_refused():
    raw = service()
    raw["service"].append({**raw["service"][0], "name": "web2"})
    with pytest.raises(ConfigError, match="same vip, port and protocol"):
        parse(raw)


def test_the_controller_refuses_a_wrong_file_with_a_message_not_a_traceback(tmp_path):
    path = tmp_path / "lb.toml"
    path.write_text('[[service]]\nname = "x"\nvip = "10.0.0.100"\nport = 80\nalgorithm = "fastest"\n'
                    'backends = [{ip = "10.0.0.1"}]\n')
    result = subprocess.run([sys.executable, "-m", "controller.launcher", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "algorithm = 'fastest'" in result.stderr and "Traceback" not in result.stderr
    missing = subprocess.run([sys.executable, "-m", "controller.launcher", "--config", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_status_without_a_running_balancer_says_how_to_start_one():
    result = subprocess.run([sys.executable, "-m", "controller.launcher", "status", "--api-port", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "halab-controller --config FILE" in result.stderr and "Traceback" not in result.stderr


def test_the_balancing_switches_default_to_all_and_take_datapath_ids():
    assert parse(service()).switches == ()
    assert parse({**service(), "switches": [1, 3]}).switches == (1, 3)


@pytest.mark.parametrize("bad", [["s1"], [0], [True], "1"])
def test_a_wrong_switch_list_names_the_key(bad):
    with pytest.raises(ConfigError, match=r"switches.*datapath ids"):
        parse({**service(), "switches": bad})
