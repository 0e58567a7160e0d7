"""The load balancer's configuration: what it accepts, and the messages for what it refuses.

The contract for bad input (lb_config's docstring): the message names the key, the value and what
is allowed. So the tables below give, for each key, a wrong type, each value just outside its range,
each bound and the default, with the whole message expected.
"""

import subprocess
import sys
import tomllib
from ipaddress import IPv4Address

import pytest

from controller.lb_config import Backend, ConfigError, HealthCheck, LbConfig, Service, check, dump, load, parse

BACKENDS = [{"ip": "10.0.0.1", "port": 80, "weight": 2}, {"ip": "10.0.0.2"}]
MISSING = object()  # a key left out of the table

SERVICE = "config: service 'web'"
BACKEND = f"{SERVICE}: backends[0]"
CHECK = f"{SERVICE}: health_check"
SERVICE_KEYS = "algorithm, backends, health_check, name, port, protocol, vip"


def service(**extra) -> dict:
    return {"service": [{"name": "web", "vip": "10.0.0.100", "port": 80, "backends": BACKENDS, **extra}]}


def with_key(section: str, key: str, value: object) -> dict:
    """A valid configuration with one key of one section set to `value` (or left out: MISSING)."""
    raw = service(backends=[{"ip": "10.0.0.1", "port": 8080}], health_check={})
    table = {"top": raw, "service": raw["service"][0], "backend": raw["service"][0]["backends"][0],
             "health_check": raw["service"][0]["health_check"]}[section]
    if value is MISSING:
        table.pop(key, None)
    else:
        table[key] = value
    return raw


def refused(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return str(caught.value)


def not_allowed(where: str, key: str, value: object, allowed: str) -> str:
    return f"{where}: {key} = {value!r} is not allowed; expected {allowed}"


def test_defaults_fill_what_is_left_out():
    """A minimal service gets the documented defaults, so a short file behaves as the docs say."""
    s = parse(service()).services[0]
    assert (s.protocol, s.algorithm, s.in_switch) == ("tcp", "consistent", True)
    assert s.backends == (Backend(IPv4Address("10.0.0.1"), 80, 2), Backend(IPv4Address("10.0.0.2"), 80, 1))
    assert s.health_check == HealthCheck("tcp", 1.0, 1.0, 3, 2, "/", "halab-health-check\n")
    assert s.vip == IPv4Address("10.0.0.100")


@pytest.mark.parametrize(("algorithm", "in_switch"), [
    ("round_robin", False), ("weighted", False), ("source_hash", True), ("consistent", True),
])
def test_only_the_hash_algorithms_run_in_the_switch(algorithm, in_switch):
    """Round robin needs the controller's counter; the hashes are a select group in the switch."""
    s = parse(service(algorithm=algorithm)).services[0]
    assert (s.algorithm, s.in_switch) == (algorithm, in_switch)


# (section, key, value given, what the parsed configuration holds): each bound, the default and the type
ACCEPTED = [
    ("top", "switches", MISSING, lambda c: c.switches == ()),
    ("top", "switches", [1, 2**64 - 1], lambda c: c.switches == (1, 2**64 - 1)),
    ("service", "port", 1, lambda c: c.services[0].port == 1),
    ("service", "port", 65535, lambda c: c.services[0].port == 65535),
    ("service", "protocol", MISSING, lambda c: c.services[0].protocol == "tcp"),
    ("service", "algorithm", MISSING, lambda c: c.services[0].algorithm == "consistent"),
    ("service", "health_check", MISSING, lambda c: c.services[0].health_check == HealthCheck()),
    ("backend", "port", MISSING, lambda c: c.services[0].backends[0].port == 80),  # the service's port
    ("backend", "port", 1, lambda c: c.services[0].backends[0].port == 1),
    ("backend", "port", 65535, lambda c: c.services[0].backends[0].port == 65535),
    ("backend", "weight", MISSING, lambda c: c.services[0].backends[0].weight == 1),
    ("backend", "weight", 1, lambda c: c.services[0].backends[0].weight == 1),
    ("backend", "weight", 100, lambda c: c.services[0].backends[0].weight == 100),
    ("health_check", "kind", MISSING, lambda c: c.services[0].health_check.kind == "tcp"),
    ("health_check", "kind", "http", lambda c: c.services[0].health_check.kind == "http"),
    ("health_check", "kind", "none", lambda c: c.services[0].health_check.kind == "none"),
    ("health_check", "interval", MISSING, lambda c: c.services[0].health_check.interval == 1.0),
    ("health_check", "interval", 0.01, lambda c: c.services[0].health_check.interval == 0.01),
    ("health_check", "interval", 3600, lambda c: c.services[0].health_check.interval == 3600.0),
    ("health_check", "interval", 2, lambda c: type(c.services[0].health_check.interval) is float),
    ("health_check", "timeout", MISSING, lambda c: c.services[0].health_check.timeout == 1.0),
    ("health_check", "timeout", 0.01, lambda c: c.services[0].health_check.timeout == 0.01),
    ("health_check", "timeout", 1, lambda c: c.services[0].health_check.timeout == 1.0  # = the interval
     and type(c.services[0].health_check.timeout) is float),
    ("health_check", "fall", MISSING, lambda c: c.services[0].health_check.fall == 3),
    ("health_check", "fall", 1, lambda c: c.services[0].health_check.fall == 1),
    ("health_check", "fall", 100, lambda c: c.services[0].health_check.fall == 100),
    ("health_check", "rise", MISSING, lambda c: c.services[0].health_check.rise == 2),
    ("health_check", "rise", 1, lambda c: c.services[0].health_check.rise == 1),
    ("health_check", "rise", 100, lambda c: c.services[0].health_check.rise == 100),
    ("health_check", "path", MISSING, lambda c: c.services[0].health_check.path == "/"),
    ("health_check", "path", "/" + "a" * 199, lambda c: len(c.services[0].health_check.path) == 200),
    ("health_check", "path", "/health?x=1", lambda c: c.services[0].health_check.path == "/health?x=1"),
    ("health_check", "send", MISSING, lambda c: c.services[0].health_check.send == "halab-health-check\n"),
    ("health_check", "send", "ping\n", lambda c: c.services[0].health_check.send == "ping\n"),
]


@pytest.mark.parametrize(("section", "key", "value", "holds"), ACCEPTED,
                         ids=[f"{s}.{k}={'default' if v is MISSING else repr(v)[:20]}" for s, k, v, _ in ACCEPTED])
def test_each_bound_and_default_is_accepted(section, key, value, holds):
    """The values at the edge of each range are valid, and a key left out takes its documented default."""
    assert holds(parse(with_key(section, key, value)))


@pytest.mark.parametrize(("interval", "timeout"), [(0.5, 0.5), (5, 1.0), (1, 1.0)])
def test_the_timeout_defaults_to_the_interval_up_to_one_second(interval, timeout):
    """A check must time out before the next one starts: the default timeout is min(interval, 1 s)."""
    assert parse(with_key("health_check", "interval", interval)).services[0].health_check.timeout == timeout


S, B, C = "service", "backend", "health_check"
PORTS = "a port number from 1 to 65535"
WEIGHTS = "an integer from 1 to 100 (drain a backend instead of weight 0)"
LIST_OF_BACKENDS = 'a list of 1 to 256 backends like [{ip = "10.0.0.1", port = 80}]'
PATHS = 'a URL path like "/health" (no spaces or control characters)'
IPV4 = 'an IPv4 address like "10.0.0.100"'
DATAPATHS = "a list of datapath ids (integers) like [1]"

# (section, key, wrong value, where the message says it is, what the message says is allowed)
REFUSED = [
    ("top", "switches", [0], "config", DATAPATHS),
    ("top", "switches", [2**64], "config", DATAPATHS),
    ("top", "switches", [True], "config", DATAPATHS),
    ("top", "switches", ["s1"], "config", DATAPATHS),
    ("top", "switches", 1, "config", DATAPATHS),
    (S, "port", 0, SERVICE, PORTS),
    (S, "port", 65536, SERVICE, PORTS),
    (S, "port", "80", SERVICE, PORTS),
    (S, "port", True, SERVICE, PORTS),
    (S, "protocol", "sctp", SERVICE, '"tcp" or "udp"'),
    (S, "protocol", 6, SERVICE, '"tcp" or "udp"'),
    (S, "algorithm", "fastest", SERVICE, "round_robin | weighted | source_hash | consistent"),
    (S, "algorithm", 1, SERVICE, "round_robin | weighted | source_hash | consistent"),
    (S, "vip", 5, SERVICE, "an IPv4 address"),
    (S, "vip", "10.0.0.300", SERVICE, IPV4),
    (S, "vip", "web.example", SERVICE, IPV4),
    (S, "backends", [], SERVICE, LIST_OF_BACKENDS),
    (S, "backends", {"ip": "10.0.0.1"}, SERVICE, LIST_OF_BACKENDS),
    (S, "health_check", "tcp", SERVICE, "a table"),
    (S, "name", "", "config: service[0]", "a non-empty string"),
    (S, "name", 7, "config: service[0]", "a non-empty string"),
    (B, "ip", "10.0.0", BACKEND, IPV4),
    (B, "ip", 167772161, BACKEND, "an IPv4 address"),
    (B, "port", 0, BACKEND, PORTS),
    (B, "port", 65536, BACKEND, PORTS),
    (B, "weight", 0, BACKEND, WEIGHTS),
    (B, "weight", 101, BACKEND, WEIGHTS),
    (B, "weight", "1", BACKEND, WEIGHTS),
    (B, "weight", True, BACKEND, WEIGHTS),
    (C, "kind", "icmp", CHECK, "tcp | http | udp | none"),
    (C, "kind", 1, CHECK, "tcp | http | udp | none"),
    (C, "interval", 0.009, CHECK, "seconds from 0.01 to 3600"),
    (C, "interval", 3600.5, CHECK, "seconds from 0.01 to 3600"),
    (C, "interval", "1", CHECK, "seconds from 0.01 to 3600"),
    (C, "interval", True, CHECK, "seconds from 0.01 to 3600"),
    (C, "timeout", 0.009, CHECK, "seconds from 0.01 to the interval (1.0)"),
    (C, "timeout", 1.001, CHECK, "seconds from 0.01 to the interval (1.0)"),
    (C, "timeout", "1", CHECK, "seconds from 0.01 to the interval (1.0)"),
    (C, "fall", 0, CHECK, "1 to 100"),
    (C, "fall", 101, CHECK, "1 to 100"),
    (C, "fall", 2.0, CHECK, "1 to 100"),
    (C, "rise", 0, CHECK, "1 to 100"),
    (C, "rise", 101, CHECK, "1 to 100"),
    (C, "rise", "2", CHECK, "1 to 100"),
    (C, "path", "health", CHECK, PATHS),
    (C, "path", "/a b", CHECK, PATHS),
    (C, "path", "/a\x01", CHECK, PATHS),
    (C, "path", "/" + "a" * 200, CHECK, PATHS),
    (C, "path", 1, CHECK, PATHS),
    (C, "send", 1, CHECK, "a string"),
]


def test_connection_idle_is_refused_with_why_it_went():
    """Connections now live in the switch's conntrack, which times them out itself: an old file is
    told so, not silently run with a setting that no longer does anything."""
    said = refused(with_key(S, "connection_idle", 60))
    assert said.startswith("config: service[0]: connection_idle = 60 is no longer used") and "remove the key" in said


@pytest.mark.parametrize(("section", "key", "value", "where", "allowed"), REFUSED,
                         ids=[f"{s}.{k}={v!r:.20}" for s, k, v, _, _ in REFUSED])
def test_a_wrong_value_names_the_key_the_value_and_what_is_allowed(section, key, value, where, allowed):
    """A wrong type or a value just outside its range is refused with the whole story, not a traceback."""
    assert refused(with_key(section, key, value)) == not_allowed(where, key, value, allowed)


@pytest.mark.parametrize(("section", "key", "message"), [
    ("top", "service", "config: needs at least one [[service]] table"),
    (S, "name", "config: service[0]: missing key 'name' (a non-empty string)"),
    (S, "vip", f"{SERVICE}: missing key 'vip' (an IPv4 address)"),
    (S, "port", f"{SERVICE}: missing key 'port' ({PORTS})"),
    (S, "backends", f"{SERVICE}: missing key 'backends' ({LIST_OF_BACKENDS})"),
    (B, "ip", f"{BACKEND}: missing key 'ip' (an IPv4 address)"),
])
def test_a_required_key_left_out_is_named_with_what_it_takes(section, key, message):
    """The keys without a default are required, and the message says what to write."""
    assert refused(with_key(section, key, MISSING)) == message


@pytest.mark.parametrize(("section", "where", "allowed"), [
    ("top", "config", "service, switches"),
    (S, "config: service[0]", SERVICE_KEYS),  # before its name is read
    (B, BACKEND, "ip, port, weight"),
    (C, CHECK, "fall, interval, kind, path, rise, send, timeout"),
])
def test_an_unknown_key_is_refused_with_the_keys_that_are_allowed(section, where, allowed):
    """A misspelt key must not be silently ignored (it would leave the default in place)."""
    assert refused(with_key(section, "colour", "red")) == f"{where}: unknown key 'colour'; allowed keys: {allowed}"


def test_the_largest_pool_is_accepted_and_one_more_backend_is_refused():
    """256 backends fit the 8 bits a backend index has in cookies; 257 do not."""
    ips = [f"10.1.{i // 256}.{i % 256}" for i in range(257)]
    assert len(parse(service(backends=[{"ip": ip} for ip in ips[:256]])).services[0].backends) == 256
    message = refused(service(backends=[{"ip": ip} for ip in ips]))
    assert message.startswith(f"{SERVICE}: backends = [{{'ip': '10.1.0.0'}}") and message.endswith(
        f"is not allowed; expected {LIST_OF_BACKENDS}")


def services(n: int) -> dict:
    return {"service": [{"name": f"s{i}", "vip": "10.0.0.100", "port": i + 1, "backends": [{"ip": "10.0.0.1"}]}
                        for i in range(n)]}


def test_the_most_services_are_accepted_and_one_more_is_refused():
    """256 services fit the 8 bits a service index has in cookies and groups; 257 do not."""
    assert len(parse(services(256)).services) == 256
    assert refused(services(257)) == "config: 257 services; at most 256"


@pytest.mark.parametrize(("backends", "message"), [
    (["10.0.0.1"], f'{BACKEND}: must be a table like {{ip = "10.0.0.1", port = 80, weight = 1}}'),
    ([{"ip": "10.0.0.1"}, {"ip": "10.0.0.1", "port": 80}], f"{SERVICE}: a backend ip and port is listed twice"),
    ([{"ip": "10.0.0.100"}],
     f"{SERVICE}: backend 10.0.0.100 is a VIP; a backend must be a real host address"),
])
def test_a_wrong_backend_list_says_what_is_wrong(backends, message):
    """A backend that is not a table, listed twice or the VIP itself would break the pool: refused."""
    assert refused(service(backends=backends)) == message


def test_one_host_may_serve_on_two_ports():
    """Duplicates are ip *and* port: the same host on two ports is two backends."""
    s = parse(service(backends=[{"ip": "10.0.0.1", "port": 80}, {"ip": "10.0.0.1", "port": 81}])).services[0]
    assert [b.label for b in s.backends] == ["10.0.0.1:80", "10.0.0.1:81"]


def test_a_backend_that_is_another_services_vip_is_refused():
    """The switch answers ARP for every VIP, so no VIP can be reached as a backend."""
    raw = service()
    raw["service"].append({"name": "dns", "vip": "10.0.0.1", "port": 53, "protocol": "udp",
                           "backends": [{"ip": "10.0.0.3"}], "health_check": {"kind": "udp"}})
    assert refused(raw) == "config: service 'web': backend 10.0.0.1 is a VIP; a backend must be a real host address"


@pytest.mark.parametrize(("protocol", "kind", "fits"), [
    ("tcp", "udp", "tcp, http, none"),
    ("udp", "tcp", "udp, none"),
    ("udp", "http", "udp, none"),
])
def test_a_health_check_that_does_not_fit_the_protocol_is_refused(protocol, kind, fits):
    """A TCP SYN says nothing about a UDP service (and the reverse): the check must fit the protocol."""
    assert refused(service(protocol=protocol, health_check={"kind": kind})) == (
        f"{SERVICE}: health_check kind = {kind!r} does not fit protocol = {protocol!r}; use one of {fits}")


@pytest.mark.parametrize(("protocol", "kind"), [("tcp", "tcp"), ("tcp", "http"), ("tcp", "none"),
                                                ("udp", "udp"), ("udp", "none")])
def test_each_health_check_that_fits_the_protocol_is_accepted(protocol, kind):
    """Every documented pairing of protocol and check kind parses."""
    s = parse(service(protocol=protocol, health_check={"kind": kind})).services[0]
    assert (s.protocol, s.health_check.kind) == (protocol, kind)


def test_two_services_on_one_vip_port_and_protocol_are_refused():
    """The switch could not tell which service a packet is for."""
    raw = service()
    raw["service"].append({**raw["service"][0], "name": "web2"})
    assert refused(raw) == "config: two services listen on the same vip, port and protocol"


def test_services_may_share_a_vip_on_another_port_or_protocol():
    """VIP, port and protocol together name a service: changing any one of them makes another."""
    raw = service()
    raw["service"] += [{**raw["service"][0], "name": "web-udp", "protocol": "udp", "health_check": {"kind": "udp"}},
                       {**raw["service"][0], "name": "web-443", "port": 443}]
    assert [s.name for s in parse(raw).services] == ["web", "web-udp", "web-443"]
    assert parse(raw).vips == (IPv4Address("10.0.0.100"),)


def test_the_source_names_the_file_in_every_message(tmp_path):
    """Whoever reads the message must know which file to open: the path starts it."""
    path = tmp_path / "lb.toml"
    path.write_text('switches = [1]\n[[service]]\nname = "web"\nvip = "10.0.0.100"\nport = 80\n'
                    'backends = [{ip = "10.0.0.1", weight = 3}]\n')
    assert load(path).services[0].backends[0].weight == 3 and load(path).switches == (1,)
    path.write_text(path.read_text() + "colour = 1\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: service[0]: unknown key 'colour'")
    for raw, message in [({"speed": 1}, "lb.toml: unknown key 'speed'"), ({}, "lb.toml: needs at least one"),
                         ({**service(), "switches": [0]}, "lb.toml: switches = [0] is not allowed")]:
        with pytest.raises(ConfigError) as caught:
            parse(raw, "lb.toml")
        assert str(caught.value).startswith(message)


EVERYTHING = LbConfig(
    services=(
        Service("web", IPv4Address("10.0.0.100"), 8080, "tcp", "weighted",
                (Backend(IPv4Address("10.0.0.1"), 80, 7), Backend(IPv4Address("10.0.0.2"), 81, 100)),
                HealthCheck("http", 2.5, 0.25, 5, 4, "/health", "hello\n")),
        Service("dns", IPv4Address("10.0.0.53"), 53, "udp", "source_hash", (Backend(IPv4Address("10.0.0.3"), 5353),),
                HealthCheck("udp", 0.5, 0.5, 1, 1, "/", "q")),
    ),
    switches=(1, 3),
)


def test_a_configuration_built_in_code_round_trips_through_its_toml():
    """The harness hands the controller a config as TOML (dump): every field must come back as it was."""
    assert parse(tomllib.loads(dump(EVERYTHING))) == EVERYTHING
    assert check(EVERYTHING) == EVERYTHING
    every_switch = LbConfig(EVERYTHING.services)
    assert "switches" not in tomllib.loads(dump(every_switch)) and check(every_switch) == every_switch


def test_a_wrong_configuration_built_in_code_gets_the_same_message_as_a_file():
    """check() runs the file's checks on a configuration built in code, and says where it came from."""
    bad = LbConfig((Service("web", IPv4Address("10.0.0.100"), 80, "tcp", "consistent",
                            (Backend(IPv4Address("10.0.0.1"), 80, 0),), HealthCheck()),))
    with pytest.raises(ConfigError) as caught:
        check(bad)
    assert str(caught.value) == not_allowed("the configuration built by halab: service 'web': backends[0]",
                                            "weight", 0, WEIGHTS)


def test_the_controller_refuses_a_wrong_file_with_a_message_not_a_traceback(tmp_path):
    """An operator's typo must end in a one-line message and exit 2, not a Python traceback."""
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
    """`status` with nothing listening explains itself instead of a connection-refused traceback."""
    result = subprocess.run([sys.executable, "-m", "controller.launcher", "status", "--api-port", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "halab-controller --config FILE" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_a_service_without_a_check_kind_is_checked_over_its_own_protocol(protocol):
    """A UDP service that names no check kind gets a UDP check, not a refusal of a TCP check it never asked for."""
    parsed = parse(service(protocol=protocol)).services[0]
    assert parsed.health_check.kind == protocol


def test_a_backend_of_the_status_is_named_by_its_lab_host():
    from harness import lb
    from topologies import ActiveActiveTopo

    topo = ActiveActiveTopo(backends=2)
    assert lb.backend_host(topo, "10.0.0.2:7000") == "backend2"
    assert lb.backend_host(topo, "10.9.9.9:7000") == "10.9.9.9:7000"  # not a lab host: the label itself
