"""The heartbeat agent's TOML configuration, checked before anything starts.

    name = "node1"
    priority = 200
    secret = "change-me-to-a-long-secret"   # shared by the cluster (16 characters or more)
    interval = 0.1                # seconds between heartbeats (0.01 to 10)
    deadtime = 0.3                # silence on every link that makes the peer dead (default 3 x interval)
    initdead = 2.0                # at start, how long to wait for a peer never heard (default 2 s or 2 x deadtime)
    detector = "deadtime"         # or "phi" (phi accrual, threshold phi_threshold)
    auto_failback = true
    event_log = "/run/halab/heartbeat-node1.jsonl"
    realtime_priority = 10        # optional: the loop runs SCHED_RR at this priority (1 to 99)

    [peer]
    name = "node2"
    priority = 100

    [[link]]                      # the dedicated heartbeat link, then the service network
    interface = "node1-eth1"
    peer_address = "192.168.1.2"

    [quorum]
    tiebreaker = "10.0.0.254"     # no answer from it: no takeover

    [fencing]
    socket = "/run/halab/fence.sock"

    [assist]                      # optional: the switch's controller says when the peer's ports go down
    socket = "/run/halab/assist.sock"

    [[resource]]                  # started in this order, stopped in reverse
    name = "vip"
    kind = "vip"
    address = "10.0.0.100/24"
    interface = "node1-eth0"

    [[resource]]
    name = "web"
    kind = "service"
    start = "/usr/local/bin/web start"
    stop = "/usr/local/bin/web stop"
    monitor = "/usr/local/bin/web monitor"

A wrong value fails with a message that names the key, the value and what is allowed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import tomli_w

from ha import realtime
from ha.assist import SOCKET_ALLOWED, socket_path_ok
from ha.configcheck import (
    INTERFACE,
    ConfigError,
    checker,
    command_line,
    get,
    interface_name,
    ipv4_address,
    loader,
    named_table,
    no_unknown,
    table_array,
)
from ha.heartbeat import postgresql
from ha.heartbeat.syncrep import least_fallback

TOP_KEYS = {"name", "priority", "secret", "interval", "deadtime", "initdead", "detector", "phi_threshold",
            "auto_failback", "failure_timeout", "event_log", "peer", "link", "quorum", "fencing", "assist", "resource",
            "port",
            realtime.KEY}
#: The keys each kind of resource takes.
RESOURCE_KEYS = {
    "vip": {"name", "kind", "address", "interface"},
    "service": {"name", "kind", "start", "stop", "monitor", "monitor_interval", "monitor_timeout"},
    "postgresql": {"name", "kind", "monitor_interval", "monitor_timeout", *postgresql.KEYS},
}
DEFAULT_PORT = 694  # Linux-HA heartbeat's UDP port
INTERVAL_MIN, INTERVAL_MAX = 0.01, 10.0
MIN_SECRET_LENGTH = 16
DETECTORS = ("deadtime", "phi")


@dataclass(frozen=True)
class Link:
    interface: str
    peer_address: IPv4Address

    @property
    def name(self) -> str:
        return self.interface


@dataclass(frozen=True)
class Resource:
    name: str
    kind: str  # "vip", "service" or "postgresql" (a service whose commands are built from `server`)
    address: IPv4Interface | None = None
    interface: str = ""
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    monitor: tuple[str, ...] = ()
    monitor_interval: float = 1.0
    monitor_timeout: float = 1.0
    server: postgresql.PgServer | None = None


@dataclass(frozen=True)
class HeartbeatConfig:
    name: str
    priority: int
    secret: bytes
    peer: str
    peer_priority: int
    links: tuple[Link, ...]
    resources: tuple[Resource, ...]
    interval: float = 1.0
    deadtime: float = 3.0
    initdead: float = 6.0
    detector: str = "deadtime"
    phi_threshold: float = 8.0
    auto_failback: bool = True
    failure_timeout: float = 10.0
    tiebreaker: IPv4Address | None = None
    fence_socket: Path | None = None
    assist_socket: Path | None = None  # failover assist: the peer's ports going down end its deadtime at once
    port: int = DEFAULT_PORT
    event_log: Path | None = None
    realtime_priority: int | None = None





def dump(cfg: HeartbeatConfig) -> str:
    """The TOML that `parse` reads back into `cfg`: how the harness hands a node its configuration."""
    raw: dict = {
        "name": cfg.name, "priority": cfg.priority, "secret": cfg.secret.decode(), "interval": cfg.interval,
        "deadtime": cfg.deadtime, "initdead": cfg.initdead, "detector": cfg.detector,
        "phi_threshold": cfg.phi_threshold, "auto_failback": cfg.auto_failback,
        "failure_timeout": cfg.failure_timeout, "port": cfg.port,
        "peer": {"name": cfg.peer, "priority": cfg.peer_priority},
        "link": [{"interface": link.interface, "peer_address": str(link.peer_address)} for link in cfg.links],
        "resource": [_resource_table(r) for r in cfg.resources],
    }
    if cfg.event_log:
        raw["event_log"] = str(cfg.event_log)
    if cfg.realtime_priority is not None:
        raw[realtime.KEY] = cfg.realtime_priority
    if cfg.tiebreaker:
        raw["quorum"] = {"tiebreaker": str(cfg.tiebreaker)}
    if cfg.fence_socket:
        raw["fencing"] = {"socket": str(cfg.fence_socket)}
    if cfg.assist_socket:
        raw["assist"] = {"socket": str(cfg.assist_socket)}
    return tomli_w.dumps(raw)


def _resource_table(r: Resource) -> dict:
    if r.kind == "vip":
        return {"name": r.name, "kind": r.kind, "address": str(r.address), "interface": r.interface}
    timing = {"monitor_interval": r.monitor_interval, "monitor_timeout": r.monitor_timeout}
    if r.server is not None:
        return {"name": r.name, "kind": r.kind, **r.server.table(), **timing}
    return {"name": r.name, "kind": r.kind, "start": shlex.join(r.start), "stop": shlex.join(r.stop),
            "monitor": shlex.join(r.monitor), **timing}


def parse(raw: dict, source: str = "config") -> HeartbeatConfig:
    no_unknown(raw, TOP_KEYS, source)
    interval = float(get(raw, "interval", (int, float), source, default=1.0,
                         check=lambda v: INTERVAL_MIN <= v <= INTERVAL_MAX,
                         allowed=f"seconds from {INTERVAL_MIN:g} to {INTERVAL_MAX:g}"))
    peer = get(raw, "peer", dict, source, allowed='a table like {name = "node2", priority = 100}')
    no_unknown(peer, {"name", "priority"}, f"{source}: peer")
    links = table_array({"link": raw.get("link")}, "link", source, _link)
    quorum = get(raw, "quorum", dict, source, default={}, allowed="a table")
    no_unknown(quorum, {"tiebreaker"}, f"{source}: quorum")
    fencing = get(raw, "fencing", dict, source, default={}, allowed="a table")
    no_unknown(fencing, {"socket"}, f"{source}: fencing")
    assist = get(raw, "assist", dict, source, default={}, allowed='a table like {socket = "/run/halab/assist.sock"}')
    no_unknown(assist, {"socket"}, f"{source}: assist")
    assist_socket = get(assist, "socket", str, f"{source}: assist", check=socket_path_ok,
                        allowed=SOCKET_ALLOWED) if "assist" in raw else None
    deadtime = float(get(raw, "deadtime", (int, float), source, default=3 * interval,
                         check=lambda v: interval <= v <= 3600,
                         allowed=f"seconds from the interval ({interval}) to 3600"))
    detector = get(raw, "detector", str, source, default="deadtime", check=lambda v: v in DETECTORS,
                   allowed=" or ".join(f'"{d}"' for d in DETECTORS))
    log = get(raw, "event_log", str, source, default=None, allowed="a file path")
    socket = get(fencing, "socket", str, f"{source}: fencing", default=None, allowed="a unix socket path")
    name = get(raw, "name", str, source, check=lambda v: 0 < len(v.encode()) <= 64, allowed="1 to 64 bytes")
    peer_name = get(peer, "name", str, f"{source}: peer", check=lambda v: 0 < len(v.encode()) <= 64 and v != name,
                    allowed=f"the peer's name: 1 to 64 bytes, not this node's ({name!r})")
    secret = raw.get("secret")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        # Never echo a secret, not even a wrong one.
        raise ConfigError(f"{source}: secret: expected a shared secret of at least {MIN_SECRET_LENGTH} characters")
    cfg = HeartbeatConfig(
        name=name,
        priority=get(raw, "priority", int, source, default=100, check=lambda v: 1 <= v <= 255, allowed="1 to 255"),
        secret=secret.encode(),
        peer=peer_name,
        peer_priority=get(peer, "priority", int, f"{source}: peer", default=100, check=lambda v: 1 <= v <= 255,
                          allowed="1 to 255"),
        links=links,
        resources=table_array({"resource": raw.get("resource")}, "resource", source, _resource),
        interval=interval,
        initdead=float(get(raw, "initdead", (int, float), source, default=max(2.0, 2 * deadtime),
                           check=lambda v: 0 <= v <= 3600, allowed="seconds from 0 to 3600")),
        deadtime=deadtime,
        detector=detector,
        phi_threshold=float(get(raw, "phi_threshold", (int, float), source, default=8.0,
                                check=lambda v: 0.5 <= v <= 30, allowed="0.5 to 30")),
        auto_failback=get(raw, "auto_failback", bool, source, default=True, allowed="true or false"),
        failure_timeout=float(get(raw, "failure_timeout", (int, float), source, default=10.0,
                                  check=lambda v: 0 <= v <= 3600, allowed="seconds from 0 to 3600")),
        tiebreaker=ipv4_address(quorum["tiebreaker"], "tiebreaker", f"{source}: quorum") if "tiebreaker" in quorum
        else None,
        fence_socket=Path(socket) if socket else None,
        assist_socket=Path(assist_socket) if assist_socket else None,
        port=get(raw, "port", int, source, default=DEFAULT_PORT, check=lambda v: 1 <= v <= 65535,
                 allowed="a UDP port"),
        event_log=Path(log) if log else None,
        realtime_priority=realtime.parse(raw, source),
    )
    _check_synchronous(cfg, source)
    return cfg


def _check_synchronous(cfg: HeartbeatConfig, source: str) -> None:
    """One synchronous database at most, and a lease that outlasts a takeover: the standby must
    still hold it when, deadtime and fencing later, it decides to promote (ha.heartbeat.syncrep)."""
    synchronous = [r for r in cfg.resources if r.server is not None and r.server.synchronous_standby]
    if len(synchronous) > 1:
        raise ConfigError(f"{source}: resources {', '.join(r.name for r in synchronous)}: only one postgresql "
                          "resource may set synchronous_standby")
    for r in synchronous:
        assert r.server is not None
        least = least_fallback(cfg.deadtime)
        if not r.server.synchronous_mode_strict and r.server.synchronous_fallback_timeout < least:
            raise ConfigError(f"{source}: resource {r.name}: synchronous_fallback_timeout = "
                              f"{r.server.synchronous_fallback_timeout:g} is shorter than a takeover; expected at "
                              f"least deadtime + 1 s ({least:g})")


def _link(t: object, where: str) -> Link:
    if not isinstance(t, dict):
        raise ConfigError(f'{where}: must be a table like {{interface = "eth1", peer_address = "192.168.1.2"}}')
    no_unknown(t, {"interface", "peer_address"}, where)
    return Link(get(t, "interface", str, where, check=interface_name, allowed=INTERFACE),
                ipv4_address(get(t, "peer_address", str, where, allowed="the peer's address on this link"),
                         "peer_address", where))


def _resource(t: object, where: str) -> Resource:
    name, where = named_table(t, set().union(*RESOURCE_KEYS.values()), where, "resource")
    kind = get(t, "kind", str, where, check=lambda v: v in RESOURCE_KEYS,
               allowed=" or ".join(f'"{k}"' for k in RESOURCE_KEYS))
    no_unknown(t, RESOURCE_KEYS[kind], f"{where} (kind {kind})")
    if kind == "vip":
        raw = get(t, "address", str, where, allowed='an address/prefix like "10.0.0.100/24"')
        try:
            address = IPv4Interface(raw)
        except ValueError:
            raise ConfigError(f'{where}: address = {raw!r} is not an address/prefix like "10.0.0.100/24"') from None
        return Resource(name, kind, address=address,
                        interface=get(t, "interface", str, where, check=interface_name, allowed=INTERFACE))
    server = _pg_server(t, where) if kind == "postgresql" else None
    default_interval = postgresql.MONITOR_INTERVAL if server else 1.0
    interval = float(get(t, "monitor_interval", (int, float), where, default=default_interval,
                         check=lambda v: 0.01 <= v <= 3600, allowed="seconds from 0.01 to 3600"))
    timeout = float(get(t, "monitor_timeout", (int, float), where,
                        default=postgresql.MONITOR_TIMEOUT if server else interval,
                        check=lambda v: 0.01 <= v <= 3600, allowed="seconds"))
    if server is not None:
        return postgresql_resource(name, server, interval, timeout)
    command = {key: command_line(t, key, where) for key in ("start", "stop", "monitor")}
    return Resource(name, kind, **command, monitor_interval=interval, monitor_timeout=timeout)


def postgresql_resource(name: str, server: postgresql.PgServer, monitor_interval: float = postgresql.MONITOR_INTERVAL,
                        monitor_timeout: float = postgresql.MONITOR_TIMEOUT) -> Resource:
    """A `postgresql` resource: a service whose commands come from its server's settings."""
    return Resource(name, "postgresql", start=server.start(), stop=server.stop(), monitor=server.monitor(),
                    monitor_interval=monitor_interval, monitor_timeout=monitor_timeout, server=server)


def _pg_server(t: dict, where: str) -> postgresql.PgServer:
    def path(key: str, default: object = ...) -> str:
        return get(t, key, str, where, default=default, check=lambda v: v.startswith("/") and "\0" not in v,
                   allowed="an absolute path")

    return postgresql.PgServer(
        data_directory=path("data_directory"),
        socket_directory=path("socket_directory"),
        port=get(t, "port", int, where, default=postgresql.DEFAULTS["port"], check=lambda v: 1 <= v <= 65535,
                 allowed="a TCP port"),
        bin_directory=path("bin_directory", postgresql.DEFAULTS["bin_directory"]),
        os_user=get(t, "os_user", str, where, default=postgresql.DEFAULTS["os_user"],
                    check=lambda v: v.replace("-", "").replace("_", "").isalnum() and len(v) <= 32,
                    allowed="a user name (letters, digits, - and _)"),
        promote_timeout=get(t, "promote_timeout", int, where, default=postgresql.DEFAULTS["promote_timeout"],
                            check=lambda v: 1 <= v <= 3600, allowed="whole seconds from 1 to 3600"),
        synchronous_standby=get(t, "synchronous_standby", str, where, default="",
                                check=lambda v: (len(v) <= 63 and v.replace("-", "").replace("_", "").isalnum())
                                or v == "", allowed="the standby's cluster_name (letters, digits, - and _), "
                                                    'or "" for asynchronous replication'),
        synchronous_mode_strict=get(t, "synchronous_mode_strict", bool, where, default=False,
                                    allowed="true (writes wait for the standby, always) or false"),
        primary_conninfo=_conninfo(t, where),
        synchronous_fallback_timeout=float(get(
            t, "synchronous_fallback_timeout", (int, float), where,
            default=postgresql.DEFAULTS["synchronous_fallback_timeout"], check=lambda v: 1 <= v <= 600,
            allowed="seconds from 1 to 600")))


#: A password in a libpq connection string: `password=...`, or the `user:secret@` of a URI.
_PASSWORD = re.compile(r"\bpassword\s*=|^postgres(?:ql)?://[^/@]*:[^/@]*@")


def _conninfo(t: dict, where: str) -> str:
    """primary_conninfo: never echoed when it holds a password (which belongs in a passfile)."""
    if _PASSWORD.search(str(t.get("primary_conninfo"))):  # whatever its type: a list may hold one too
        raise ConfigError(f"{where}: primary_conninfo holds a password; put it in a libpq passfile "
                          "(passfile=/path) and leave it out of the configuration")
    return get(t, "primary_conninfo", str, where, default="",
               check=lambda v: v == "" or ("host=" in v and v.isprintable() and len(v) <= 1000),
               allowed='a libpq connection string to the peer\'s server, like "host=10.0.1.12 '
                       'user=replicator dbname=postgres passfile=/path"')


load = loader(parse)
check = checker(parse, dump)
