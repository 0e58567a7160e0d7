"""The agent's TOML configuration, in keepalived's vocabulary, checked before anything starts.

    event_log = "/run/halab/vrrp-server1.jsonl"     # optional
    realtime_priority = 10                           # optional: SCHED_RR (keepalived's vrrp_rt_priority)
    assist_socket = "/run/halab/assist.sock"         # optional: where the switch's controller tells of ports down

    [[vrrp_instance]]
    name = "VI_1"
    interface = "server1-eth0"
    virtual_router_id = 51
    priority = 200
    advert_int = 1.0
    virtual_ipaddress = ["10.0.0.100/24"]
    assist = false                                   # true: take over as soon as the switch saw the
                                                     # master's port go down (needs the controller's assist)

A wrong value fails with a message that names the key, the value and what is allowed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_address, ip_interface
from pathlib import Path

import tomli_w

from ha import realtime
from ha.assist import DEFAULT_SOCKET, SOCKET_ALLOWED, socket_path_ok
from ha.configcheck import (
    INTERFACE,
    ConfigError,
    checker,
    command_line,
    get,
    interface_name,
    loader,
    named_table,
    no_unknown,
    table_array,
    unique,
)
from ha.vrrp.packet import Address

#: VRRPv3 counts the advertisement interval in centiseconds, in 12 bits.
ADVERT_INT_MIN, ADVERT_INT_MAX = 0.01, 40.95
PRIORITY_MIN, PRIORITY_MAX = 1, 255  # 255: the address owner
VRID_MIN, VRID_MAX = 1, 255

TOP_KEYS = {"vrrp_instance", "event_log", "assist_socket", realtime.KEY}
INSTANCE_KEYS = {
    "name", "interface", "virtual_router_id", "priority", "advert_int", "virtual_ipaddress", "preempt",
    "preempt_delay", "accept", "unicast_peer", "notify", "garp_master_repeat", "garp_master_delay",
    "garp_lower_prio_delay",
    "checksum_with_pseudo_header", "track_interface", "track_script", "use_vmac", "assist",
}
SCRIPT_KEYS = {"script", "interval", "timeout", "weight", "fall", "rise"}


@dataclass(frozen=True)
class TrackInterface:
    interface: str
    weight: int = 0  # 0: FAULT while down; otherwise added to the priority while down


@dataclass(frozen=True)
class TrackScript:
    argv: tuple[str, ...]
    interval: float = 1.0
    timeout: float = 1.0
    weight: int = 0
    fall: int = 1
    rise: int = 1


@dataclass(frozen=True)
class InstanceConfig:
    name: str
    interface: str
    virtual_router_id: int
    priority: int
    advert_int: float
    virtual_ipaddress: tuple[IPv4Interface | IPv6Interface, ...]
    preempt: bool = True
    preempt_delay: float = 0.0
    accept: bool = True  # keepalived's behaviour unless vrrp_strict; false: RFC 9568's default
    unicast_peer: tuple[Address, ...] = ()
    notify: str | None = None
    garp_master_repeat: int = 5
    garp_master_delay: float = 5.0
    garp_lower_prio_delay: float = 5.0  # keepalived's default: garp_master_delay
    checksum_with_pseudo_header: bool = True
    track_interface: tuple[TrackInterface, ...] = ()
    track_script: tuple[TrackScript, ...] = ()
    use_vmac: str | None = None  # the macvlan interface that carries the virtual MAC, or None
    assist: bool = False  # hear from the switch's controller that the master's port went down

    @property
    def family(self) -> int:
        return self.virtual_ipaddress[0].version


@dataclass(frozen=True)
class AgentConfig:
    instances: tuple[InstanceConfig, ...]
    event_log: Path | None = None
    realtime_priority: int | None = None
    assist_socket: Path = DEFAULT_SOCKET





def dump(cfg: AgentConfig) -> str:
    """The TOML that `parse` reads back into `cfg`: how the harness hands a daemon its configuration."""
    raw: dict = {"event_log": str(cfg.event_log)} if cfg.event_log else {}
    if cfg.realtime_priority is not None:
        raw[realtime.KEY] = cfg.realtime_priority
    if cfg.assist_socket != DEFAULT_SOCKET:
        raw["assist_socket"] = str(cfg.assist_socket)
    raw["vrrp_instance"] = [_instance_table(i) for i in cfg.instances]
    return tomli_w.dumps(raw)


def _instance_table(i: InstanceConfig) -> dict:
    table = {
        "name": i.name, "interface": i.interface, "virtual_router_id": i.virtual_router_id, "priority": i.priority,
        "advert_int": i.advert_int, "virtual_ipaddress": [str(v) for v in i.virtual_ipaddress],
        "preempt": i.preempt, "preempt_delay": i.preempt_delay, "accept": i.accept,
        "unicast_peer": [str(p) for p in i.unicast_peer], "garp_master_repeat": i.garp_master_repeat,
        "garp_master_delay": i.garp_master_delay, "garp_lower_prio_delay": i.garp_lower_prio_delay,
        "checksum_with_pseudo_header": i.checksum_with_pseudo_header,
        "track_interface": [{"interface": t.interface, "weight": t.weight} for t in i.track_interface],
        "track_script": [{"script": shlex.join(t.argv), "interval": t.interval, "timeout": t.timeout,
                          "weight": t.weight, "fall": t.fall, "rise": t.rise} for t in i.track_script],
        "use_vmac": i.use_vmac or False,
        "assist": i.assist,
    }
    if i.notify is not None:
        table["notify"] = i.notify
    return table


def parse(raw: dict, source: str = "config") -> AgentConfig:
    no_unknown(raw, TOP_KEYS, source)
    instances = table_array(raw, "vrrp_instance", source, _instance)
    unique([(i.interface, i.virtual_router_id, i.family) for i in instances],
           f"{source}: two instances use the same virtual_router_id on one interface and family")
    unique([i.use_vmac for i in instances if i.use_vmac], f"{source}: two instances name the same use_vmac interface")
    log = raw.get("event_log")
    if log is not None and not isinstance(log, str):
        raise ConfigError(f"{source}: event_log = {log!r}: expected a file path (string)")
    sock = get(raw, "assist_socket", str, source, default=str(DEFAULT_SOCKET), check=socket_path_ok,
               allowed=SOCKET_ALLOWED)
    return AgentConfig(instances, Path(log) if log else None, realtime.parse(raw, source), Path(sock))


def _text(value: object) -> str:
    """An address must be written as a string: ipaddress would take the integer 7 as 0.0.0.7."""
    if not isinstance(value, str):
        raise TypeError
    return value


def _instance(t: dict, where: str) -> InstanceConfig:
    if isinstance(t, dict) and "state" in t:
        raise ConfigError(f"{where}: state = {t['state']!r}: halab-vrrp has no configured state; every router "
                          "starts as BACKUP and the election makes the highest priority MASTER (keepalived "
                          "treats `state` as a hint too); remove the line and give the master the higher priority")
    name, where = named_table(t, INSTANCE_KEYS, where, "vrrp_instance")
    vips = get(t, "virtual_ipaddress", list, where, allowed='a non-empty list like ["10.0.0.100/24"]', check=bool)
    parsed = []
    for v in vips:
        try:
            parsed.append(ip_interface(_text(v)))
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: virtual_ipaddress entry {v!r} is not an address/prefix "
                              'like "10.0.0.100/24" or "fd00::100/64"') from None
    if len({p.version for p in parsed}) != 1:
        raise ConfigError(f"{where}: virtual_ipaddress mixes IPv4 and IPv6; use one instance per family")
    peers = []
    for p in get(t, "unicast_peer", list, where, default=[], allowed="a list of addresses"):
        try:
            peers.append(ip_address(_text(p)))
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: unicast_peer entry {p!r} is not an IP address") from None
        if peers[-1].version != parsed[0].version:
            raise ConfigError(f"{where}: unicast_peer entry {p!r} is IPv{peers[-1].version}, the instance's "
                              f"virtual_ipaddress IPv{parsed[0].version}; use peers of the same family")
    advert_int = float(get(t, "advert_int", (int, float), where, default=1.0,
                           check=lambda v: ADVERT_INT_MIN <= v <= ADVERT_INT_MAX,
                           allowed=f"seconds from {ADVERT_INT_MIN} to {ADVERT_INT_MAX}"))
    if abs(round(advert_int * 100) - advert_int * 100) > 1e-6:
        raise ConfigError(f"{where}: advert_int = {advert_int} is not allowed; VRRPv3 counts in centiseconds "
                          "(0.01 s steps)")
    garp_master_delay = float(get(t, "garp_master_delay", (int, float), where, default=5.0,
                                  check=lambda v: 0 <= v <= 1000, allowed="seconds from 0 to 1000"))
    interface = get(t, "interface", str, where, allowed=INTERFACE, check=interface_name)
    tracked = tuple(_track_interface(x, where) for x in get(t, "track_interface", list, where, default=[],
                                                               allowed="a list"))
    vrid = get(t, "virtual_router_id", int, where, check=lambda v: VRID_MIN <= v <= VRID_MAX,
               allowed=f"an integer from {VRID_MIN} to {VRID_MAX}")
    vmac = _vmac_name(t.get("use_vmac", False), vrid, parsed[0].version, where)
    assist = get(t, "assist", bool, where, default=False, allowed="true or false")
    if assist and parsed[0].version != 4:
        raise ConfigError(f"{where}: assist = true works for IPv4 instances only (the controller finds a master's "
                          "switch port by ARP); remove it from this IPv6 instance")
    if vmac is not None and vmac in (interface, *(x.interface for x in tracked)):
        raise ConfigError(f"{where}: use_vmac = {vmac!r} names an interface the instance uses; the virtual-MAC "
                          "interface is created and deleted by the agent: give it a name of its own")
    return InstanceConfig(
        name=name,
        interface=interface,
        virtual_router_id=vrid,
        priority=get(t, "priority", int, where, default=100, check=lambda v: PRIORITY_MIN <= v <= PRIORITY_MAX,
                      allowed=f"an integer from {PRIORITY_MIN} to {PRIORITY_MAX} (255: the address owner)"),
        advert_int=advert_int,
        virtual_ipaddress=tuple(parsed),
        preempt=get(t, "preempt", bool, where, default=True, allowed="true or false"),
        preempt_delay=float(get(t, "preempt_delay", (int, float), where, default=0.0,
                                 check=lambda v: 0 <= v <= 1000, allowed="seconds from 0 to 1000")),
        accept=get(t, "accept", bool, where, default=True, allowed="true or false"),
        unicast_peer=tuple(peers),
        notify=get(t, "notify", str, where, default=None, allowed="a command path"),
        garp_master_repeat=get(t, "garp_master_repeat", int, where, default=5, check=lambda v: 0 <= v <= 100,
                                allowed="an integer from 0 to 100"),
        garp_master_delay=garp_master_delay,
        garp_lower_prio_delay=float(get(t, "garp_lower_prio_delay", (int, float), where, default=garp_master_delay,
                                         check=lambda v: 0 <= v <= 1000, allowed="seconds from 0 to 1000")),
        checksum_with_pseudo_header=get(t, "checksum_with_pseudo_header", bool, where, default=True,
                                         allowed="true (keepalived's default) or false (RFC 9568)"),
        track_interface=tracked,
        use_vmac=vmac,
        assist=assist,
        track_script=tuple(_track_script(x, f"{where}: track_script[{i}]") for i, x in
                           enumerate(get(t, "track_script", list, where, default=[], allowed="a list of tables"))),
    )


def _vmac_name(value: object, vrid: int, version: int, where: str) -> str | None:
    """keepalived's use_vmac: true gives the interface vrrp.<VRID> (vrrp6.<VRID> for IPv6, so the
    two families of one VRID do not share it), a string names it."""
    if value is False:
        return None
    if value is True:
        return f"vrrp.{vrid}" if version == 4 else f"vrrp6.{vrid}"
    if interface_name(value):
        return value
    raise ConfigError(f"{where}: use_vmac = {value!r} is not allowed; expected true, false or an interface name")


WEIGHT = "an integer from -253 to 253 (0: FAULT while failed)"


def _track_interface(item: object, where: str) -> TrackInterface:
    if interface_name(item):
        return TrackInterface(item)
    if isinstance(item, dict):
        no_unknown(item, {"interface", "weight"}, f"{where}: track_interface entry")
        return TrackInterface(
            get(item, "interface", str, where, allowed=INTERFACE, check=interface_name),
            get(item, "weight", int, where, default=0, check=lambda v: -253 <= v <= 253, allowed=WEIGHT))
    raise ConfigError(f"{where}: track_interface entry {item!r} is not an interface name or "
                      '{interface = "eth1", weight = -20}')


def _track_script(item: object, where: str) -> TrackScript:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: must be a table like {{script = \"/usr/bin/check\", interval = 1}}")
    no_unknown(item, SCRIPT_KEYS, where)
    argv = command_line(item, "script", where)
    interval = float(get(item, "interval", (int, float), where, default=1.0, check=lambda v: 0.01 <= v <= 3600,
                          allowed="seconds from 0.01 to 3600"))
    return TrackScript(
        argv=tuple(argv), interval=interval,
        timeout=float(get(item, "timeout", (int, float), where, default=interval,
                           check=lambda v: 0.01 <= v <= 3600, allowed="seconds from 0.01 to 3600")),
        weight=get(item, "weight", int, where, default=0, check=lambda v: -253 <= v <= 253, allowed=WEIGHT),
        fall=get(item, "fall", int, where, default=1, check=lambda v: 1 <= v <= 100, allowed="1 to 100"),
        rise=get(item, "rise", int, where, default=1, check=lambda v: 1 <= v <= 100, allowed="1 to 100"),
    )


load = loader(parse)
check = checker(parse, dump)
