"""The load balancer's TOML configuration, checked before the controller starts.

    switches = [1]                    # the datapath ids that balance (default: every switch)

    [[service]]
    name = "web"
    vip = "10.0.0.100"
    port = 80
    protocol = "tcp"                  # or "udp"
    algorithm = "consistent"          # round_robin | weighted | source_hash | consistent
    backends = [{ip = "10.0.0.1", port = 80, weight = 1}, {ip = "10.0.0.2", port = 80}]
    # the check's kind is by default the service's protocol
    health_check = {kind = "tcp", interval = 0.1, timeout = 0.1, fall = 3, rise = 2}

A wrong value fails with a message that names the key, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

import tomli_w

from controller.ids import MAX_BACKENDS, MAX_SERVICES, MAX_WEIGHT
from ha.configcheck import (
    ConfigError,
    checker,
    get,
    ipv4_address,
    loader,
    named_table,
    no_unknown,
    table_array,
    unique,
)

ALGORITHMS = ("round_robin", "weighted", "source_hash", "consistent")
CHECK_KINDS = ("tcp", "http", "udp", "none")
SERVICE_KEYS = {"name", "vip", "port", "protocol", "algorithm", "backends", "health_check"}
BACKEND_KEYS = {"ip", "port", "weight"}
CHECK_KEYS = {"kind", "interval", "timeout", "fall", "rise", "path", "send"}
LIKE_ADDRESS = 'an IPv4 address like "10.0.0.100"'


@dataclass(frozen=True)
class Backend:
    ip: IPv4Address
    port: int
    weight: int = 1

    @property
    def label(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class HealthCheck:
    kind: str = "tcp"
    interval: float = 1.0
    timeout: float = 1.0
    fall: int = 3
    rise: int = 2
    path: str = "/"
    send: str = "halab-health-check\n"


@dataclass(frozen=True)
class Service:
    name: str
    vip: IPv4Address
    port: int
    protocol: str
    algorithm: str
    backends: tuple[Backend, ...]
    health_check: HealthCheck

    @property
    def in_switch(self) -> bool:
        """Hash algorithms run in the switch (select group); round robin needs the controller."""
        return self.algorithm in ("source_hash", "consistent")

    @property
    def checks_on_reset(self) -> bool:
        """A checked TCP service: a backend's reset to a client gets it checked at once."""
        return self.protocol == "tcp" and self.health_check.kind != "none"


@dataclass(frozen=True)
class LbConfig:
    services: tuple[Service, ...]
    #: The datapath ids of the switches that balance; empty: every switch. The others only switch
    #: (a lab whose back network must not answer for the front's VIP).
    switches: tuple[int, ...] = ()

    @property
    def vips(self) -> tuple[IPv4Address, ...]:
        return tuple(dict.fromkeys(s.vip for s in self.services))





def dump(cfg: LbConfig) -> str:
    """The TOML that `parse` reads back into `cfg`: how the harness hands the controller its services."""
    raw: dict = {"service": [_service_table(s) for s in cfg.services]}
    if cfg.switches:
        raw["switches"] = list(cfg.switches)
    return tomli_w.dumps(raw)


def _service_table(s: Service) -> dict:
    c = s.health_check
    return {"name": s.name, "vip": str(s.vip), "port": s.port, "protocol": s.protocol, "algorithm": s.algorithm,
            "backends": [{"ip": str(b.ip), "port": b.port, "weight": b.weight} for b in s.backends],
            "health_check": {"kind": c.kind, "interval": c.interval, "timeout": c.timeout, "fall": c.fall,
                             "rise": c.rise, "path": c.path, "send": c.send}}


def parse(raw: dict, source: str = "config") -> LbConfig:
    no_unknown(raw, {"service", "switches"}, source)
    services = table_array(raw, "service", source, _service)
    switches = get(raw, "switches", list, source, default=[],
                   check=lambda v: all(isinstance(d, int) and not isinstance(d, bool) and 0 < d < 2**64 for d in v),
                   allowed="a list of datapath ids (integers) like [1]")
    if len(services) > MAX_SERVICES:
        raise ConfigError(f"{source}: {len(services)} services; at most {MAX_SERVICES}")
    unique([(s.vip, s.port, s.protocol) for s in services],
           f"{source}: two services listen on the same vip, port and protocol")
    vips = {s.vip for s in services}
    for s in services:
        for b in s.backends:
            if b.ip in vips:
                raise ConfigError(f"{source}: service {s.name!r}: backend {b.ip} is a VIP; "
                                  "a backend must be a real host address")
    return LbConfig(services, tuple(switches))


def _port(t: dict, where: str, default: object = ...) -> int:
    return get(t, "port", int, where, default=default, check=lambda v: 1 <= v <= 65535,
               allowed="a port number from 1 to 65535")


def _service(t: object, where: str) -> Service:
    if isinstance(t, dict) and "connection_idle" in t:
        raise ConfigError(f"{where}: connection_idle = {t['connection_idle']!r} is no longer used: the switch's "
                          "connection tracker keeps each connection until it closes, or until it has been quiet "
                          "for conntrack's own time (30 s for UDP); remove the key")
    name, where = named_table(t, SERVICE_KEYS, where, "service")
    port = _port(t, where)
    raw_backends = get(t, "backends", list, where, check=lambda v: 0 < len(v) <= MAX_BACKENDS,
                       allowed=f'a list of 1 to {MAX_BACKENDS} backends like [{{ip = "10.0.0.1", port = 80}}]')
    backends = tuple(_backend(b, port, f"{where}: backends[{i}]") for i, b in enumerate(raw_backends))
    if len({b.label for b in backends}) != len(backends):
        raise ConfigError(f"{where}: a backend ip and port is listed twice")
    protocol = get(t, "protocol", str, where, default="tcp", check=lambda v: v in ("tcp", "udp"),
                   allowed='"tcp" or "udp"')
    check = _health_check(get(t, "health_check", dict, where, default={}, allowed="a table"),
                          f"{where}: health_check", default_kind=protocol)
    fits = {"tcp": ("tcp", "http", "none"), "udp": ("udp", "none")}[protocol]
    if check.kind not in fits:
        raise ConfigError(f"{where}: health_check kind = {check.kind!r} does not fit protocol = {protocol!r}; "
                          f"use one of {', '.join(fits)}")
    return Service(
        name=name, port=port,
        vip=ipv4_address(get(t, "vip", str, where, allowed="an IPv4 address"), "vip", where, LIKE_ADDRESS),
        protocol=protocol,
        algorithm=get(t, "algorithm", str, where, default="consistent", check=lambda v: v in ALGORITHMS,
                      allowed=" | ".join(ALGORITHMS)),
        backends=backends, health_check=check,
    )


def _backend(b: object, default_port: int, where: str) -> Backend:
    if not isinstance(b, dict):
        raise ConfigError(f'{where}: must be a table like {{ip = "10.0.0.1", port = 80, weight = 1}}')
    no_unknown(b, BACKEND_KEYS, where)
    return Backend(
        ip=ipv4_address(get(b, "ip", str, where, allowed="an IPv4 address"), "ip", where, LIKE_ADDRESS),
        port=_port(b, where, default=default_port),
        weight=get(b, "weight", int, where, default=1, check=lambda v: 1 <= v <= MAX_WEIGHT,
                   allowed=f"an integer from 1 to {MAX_WEIGHT} (drain a backend instead of weight 0)"),
    )


def _health_check(t: dict, where: str, default_kind: str) -> HealthCheck:
    """`default_kind`: the check a service gets unless it says otherwise, its own protocol's."""
    no_unknown(t, CHECK_KEYS, where)
    interval = float(get(t, "interval", (int, float), where, default=1.0, check=lambda v: 0.01 <= v <= 3600,
                         allowed="seconds from 0.01 to 3600"))
    return HealthCheck(
        kind=get(t, "kind", str, where, default=default_kind, check=lambda v: v in CHECK_KINDS,
                 allowed=" | ".join(CHECK_KINDS)),
        interval=interval,
        timeout=float(get(t, "timeout", (int, float), where, default=min(interval, 1.0),
                          check=lambda v: 0.01 <= v <= interval,
                          allowed=f"seconds from 0.01 to the interval ({interval})")),
        fall=get(t, "fall", int, where, default=3, check=lambda v: 1 <= v <= 100, allowed="1 to 100"),
        rise=get(t, "rise", int, where, default=2, check=lambda v: 1 <= v <= 100, allowed="1 to 100"),
        path=get(t, "path", str, where, default="/",
                 check=lambda v: v.startswith("/") and v.isprintable() and " " not in v and len(v) <= 200,
                 allowed='a URL path like "/health" (no spaces or control characters)'),
        send=get(t, "send", str, where, default="halab-health-check\n", allowed="a string"),
    )


load = loader(parse)
check = checker(parse, dump)
