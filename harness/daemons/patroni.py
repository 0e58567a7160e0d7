"""Patroni (the Debian package) on the lab's database hosts: the production baseline that halab's
heartbeat agent is measured against, run the way its documentation sets it up.

- Its DCS is Raft (python3-pysyncobj), so no etcd: the two database hosts and a witness
  (`patroni_raft_controller` on the gateway) are the three votes a majority needs.
- Clients reach the primary through HAProxy on the gateway, which holds the DB VIP and checks
  each server's REST API (`GET /primary`), as Patroni's HAProxy template does.
- Everything runs as the `postgres` user with its files under the run's PostgreSQL directory
  (harness.daemons.postgresql.pg_root()): removed with the run, found by `halab clean`. Raft's
  traffic is encrypted with a password made for the lab, and so are changes through the REST API;
  all of it listens on lab addresses only (the Raft witness on every address of the gateway).

Timings: Patroni's defaults (ttl 30 s, loop_wait 10 s, retry_timeout 10 s) and the lowest its
documentation allows (ttl 20, loop_wait 1, retry_timeout 3; loop_wait + 2 x retry_timeout <= ttl).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from harness.daemons.base import Daemon, Lab
from harness.daemons.postgresql import (
    APP_USER,
    PG_ROOT,
    REPLICATION_USER,
    DbCluster,
    as_postgres,
    pg_bin,
    require_postgresql_there,
    write_as_postgres,
)
from harness.errors import HalabError
from harness.events import Event

TIMINGS = {"patroni": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10},
           "patroni-tuned": {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}}
#: HAProxy's checks of the REST API: the template in Patroni's documentation, and as fast as halab's.
ROUTER_CHECKS = {"patroni": (3.0, 3, 2), "patroni-tuned": (0.1, 3, 2)}   # inter (s), fall, rise
API_PORT, RAFT_PORT = 8008, 2222
SCOPE = "halab"
#: Settings Patroni sets itself, from its own keys (listen, connect_address, scope).
PATRONI_OWNS = {"listen_addresses", "port", "cluster_name", "unix_socket_directories", "hot_standby"}
#: Patroni's log lines worth a mark on the timeline: (pattern, state).
LOG_EVENTS = ((re.compile(r"promoted self to leader"), "PROMOTED"),
              (re.compile(r"acquired session lock as a leader"), "LEADER"),
              (re.compile(r"[Dd]emoting self|demote"), "DEMOTED"))


def home(cluster: DbCluster, host: str) -> Path:
    """A host's Patroni directory (its configuration, password file and Raft log), postgres's own."""
    return cluster.root / f"{host}.patroni"


class _RaftMember(Daemon):
    """A voter of the cluster's Raft: its address in the lab, its file in its Patroni home, on
    its host's machine (harness.hostfs). `partners`: the Raft addresses of the other members."""

    config_name: ClassVar[str]
    #: Its program, Debian's, run by the system's Python 3.
    executable: ClassVar[str]

    def __init__(self, lab: Lab, host: str, cluster: DbCluster, partners: list[str]) -> None:
        super().__init__(lab, host)
        self.cluster, self.partners = cluster, partners

    @property
    def address(self) -> str:
        assert self.host is not None
        return str(self.lab.topo.addresses[self.host][0].ip)

    @property
    def config_path(self) -> Path:
        assert self.host is not None
        return home(self.cluster, self.host) / self.config_name

    def make_home(self, *more: Path) -> None:
        """The run's directory and a fresh Patroni home (and `more` fresh directories), postgres's
        own, on its host's machine, which must have Patroni and PostgreSQL: before anything is made."""
        assert self.host is not None
        files = self.host_files
        require_postgresql_there(files.server, self.host, Path(self.executable))
        self.cluster.create_root(files)
        self.lab.record_dir(self.cluster.root)
        for path in (*more, home(self.cluster, self.host)):
            self.cluster.private_dir(path, files)

    def write_config(self, config: dict) -> None:
        # JSON is YAML: no YAML writer needed. Only postgres reads it (it holds passwords).
        write_as_postgres(self.config_path, json.dumps(config, indent=1), files=self.host_files)


class Patroni(_RaftMember):
    program = "patroni"
    executable = "/usr/bin/patroni"
    pattern = rf"^/usr/bin/python3 {executable} {PG_ROOT}/"
    config_name = "patroni.yml"

    def __init__(self, lab: Lab, host: str, cluster: DbCluster, timings: dict[str, int], synchronous: bool,
                 strict: bool, partners: list[str]) -> None:
        super().__init__(lab, host, cluster, partners)
        self.timings, self.synchronous, self.strict = timings, synchronous, strict

    def prepare(self) -> None:
        """Empty directories for PostgreSQL's data and socket, and Patroni's own."""
        assert self.host is not None
        self.make_home(self.cluster.data_dir(self.host), self.cluster.socket_dir(self.host))

    def config(self) -> dict:
        assert self.host is not None
        settings = {k: v for k, v in self.cluster.settings(self.host).items() if k not in PATRONI_OWNS}
        return {
            "scope": SCOPE, "namespace": "/halab/", "name": self.host,
            "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
            # Reads (GET /primary, HAProxy's check) are open; changes need the password.
            "restapi": {"listen": f"{self.address}:{API_PORT}", "connect_address": f"{self.address}:{API_PORT}",
                        "authentication": {"username": "patroni", "password": self.cluster.patroni_password}},
            "raft": {"data_dir": str(home(self.cluster, self.host) / "raft"), "password": self.cluster.patroni_password,
                     "self_addr": f"{self.address}:{RAFT_PORT}", "partner_addrs": self.partners},
            "bootstrap": {
                "dcs": {**self.timings, "maximum_lag_on_failover": 1048576,
                        "synchronous_mode": self.synchronous, "synchronous_mode_strict": self.strict,
                        "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": settings}},
                "initdb": [{"encoding": "UTF8"}, "no-locale", {"wal-segsize": "1"}, "no-sync"],
            },
            "postgresql": {
                "listen": f"{self.address}:{self.cluster.port}",
                "connect_address": f"{self.address}:{self.cluster.port}",
                "data_dir": str(self.cluster.data_dir(self.host)), "bin_dir": str(pg_bin()),
                "pgpass": str(home(self.cluster, self.host) / "pgpass"), "use_unix_socket": True,
                # A spread checkpoint would hold the standby's base backup for minutes.
                "basebackup": [{"checkpoint": "fast"}],
                "authentication": {
                    "superuser": {"username": "postgres", "password": self.cluster.superuser_password},
                    "replication": {"username": REPLICATION_USER, "password": self.cluster.replication_password}},
                # Which server acknowledged a write: the writer reads halab.node (cluster_name is the scope).
                "parameters": {"unix_socket_directories": str(self.cluster.socket_dir(self.host)),
                               "halab.node": self.host},
                "pg_hba": ["local all postgres peer",
                           f"host replication {REPLICATION_USER} 0.0.0.0/0 scram-sha-256",
                           "host all postgres 0.0.0.0/0 scram-sha-256",   # pg_rewind reads through it
                           f"host all {APP_USER} 0.0.0.0/0 scram-sha-256"],
            },
        }

    def write_files(self) -> None:
        self.write_config(self.config())

    def argv(self) -> list[str]:
        return as_postgres(["/usr/bin/python3", self.executable, str(self.config_path)])

    def ready(self) -> bool:
        """Its REST API listens (PostgreSQL may still be bootstrapping or copying)."""
        assert self.host is not None
        return f"{self.address}:{API_PORT} " in self.lab.run(self.host, ["ss", "-Hltn"], timeout=5).stdout

    def events(self) -> list[Event]:
        """Its promotions and demotions, from its log (wall-clock times, put on the monotonic clock)."""
        if self.process is None or self.host is None:
            return []
        offset = time.time() - time.monotonic()
        found = []
        for line in self.process.log_text().splitlines():
            for pattern, state in LOG_EVENTS:
                if pattern.search(line):
                    try:
                        wall = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    except ValueError:
                        continue
                    found.append(Event(wall - offset, self.host, "patroni", self.host, None, state,
                                       line[24:].strip()[:120]))
                    break
        return found


class RaftWitness(_RaftMember):
    """The third Raft vote, without PostgreSQL: `patroni_raft_controller` on the gateway."""

    program = "patroni-raft-witness"
    executable = "/usr/bin/patroni_raft_controller"
    pattern = rf"^/usr/bin/python3 {executable} {PG_ROOT}/"
    config_name = "raft.yml"

    def write_files(self) -> None:
        assert self.host is not None
        self.make_home()
        self.write_config({"raft": {
            "data_dir": str(home(self.cluster, self.host) / "raft"), "self_addr": f"{self.address}:{RAFT_PORT}",
            "partner_addrs": self.partners, "password": self.cluster.patroni_password}})

    def argv(self) -> list[str]:
        return as_postgres(["/usr/bin/python3", self.executable, str(self.config_path)])

    def ready(self) -> bool:
        assert self.host is not None
        return f":{RAFT_PORT} " in self.lab.run(self.host, ["ss", "-Hltn"], timeout=5).stdout   # on 0.0.0.0


class PatroniRouter(Daemon):
    """HAProxy in front of Patroni: the DB VIP, connections to whichever server says it is the
    primary (`GET /primary` on its REST API answers 200), cut when it stops saying so."""

    program = "haproxy-patroni"
    pattern = r"^haproxy -db -f \S+haproxy-patroni"

    def __init__(self, lab: Lab, host: str, vip: str, servers: dict[str, str], port: int,
                 checks: tuple[float, int, int]) -> None:
        super().__init__(lab, host)
        self.vip, self.servers, self.port, self.checks = vip, servers, port, checks

    @property
    def config_path(self) -> Path:
        return self.base.with_suffix(".cfg")

    def files(self) -> dict[Path, str]:
        inter, fall, rise = self.checks
        lines = ["global", "    maxconn 1000", "defaults", "    mode tcp", "    timeout connect 1s",
                 "    timeout client 30s", "    timeout server 30s", "listen db", f"    bind {self.vip}:{self.port}",
                 "    option httpchk GET /primary", "    http-check expect status 200",
                 f"    default-server inter {inter * 1000:.0f} fall {fall} rise {rise} "
                 "on-marked-down shutdown-sessions"]
        lines += [f"    server {name} {address}:{self.port} check port {API_PORT}"
                  for name, address in self.servers.items()]
        return {self.config_path: "\n".join(lines) + "\n"}

    def write_files(self) -> None:
        super().write_files()
        assert self.host is not None
        check = self.lab.run(self.host, ["haproxy", "-c", "-f", str(self.config_path)])
        if check.returncode != 0:
            raise HalabError(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}",
                             f"See {self.config_path}.")

    def argv(self) -> list[str]:
        return ["haproxy", "-db", "-f", str(self.config_path)]

    def ready(self) -> bool:
        assert self.host is not None
        return f"{self.vip}:{self.port} " in self.lab.run(self.host, ["ss", "-Hltn"], timeout=5).stdout
