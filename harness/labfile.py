"""A lab described in a file: the topology and its options, the links, the agents per host, the probe.

    topology = "active-standby"        # active-standby | active-active | cluster | reference | three-tier
    [options]                          # the topology's own (clients, backends, pairs, web_servers, webs)
    clients = 1
    [links]                            # every link: bw in Mbit/s, delay in ms, loss in percent
    bw = 0
    [probe]                            # what `probe start` and `watch` send, and from where
    from = "client1"
    proto = "udp"
    [lb]                               # active-active and three-tier: who balances the VIP
    kind = "sdn"                       # the switch (os-ken), or "haproxy" on proxy1
    [database]                         # three-tier only: the PostgreSQL pair behind the DB VIP
    manager = "halab"                  # halab | patroni | patroni-tuned
    replication = "sync"               # async | sync | remote_apply
    [servers]                          # spread the lab over machines (Mininet's cluster edition)
    list = ["localhost", "10.10.0.2"]
    place = { server2 = "10.10.0.2" }  # the rest: switches binned over the servers, hosts with their switch
    [[agent]]                          # a program on some hosts, with its configuration
    hosts = ["server1"]                # or: role = "server"
    program = "halab-vrrp"
    config = { vrrp_instance = [{ name = "VI_1", ... }] }   # or a path, relative to this file

Agent configurations are the agents' own TOML (what `halab-vrrp --config` and `halab-heartbeat
--config` read); the lab adds what belongs to one run alone: event logs, the cluster's secret and
its fencing socket. The files in labs/ are what `halab up TOPOLOGY` brings up. Every refusal is
one HalabError naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ha.configcheck import ConfigError, get, no_unknown, read_toml
from ha.heartbeat import config as heartbeat_config
from ha.heartbeat.syncrep import least_fallback
from ha.vrrp import config as vrrp_config
from harness.daemons.postgresql import REPLICATION_MODES
from harness.dbtier import MANAGERS, DbTierSpec
from harness.errors import HalabError
from harness.probe import PORT
from harness.servers import ServerPlan, check_names, check_place, override
from topologies import TOPOLOGIES, ActiveStandbyTopo
from topologies.base import LabTopo

#: The lab files that ship with halab, one per built-in topology.
LABS_DIR = Path(__file__).resolve().parent.parent / "labs"
PROGRAMS = ("responder", "halab-vrrp", "keepalived", "halab-heartbeat", "haproxy", "webapp")
VRRP_PROGRAMS = ("halab-vrrp", "keepalived")
LB_KINDS = ("sdn", "haproxy")
#: The topologies whose VIP a load balancer answers for (the others' VIP is held by an agent).
BALANCED = ("active-active", "three-tier")
#: Options each topology takes from the file or the command line (besides bw).
TOPOLOGY_OPTIONS = {"active-standby": {"clients", "pairs"}, "active-active": {"backends", "clients"},
                    "cluster": {"clients"}, "reference": {"web_servers", "clients"},
                    "three-tier": {"webs", "clients"}}
#: The options whose largest value is not 99 (the addresses a topology has room for).
OPTION_MOST = {"pairs": ActiveStandbyTopo.MAX_PAIRS}
#: The balancer's health checks: each backend this often (and as long a timeout), three misses out.
DEFAULT_CHECK_INTERVAL = 0.1
TOP_KEYS = {"topology", "options", "links", "probe", "lb", "agent", "database", "servers"}
#: A stand-in for the secret the lab makes at start, so a file's heartbeat configuration is checked early.
_PLACEHOLDER_SECRET = "checked-at-load-replaced-at-start"


@dataclass(frozen=True)
class Links:
    bw: float = 0.0
    delay: float = 0.0
    loss: float = 0.0


@dataclass(frozen=True)
class ProbeSpec:
    source: str
    target: str = "vip"
    proto: str = "udp"
    rate: float = 20.0


@dataclass(frozen=True)
class AgentSpec:
    """One program on some hosts; `config` is its own TOML as a table (empty for the responder)."""

    program: str
    hosts: tuple[str, ...] = ()
    role: str | None = None  # instead of hosts: every host of this role, however many there are
    config: dict = field(default_factory=dict)

    def hosts_in(self, topo: LabTopo) -> tuple[str, ...]:
        return tuple(topo.hosts_with_role(self.role)) if self.role else self.hosts


@dataclass(frozen=True)
class LabSpec:
    source: str  # the file it came from, named in every message
    topology: str
    options: dict[str, Any]
    links: Links
    probe: ProbeSpec
    agents: tuple[AgentSpec, ...]
    lb: str | None = None  # active-active, three-tier: "sdn" or "haproxy"
    database: DbTierSpec | None = None   # three-tier: its PostgreSQL pair
    check_interval: float = DEFAULT_CHECK_INTERVAL  # seconds between the balancer's health checks of each backend
    assist: bool = False  # `--assist`: the controller tells halab's agents when a peer's port goes down
    servers: ServerPlan = field(default_factory=ServerPlan)  # the machines it spreads over (none: this one)

    @property
    def assisted(self) -> bool:
        """Whether the controller serves failover assist: asked for, or a VRRP instance of halab's
        agent has assist = true (the heartbeat agents then get it too)."""
        return self.assist or any(i.get("assist") is True for a in self.agents if a.program == "halab-vrrp"
                                  for i in a.config.get("vrrp_instance", []))

    def topo(self) -> LabTopo:
        """The topology the file describes (a pure description: nothing starts)."""
        bw = {"bw": self.links.bw} if self.links.bw else {}
        proxy = {"proxy": True} if self.lb == "haproxy" else {}
        return TOPOLOGIES[self.topology](**self.options, **bw, **proxy)


def agent_tables(spec: LabSpec) -> dict[str, dict]:
    """Each agent's configuration as the lab file gives it, by "HOST/PROGRAM"; a VRRP agent's with
    its defaults filled in (what a lesson's config check compares)."""
    topo, out = spec.topo(), {}
    for agent in spec.agents:
        table = agent.config
        if agent.program in VRRP_PROGRAMS:
            table = tomllib.loads(vrrp_config.dump(vrrp_config.parse(agent.config, spec.source)))
        out.update({f"{host}/{agent.program}": table for host in agent.hosts_in(topo)})
    return out


def lookup(tables: dict[str, dict], agent: str, key: str) -> object:
    """The value at a dotted key (list items by number) of an agent's table; None: no such agent or key."""
    value: object = tables.get(agent)
    for part in key.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdecimal() and part.isascii() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def builtin(topology: str) -> Path:
    """The lab file of a built-in topology."""
    if topology not in TOPOLOGIES:
        raise HalabError(f"Unknown topology {topology!r}.", f"Choose one of: {', '.join(TOPOLOGIES)}.")
    return LABS_DIR / f"{topology}.toml"


def load(path: Path) -> LabSpec:
    if not path.is_file():
        raise HalabError(f"{path}: no such lab file.", f"Give the path of a lab file, e.g. {builtin('cluster')}.")
    try:
        raw = read_toml(path)
    except ConfigError as exc:
        raise HalabError(f"{exc}.", "Fix the lab file, or start from one in labs/.") from None
    return parse(raw, path)


def parse(raw: dict, path: Path) -> LabSpec:
    src = str(path)
    try:
        no_unknown(raw, TOP_KEYS, src)
        topology = get(raw, "topology", str, src, check=lambda v: v in TOPOLOGIES,
                       allowed=" | ".join(TOPOLOGIES))
        options = get(raw, "options", dict, src, default={}, allowed="a table")
        no_unknown(options, TOPOLOGY_OPTIONS[topology], f"{src}: options (for {topology})")
        for key in options:
            most = OPTION_MOST.get(key, 99)
            get(options, key, int, f"{src}: options", check=lambda v, most=most: 1 <= v <= most,
                allowed=f"a count from 1 to {most}")
        links = _links(get(raw, "links", dict, src, default={}, allowed="a table"), f"{src}: links")
        lb, check_interval = _lb(raw, topology, src)
        spec = LabSpec(src, topology, dict(options), links, _probe(raw, src), (), lb, _database(raw, topology, src),
                       check_interval)
        topo = spec.topo()
        agents = get(raw, "agent", list, src, default=[], allowed="[[agent]] tables")
        spec = replace(spec, agents=tuple(_agent(a, f"{src}: agent[{i}]", path.parent, topo)
                                          for i, a in enumerate(agents)), servers=_servers(raw, src, topo))
        if spec.probe.source not in topo.roles:
            raise ConfigError(f"{src}: probe: from = {spec.probe.source!r} is not a host of this lab; expected one "
                              f"of {', '.join(sorted(topo.roles))}")
        return spec
    except ConfigError as exc:
        raise HalabError(f"{exc}.", "Fix the lab file, or start from one in labs/.") from None


def with_overrides(spec: LabSpec, agent: str | None = None, lb: str | None = None, bw: float | None = None,
                   delay: float | None = None, assist: bool = False, servers: str | None = None,
                   place: list[str] | None = None, **options: int | None) -> LabSpec:
    """The lab with the command line's choices: the VRRP daemon, failover assist, the balancer, link
    shaping, host counts, the servers it spreads over (`a,b`) and where nodes go (`NODE=SERVER`)."""
    given = {k: v for k, v in options.items() if v is not None}
    for key in given:
        if key not in TOPOLOGY_OPTIONS[spec.topology]:
            raise HalabError(f"--{key.replace('_', '-')} does not apply to the {spec.topology} topology.",
                             f"Its options are: {', '.join(sorted(TOPOLOGY_OPTIONS[spec.topology])) or 'none'}.")
        if not 1 <= given[key] <= 99:
            raise HalabError(f"--{key.replace('_', '-')} {given[key]} is out of range.", "Choose 1 to 99.")
    if lb is not None and spec.topology not in BALANCED:
        raise HalabError(f"--lb applies to the {' and '.join(BALANCED)} topologies, not {spec.topology}.",
                         "Leave it out (the reference topology always runs HAProxy).")
    agents = spec.agents
    if agent is not None:
        program = {"halab": "halab-vrrp", "keepalived": "keepalived"}[agent]
        if not any(a.program in VRRP_PROGRAMS for a in agents):
            raise HalabError(f"--agent chooses the VRRP daemon; the {spec.topology} lab runs none.",
                             "Use it with active-standby or reference.")
        agents = tuple(replace(a, program=program) if a.program in VRRP_PROGRAMS else a for a in agents)
    if assist:
        if not any(a.program in ("halab-vrrp", "halab-heartbeat") for a in agents):
            raise HalabError(f"--assist speeds up halab's VRRP and heartbeat agents; this {spec.topology} lab runs "
                             "neither.", "Use it with active-standby, cluster or reference (with --agent halab).")
        agents = tuple(replace(a, config=_assisted(a.config)) if a.program == "halab-vrrp" else a for a in agents)
    links = replace(spec.links, **{k: v for k, v in (("bw", bw), ("delay", delay)) if v is not None})
    if links.bw < 0 or links.delay < 0:
        raise HalabError("--bw and --delay cannot be negative.", "Give Mbit/s and milliseconds of 0 or more.")
    changed = replace(spec, options={**spec.options, **given}, agents=agents, links=links, lb=lb or spec.lb,
                      assist=assist or spec.assist)
    topo = changed.topo()
    changed = replace(changed, servers=override(changed.servers, servers, place, topo.nodes()))
    for a in changed.agents:  # fewer hosts than the file names?
        missing = [h for h in a.hosts_in(topo) if h not in topo.roles]
        if missing:
            raise HalabError(f"{spec.source}: {a.program} runs on {missing[0]}, which these options leave out.",
                             "Ask for more hosts, or edit the lab file.")
    if changed.probe.source not in topo.roles:
        raise HalabError(f"{spec.source}: the probe runs on {changed.probe.source}, which these options leave out.",
                         "Ask for more clients, or edit the lab file.")
    return changed


def _servers(raw: dict, src: str, topo: LabTopo) -> ServerPlan:
    table = get(raw, "servers", dict, src, default={}, allowed="a table")
    if not table:
        return ServerPlan()
    where = f"{src}: servers"
    no_unknown(table, {"list", "place"}, where)
    names = get(table, "list", list, where, allowed="a list of host names or addresses")
    if not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: list = {names!r}: expected host names or addresses as strings")
    try:
        servers = check_names(tuple(names), f"{where}: list")
        place = get(table, "place", dict, where, default={}, allowed="a table of node = server")
        return ServerPlan(servers, check_place({str(k): str(v) for k, v in place.items()}, servers, topo.nodes(),
                                               f"{where}: place"))
    except HalabError as exc:
        raise ConfigError(f"{exc.problem} {exc.fix}".rstrip(".")) from None


def _assisted(config: dict) -> dict:
    return {**config, "vrrp_instance": [{**i, "assist": True} for i in config.get("vrrp_instance", [])]}


def _links(t: dict, where: str) -> Links:
    no_unknown(t, {"bw", "delay", "loss"}, where)
    num = (int, float)
    return Links(bw=float(get(t, "bw", num, where, default=0, check=lambda v: 0 <= v <= 10000,
                              allowed="Mbit/s from 0 (unlimited) to 10000")),
                 delay=float(get(t, "delay", num, where, default=0, check=lambda v: 0 <= v <= 10000,
                                 allowed="milliseconds from 0 to 10000")),
                 loss=float(get(t, "loss", num, where, default=0, check=lambda v: 0 <= v <= 100,
                                allowed="percent from 0 to 100")))


def _lb(raw: dict, topology: str, src: str) -> tuple[str | None, float]:
    """The balancer's kind and its health checks' interval (a big lab on a small machine needs a
    longer one: each backend is checked that often, by one process)."""
    t = get(raw, "lb", dict, src, default=None, allowed="a table")
    if topology not in BALANCED:
        if t is not None:
            raise ConfigError(f"{src}: lb: only the {' and '.join(BALANCED)} topologies have a load balancer to "
                              "choose")
        return None, DEFAULT_CHECK_INTERVAL
    t = t or {}
    no_unknown(t, {"kind", "check_interval"}, f"{src}: lb")
    kind = get(t, "kind", str, f"{src}: lb", default="sdn", check=lambda v: v in LB_KINDS,
               allowed=" or ".join(LB_KINDS))
    interval = get(t, "check_interval", (int, float), f"{src}: lb", default=DEFAULT_CHECK_INTERVAL,
                   check=lambda v: 0.05 <= v <= 10, allowed="seconds from 0.05 to 10")
    return kind, float(interval)


def _database(raw: dict, topology: str, src: str) -> DbTierSpec | None:
    t = get(raw, "database", dict, src, default=None, allowed="a table")
    where = f"{src}: database"
    if topology != "three-tier":
        if t is not None:
            raise ConfigError(f"{where}: only the three-tier topology has a database tier")
        return None
    t = t or {}
    no_unknown(t, {"manager", "replication", "strict", "fallback_timeout", "interval"}, where)
    interval = float(get(t, "interval", (int, float), where, default=0.1, check=lambda v: 0.01 <= v <= 10,
                         allowed="seconds from 0.01 to 10"))
    least = least_fallback(3 * interval)   # the lease must outlast a takeover (deadtime: 3 intervals)
    return DbTierSpec(
        manager=get(t, "manager", str, where, default="halab", check=lambda v: v in MANAGERS,
                    allowed=" | ".join(MANAGERS)),
        replication=get(t, "replication", str, where, default="sync", check=lambda v: v in REPLICATION_MODES,
                        allowed=" | ".join(REPLICATION_MODES)),
        strict=get(t, "strict", bool, where, default=False, allowed="true or false"),
        fallback_timeout=float(get(t, "fallback_timeout", (int, float), where, default=3.0,
                                   check=lambda v: least <= v <= 600,
                                   allowed=f"seconds from {least:g} (3 heartbeat intervals + 1 s) to 600")),
        interval=interval)


def _probe(raw: dict, src: str) -> ProbeSpec:
    where = f"{src}: probe"
    t = get(raw, "probe", dict, src, allowed="a table naming the host it runs on: [probe] from = \"client1\"")
    no_unknown(t, {"from", "target", "proto", "rate"}, where)
    return ProbeSpec(source=get(t, "from", str, where, allowed="a host name"),
                     target=get(t, "target", str, where, default="vip", allowed='"vip" or an address'),
                     proto=get(t, "proto", str, where, default="udp", check=lambda v: v in ("udp", "tcp"),
                               allowed='"udp" or "tcp"'),
                     rate=float(get(t, "rate", (int, float), where, default=20, check=lambda v: 10 <= v <= 1000,
                                    allowed="requests per second from 10 to 1000")))


def _agent(t: object, where: str, base: Path, topo: LabTopo) -> AgentSpec:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: must be a table")
    no_unknown(t, {"program", "hosts", "role", "config"}, where)
    program = get(t, "program", str, where, check=lambda v: v in PROGRAMS, allowed=" | ".join(PROGRAMS))
    if ("hosts" in t) == ("role" in t):
        raise ConfigError(f"{where}: give either hosts = [...] or role = \"...\", not both or neither")
    if "role" in t:
        role = get(t, "role", str, where, check=lambda v: v in set(topo.roles.values()),
                   allowed="one of the topology's roles: " + ", ".join(sorted(set(topo.roles.values()))))
        hosts: tuple[str, ...] = ()
    else:
        role = None
        hosts = tuple(get(t, "hosts", list, where, check=lambda v: v and all(h in topo.roles for h in v),
                          allowed="a list of this lab's hosts: " + ", ".join(sorted(topo.roles))))
    config = t.get("config", {})
    if isinstance(config, str):
        path = base / config
        config = read_toml(path)
    elif not isinstance(config, dict):
        raise ConfigError(f"{where}: config = {config!r} is not allowed; expected an inline table or a file path")
    agent = AgentSpec(program, hosts, role, config)
    return replace(agent, config=check_config(agent, where))


#: What the lab fills in for each run; a file that sets them is refused (a secret never sits in a lab file).
LAB_OWNED = {"halab-heartbeat": {"secret", "fencing", "assist", "event_log"},
             "halab-vrrp": {"event_log", "assist_socket"}, "keepalived": {"event_log"}}


def check_config(agent: AgentSpec, where: str) -> dict:
    """Check an agent's configuration as the agent itself would, before anything starts; the
    configuration, with HAProxy's defaults filled in (its one home)."""
    owned = LAB_OWNED.get(agent.program, set()) & set(agent.config)
    if owned:
        raise ConfigError(f"{where}: config: {sorted(owned)[0]} is set by the lab for each run; remove it")
    where = f"{where} ({agent.program})"
    if agent.program in VRRP_PROGRAMS:
        cfg = vrrp_config.parse(agent.config, where)
        if agent.program == "keepalived" and any(i.assist for i in cfg.instances):
            raise ConfigError(f"{where}: assist = true: keepalived has no failover assist; run halab-vrrp, or "
                              "remove assist")
    elif agent.program == "halab-heartbeat":
        heartbeat_config.parse({**agent.config, "secret": _PLACEHOLDER_SECRET}, where)
    elif agent.program == "haproxy":
        at = f"{where}: config"
        no_unknown(agent.config, {"port", "balance", "backends"}, at)
        return {"backends": get(agent.config, "backends", str, at, default="backend",
                                allowed="a role of this topology"),
                "balance": get(agent.config, "balance", str, at, default="roundrobin",
                               check=lambda v: v in ("roundrobin", "leastconn", "source"),
                               allowed="roundrobin, leastconn or source"),
                "port": get(agent.config, "port", int, at, default=PORT, check=lambda v: 1 <= v <= 65535,
                            allowed="a TCP port")}
    elif agent.config:
        raise ConfigError(f"{where}: config: the {agent.program} takes no configuration")
    return agent.config
