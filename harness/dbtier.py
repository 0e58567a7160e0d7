"""The database tier of a lab: two PostgreSQL servers, one streaming from the other, managed by
halab's heartbeat agents (which one is the primary, the DB VIP, fencing, promotion and the
synchronous-replication lease), or by Patroni for comparison."""

from __future__ import annotations

import time
from dataclasses import dataclass
from ipaddress import IPv4Interface

from ha.heartbeat import postgresql as pg_resource
from ha.heartbeat.config import postgresql_resource
from harness.daemons.base import Daemon
from harness.daemons.heartbeat import HalabHeartbeat, node_config
from harness.daemons.patroni import RAFT_PORT, ROUTER_CHECKS, TIMINGS, Patroni, PatroniRouter, RaftWitness
from harness.daemons.postgresql import REPLICATION_USER, DbCluster, PostgreSQL
from harness.errors import HalabError
from harness.events import Event
from harness.lab import Lab

#: How often the agent checks its database (and, as the primary, its standby's replication).
MONITOR_INTERVAL_S, MONITOR_TIMEOUT_S = 0.2, 1.0
MANAGERS = ("halab", "patroni", "patroni-tuned")
#: The database pair's hosts in the three-tier topology, and halab's priorities (db1 preferred).
PRIORITIES = {"db1": 200, "db2": 100}
WITNESS = "gateway"


@dataclass(frozen=True)
class DbTierSpec:
    """How a lab's database pair runs: what manages it, and what a commit waits for."""

    manager: str = "halab"          # one of MANAGERS
    replication: str = "sync"       # one of REPLICATION_MODES
    strict: bool = False            # synchronous: wait for a missing standby for ever
    fallback_timeout: float = 3.0   # synchronous, not strict: seconds before falling back
    interval: float = 0.1           # halab's heartbeat interval

    def start(self, lab: Lab, vip: IPv4Interface) -> ManagedPair | PatroniPair:
        if self.manager == "halab":
            return managed_pair(lab, PRIORITIES, self.replication, strict=self.strict,
                                fallback_timeout=self.fallback_timeout, interval=self.interval, vip=vip)
        return patroni_pair(lab, tuple(PRIORITIES), WITNESS, vip, self.manager, self.replication,  # type: ignore[arg-type]
                            strict=self.strict)


def streaming_pair(lab: Lab, hosts: tuple[str, str], replication: str) -> tuple[PostgreSQL, PostgreSQL]:
    """hosts[0] the primary (initdb, roles, the writes table), hosts[1] a standby streaming from it."""
    assert lab.state is not None
    cluster = DbCluster(lab.state.run_id, replication=replication)
    first, second = hosts
    primary = PostgreSQL(lab, first, cluster)
    primary.prepare()
    primary.start()
    primary.create_roles()
    primary.set_standbys([second])
    standby = PostgreSQL(lab, second, cluster, upstream=str(lab.topo.addresses[first][0].ip))
    standby.prepare()
    standby.start()
    primary.wait_streaming(second)
    return primary, standby


@dataclass
class _Pair:
    """Two servers of one cluster, whatever manages them."""

    servers: dict[str, PostgreSQL]

    @property
    def cluster(self) -> DbCluster:
        return next(iter(self.servers.values())).cluster


@dataclass
class ManagedPair(_Pair):
    """The two servers managed by halab's heartbeat agents."""

    agents: dict[str, HalabHeartbeat]

    def events(self) -> list[Event]:
        return [e for a in self.agents.values() for e in a.events()]

    def daemons(self) -> list[Daemon]:
        return [*self.servers.values(), *self.agents.values()]

    def lease_held(self, standby: str) -> bool:
        """The standby's agent holds the primary's synchronous-replication lease."""
        status = self.agents[standby].status() or {}
        return bool((status.get("replication") or {}).get("lease_left"))


def managed_pair(lab: Lab, priorities: dict[str, int], replication: str, strict: bool = False,
                 fallback_timeout: float = 3.0, interval: float = 0.1, vip: IPv4Interface | None = None,
                 timeout: float = 30.0) -> ManagedPair:
    """Both servers standbys (the first made one of the second: no fork yet, so pg_rewind has
    nothing to undo), then an agent on each with the `postgresql` resource first and the VIP after
    it: the preferred node's agent promotes its server. Returns once that happened and, with
    synchronous replication, once the standby holds the lease (it may be promoted safely)."""
    first, second = sorted(priorities, key=priorities.__getitem__, reverse=True)
    primary, standby = streaming_pair(lab, (first, second), replication)
    primary.rejoin(standby)
    agents = {}
    for db, peer in ((primary, second), (standby, first)):
        assert db.host is not None
        # How its server follows the peer's after a failover (a rejoin by the agent).
        follow = (f"host={lab.topo.addresses[peer][0].ip} port={db.cluster.port} user={REPLICATION_USER} "
                  f"dbname=postgres connect_timeout=5 passfile={db.replication_passfile()}")
        server = pg_resource.PgServer(str(db.data_dir), str(db.cluster.socket_dir(db.host)), bin_directory=str(db.bin),
                                      synchronous_standby="" if replication == "async" else peer,
                                      synchronous_mode_strict=strict, synchronous_fallback_timeout=fallback_timeout,
                                      primary_conninfo=follow)
        base = node_config(lab, db.host, interval, priorities, vip)
        resources = (postgresql_resource("db", server, MONITOR_INTERVAL_S, MONITOR_TIMEOUT_S), base.resources[0])
        # No automatic failback: the old primary's data forked; it comes back as a standby only.
        agents[db.host] = HalabHeartbeat(lab, db.host, node_config(lab, db.host, interval, priorities, vip,
                                                                   resources=resources, auto_failback=False)).start()
    pair = ManagedPair({first: primary, second: standby}, agents)
    _wait(lambda: agents[first].role() == "ACTIVE" and agents[second].role() == "STANDBY", timeout,
          f"{first}'s agent did not become active", lab)
    # The role is logged when it is taken; the resources start after it, in the agent's worker.
    _wait(lambda: not primary.in_recovery(), timeout, f"{first}'s agent did not promote its server", lab)
    if replication != "async":
        _wait(lambda: pair.lease_held(second), timeout, f"{second} never became a synchronous standby", lab)
    return pair


def _wait(condition, timeout: float, what: str, lab: Lab) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise HalabError(f"{what} within {timeout:g} s.", f"See the agents' and servers' logs in {lab.run_dir}.")
        time.sleep(0.1)


@dataclass
class PatroniPair(_Pair):
    """The same two servers under Patroni (`servers` only for SQL over each host's socket: Patroni
    runs them), with its Raft witness and HAProxy on the gateway."""

    patronis: dict[str, Patroni]
    helpers: list[Daemon]            # the Raft witness, HAProxy

    def events(self) -> list[Event]:
        return [e for p in self.patronis.values() for e in p.events()]

    def daemons(self) -> list[Daemon]:
        return [*self.patronis.values(), *self.helpers]


def patroni_pair(lab: Lab, hosts: tuple[str, str], witness: str, vip: IPv4Interface, timings: str,
                 replication: str, strict: bool = False, timeout: float = 60.0) -> PatroniPair:
    """Patroni on both hosts (`timings`: "patroni" for its defaults, "patroni-tuned"), hosts[0]
    bootstrapped first so that it leads, then the standby; HAProxy on `witness` holds the VIP."""
    assert lab.state is not None
    cluster = DbCluster(lab.state.run_id, replication=replication)
    address = {h: str(lab.topo.addresses[h][0].ip) for h in (*hosts, witness)}
    raft = {h: f"{a}:{RAFT_PORT}" for h, a in address.items()}
    helpers: list[Daemon] = [RaftWitness(lab, witness, cluster, [raft[h] for h in hosts]).start()]
    patronis = {h: Patroni(lab, h, cluster, TIMINGS[timings], synchronous=replication != "async", strict=strict,
                           partners=[raft[o] for o in (*hosts, witness) if o != h]) for h in hosts}
    servers = {h: PostgreSQL(lab, h, cluster) for h in hosts}
    first, second = hosts
    for h in hosts:
        patronis[h].prepare()
    patronis[first].start()
    # Primary, and done with its bootstrap: the replication role it creates last exists.
    _wait(lambda: is_primary(servers[first]) and servers[first].sql(
        f"SELECT count(*) FROM pg_roles WHERE rolname = '{REPLICATION_USER}'") == "1", timeout,
        f"Patroni did not bootstrap {first}", lab)
    servers[first].create_app()
    patronis[second].start()
    servers[first].wait_streaming(second, timeout=timeout)
    if replication != "async":
        _wait(lambda: servers[first].sql("SELECT sync_state FROM pg_stat_replication") in ("sync", "quorum"),
              timeout, f"Patroni did not make {second} a synchronous standby", lab)
    interface = lab.topo.interface_on(witness, vip.network)[0]
    lab.run(witness, ["ip", "addr", "add", str(vip), "dev", interface])
    helpers.append(PatroniRouter(lab, witness, str(vip.ip), {h: address[h] for h in hosts}, cluster.port,
                                 ROUTER_CHECKS[timings]).start())
    return PatroniPair(servers, patronis, helpers)


def is_primary(server: PostgreSQL) -> bool:
    """It answers, as a primary (False while it is down, starting, or a standby)."""
    try:
        return not server.in_recovery()
    except HalabError:
        return False   # not up yet
