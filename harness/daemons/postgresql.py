"""PostgreSQL on lab hosts: a primary and streaming standbys, each host its own cluster.

No system service: each host's cluster is made for the run (`initdb`, or `pg_basebackup` from
the primary for a standby), runs in the host's namespaces as the `postgres` user in the
foreground (so the lab holds the postmaster's pid), and is removed with the run. PostgreSQL
refuses to run as root and cannot enter a root-only run directory, so its data lives under
PG_ROOT/<run id>/<host>, a directory of halab's own that the run records and its teardown (or
`halab clean`) deletes. A host on another server keeps it on that server's own disk
(harness.hostfs), as a real database would.

Replication modes (`synchronous_commit` with the standbys named in `synchronous_standby_names`):
    async          the primary acknowledges a commit once its own WAL is flushed
    sync           ... once a standby has flushed it too ("on")
    remote_apply   ... once a standby has applied it (a read there sees it)
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ha.heartbeat.postgresql import as_user
from ha.statusfile import beside_state
from harness import servers
from harness.daemons.base import Daemon, Lab
from harness.errors import HalabError
from harness.hostfs import HostFiles
from harness.servers import LOCAL

#: This machine's files: where the database tier's own files live unless its host is elsewhere.
HERE = HostFiles()

#: Where Debian and Ubuntu put each PostgreSQL major version's programs.
PG_LIB = Path("/usr/lib/postgresql")
def pg_root() -> Path:
    """halab's own directory for the clusters of running labs (see the module's docstring):
    /run/halab-postgresql."""
    return beside_state("postgresql")


#: Where the clusters of the machine's labs are, for the process patterns that find leftovers.
PG_ROOT = Path("/run/halab-postgresql")
PORT = 5432
REPLICATION_MODES = ("async", "sync", "remote_apply")
#: The table every writer inserts into; the checker reads it back.
SCHEMA = "CREATE TABLE writes (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
APP_USER, REPLICATION_USER = "app", "replicator"


def pg_bin() -> Path:
    """The newest installed major version's programs (Debian 12: 15; Ubuntu 22.04: 14; 24.04: 16)."""
    found = sorted((d for d in PG_LIB.glob("*/bin") if (d / "postgres").exists() and d.parent.name.isdigit()),
                   key=lambda d: int(d.parent.name))
    if not found:
        raise HalabError(f"PostgreSQL is not installed (no {PG_LIB}/<version>/bin/postgres).",
                         "Run `sudo make setup`, which installs it.")
    return found[-1]


def require_postgresql() -> None:
    pg_bin()
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise HalabError("There is no `postgres` user to run PostgreSQL as.",
                         "Reinstall the postgresql package (`sudo make setup`), which creates it.") from None


def require_postgresql_there(server: str, host: str, *programs: Path) -> None:
    """The same PostgreSQL programs (and `programs`) and the `postgres` user on `server`, the
    machine `host` runs on, as here: checked before anything is made there."""
    if server == LOCAL:
        return
    needed = [pg_bin() / "postgres", *programs]
    found = servers.run_on(server, " && ".join(f"test -x {p}" for p in needed) + " && id -u postgres", timeout=15)
    if found.returncode != 0:
        raise HalabError(f"Server {server} lacks {' or '.join(map(str, needed))} or the `postgres` user, which "
                         f"{host} needs there.",
                         "Install the same PostgreSQL (and Patroni) there as here: `sudo make setup` in halab's "
                         "checkout there.")


def as_postgres(argv: list[str]) -> list[str]:
    return list(as_user("postgres", *argv))


def write_as_postgres(path: Path, text: str, append: bool = False, files: HostFiles = HERE) -> Path:
    """Write a file that postgres owns, mode 0600, never through a link: root writes inside
    directories the postgres account owns, and that account may be shared with other clusters."""
    return files.write(path, text, owner="postgres", append=append)


@dataclass
class DbCluster:
    """What the database hosts of one lab share: where their data lives, the roles' passwords
    (made for this lab alone, in files only root and postgres can read) and the replication mode."""

    run_id: str
    replication: str = "async"
    port: int = PORT
    app_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    replication_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    superuser_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)  # Patroni's
    patroni_password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)  # its Raft, API

    def __post_init__(self) -> None:
        if self.replication not in REPLICATION_MODES:
            raise HalabError(f"replication {self.replication!r} is not one of {', '.join(REPLICATION_MODES)}.",
                             "Choose one of them.")

    @property
    def root(self) -> Path:
        return pg_root() / self.run_id

    def data_dir(self, host: str) -> Path:
        return self.root / host

    def socket_dir(self, host: str) -> Path:
        return self.root / f"{host}.sock"

    def create_root(self, files: HostFiles = HERE) -> None:
        """pg_root() and the run's directory: root's, searchable, so postgres reaches its own below."""
        for path in (pg_root(), self.root):
            files.make_dir(path, mode=0o755)

    def private_dir(self, path: Path, files: HostFiles = HERE) -> Path:
        """A fresh directory owned by postgres, mode 0700."""
        files.make_dir(path, owner="postgres", mode=0o700, fresh=True)
        return path

    def replication_passfile(self, host: str, files: HostFiles = HERE) -> Path:
        """`host`'s password file for the replication role, postgres's own: what its standby
        connection and a rejoin (pg_rewind, pg_basebackup) read, on `host`'s machine."""
        return write_as_postgres(self.root / f"{host}.pgpass",
                                 f"*:{self.port}:*:{REPLICATION_USER}:{self.replication_password}\n", files=files)

    def write_app_passfile(self, path: Path) -> Path:
        """The application role's libpq password file, for clients run as root (mode 0600), in
        the run directory that every server sees."""
        return HERE.write(path, f"*:{self.port}:{APP_USER}:{APP_USER}:{self.app_password}\n")

    def replication_settings(self, standbys: list[str]) -> dict[str, str]:
        """What makes a commit wait for a standby: set with ALTER SYSTEM on the primary, so that a
        manager can change it at run time."""
        names = ",".join(f'"{s}"' for s in standbys)
        sync = {"async": "local", "sync": "on", "remote_apply": "remote_apply"}[self.replication]
        return {"synchronous_commit": sync,
                "synchronous_standby_names": f"ANY 1 ({names})" if self.replication != "async" and standbys else ""}

    def settings(self, host: str) -> dict[str, str]:
        """A host's fixed settings (its halab.conf)."""
        return {
            "listen_addresses": "*",  # in the host's own network namespace: its lab addresses only
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir(host)),
            "cluster_name": host,
            "halab.node": host,     # who acknowledged a write (the writer asks; Patroni sets it too)
            # What a commit waits for once a standby is named (by set_standbys or a manager).
            "synchronous_commit": self.replication_settings([])["synchronous_commit"],
            "wal_level": "replica",
            "wal_log_hints": "on",          # pg_rewind needs it to rejoin an old primary
            "max_wal_senders": "5",
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "wal_receiver_status_interval": "1s",
            # After its stream broke, a standby sleeps this long before it looks for WAL again, and
            # a promotion requested meanwhile waits for the sleep to end (5 s by default).
            "wal_retrieve_retry_interval": "100ms",
            "shared_buffers": "32MB",
            # The data lives on /run, a tmpfs: WAL in 1 MB segments (initdb), little of it, but
            # enough kept for pg_rewind to reach back to the last checkpoint before a fork.
            "max_wal_size": "64MB",
            "min_wal_size": "16MB",
            "wal_keep_size": "32MB",
            # Clients whose commits wait (a synchronous primary without its standby) pile up: at 50
            # writes/s and a 1 s timeout about as many connections as there were slots. The agent's
            # monitor (a superuser) then found none left, and its agent stopped a healthy primary.
            # Room for the clients, and slots only the agent, pg_rewind's checks and the lab use.
            "max_connections": "100",
            "superuser_reserved_connections": "10",
            "logging_collector": "off",     # to stderr: the lab's log file for this host
            "log_line_prefix": "%m [%p] ",
        }


class PostgreSQL(Daemon):
    """One host's PostgreSQL server: the primary (`upstream` None) or a standby streaming from it."""

    program = "postgresql"
    pattern = rf"^{PG_LIB}/[0-9]+/bin/postgres -D {PG_ROOT}/"   # [0-9]: pgrep knows no \d
    stop_signal = signal.SIGINT   # a fast shutdown; SIGTERM would wait for every client to leave

    def __init__(self, lab: Lab, host: str, cluster: DbCluster, upstream: str | None = None) -> None:
        super().__init__(lab, host)
        self.cluster = cluster
        self.upstream = upstream          # the primary's address, for a standby
        self.rejoined_by: str | None = None   # how the last rejoin went: "pg_rewind", or "base backup (why)"

    @property
    def bin(self) -> Path:
        return pg_bin()

    @property
    def data_dir(self) -> Path:
        assert self.host is not None
        return self.cluster.data_dir(self.host)

    def replication_passfile(self) -> Path:
        assert self.host is not None
        return self.cluster.replication_passfile(self.host, self.host_files)

    def prepare(self) -> None:
        """Make this host's cluster: initdb for the primary, a base backup for a standby."""
        assert self.host is not None
        self.require_free_port()
        files = self.host_files
        require_postgresql_there(files.server, self.host)
        self.cluster.create_root(files)
        self.lab.record_dir(self.cluster.root)
        self.cluster.private_dir(self.data_dir, files)
        self.cluster.private_dir(self.cluster.socket_dir(self.host), files)
        if self.upstream is None:
            self._initdb()
        else:
            self._base_backup()

    def require_free_port(self) -> None:
        """Nothing else listens on the port in this host (another program of the lab, say)."""
        assert self.host is not None
        taken = self.lab.run(self.host, ["ss", "-Hltnp", f"sport = :{self.cluster.port}"], timeout=5).stdout.strip()
        if taken:
            raise HalabError(f"Port {self.cluster.port} is already in use on {self.host}: {taken.split()[-1]}.",
                             "Give PostgreSQL another port, or stop what listens there.")

    def _initdb(self) -> None:
        files = self.host_files
        pwfile = write_as_postgres(self.cluster.root / f"{self.host}.pw", secrets.token_urlsafe(18), files=files)
        try:
            self._run_as_postgres([str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                                   "--pwfile", str(pwfile), "--auth-local=peer", "--auth-host=scram-sha-256",
                                   "--no-locale", "-E", "UTF8", "--wal-segsize=1", "--no-sync"], "initdb")
        finally:
            files.remove(pwfile)
        self._write_config()

    def _base_backup(self) -> None:
        assert self.host is not None and self.upstream is not None
        passfile = self.replication_passfile()
        self._run_as_postgres(["env", f"PGPASSFILE={passfile}", str(self.bin / "pg_basebackup"),
                               "-h", self.upstream, "-p", str(self.cluster.port), "-U", REPLICATION_USER,
                               "-D", str(self.data_dir), "-X", "stream", "-c", "fast", "-R",
                               "--no-sync"], "pg_basebackup", timeout=60)
        # -R wrote primary_conninfo with the password from the passfile: keep the file for restarts.
        self._write_config()

    def _write_config(self) -> None:
        """This host's settings in halab.conf, included by postgresql.conf, and pg_hba.conf: in the
        data directory, so that any start (the lab's, or a manager's `pg_ctl`) uses them. Written
        again after a base backup or a rewind, which copy the source host's files, and then which
        standbys a commit waits for is forgotten too: only a primary names them (`set_standbys`)."""
        assert self.host is not None
        files = self.host_files
        conf = "".join(f"{key} = '{value}'\n" for key, value in self.cluster.settings(self.host).items())
        write_as_postgres(self.data_dir / "halab.conf", "# written by halab for this host\n" + conf, files=files)
        main = self.data_dir / "postgresql.conf"
        if "include 'halab.conf'" not in (files.read(main) or ""):
            write_as_postgres(main, "include 'halab.conf'\n", append=True, files=files)
        write_as_postgres(self.data_dir / "pg_hba.conf",
                          "# halab: the lab's own clusters; postgres over the unix socket, the rest with passwords\n"
                          "local all postgres peer\n"
                          f"host replication {REPLICATION_USER} 0.0.0.0/0 scram-sha-256\n"
                          f"host postgres {REPLICATION_USER} 0.0.0.0/0 scram-sha-256\n"   # pg_rewind reads through it
                          f"host all {APP_USER} 0.0.0.0/0 scram-sha-256\n", files=files)
        auto = self.data_dir / "postgresql.auto.conf"
        if (text := files.read(auto)) is not None:
            kept = [line for line in text.splitlines(keepends=True)
                    if not line.lstrip().startswith(tuple(self.cluster.replication_settings([])))]
            write_as_postgres(auto, "".join(kept), files=files)

    def _run_as_postgres(self, argv: list[str], what: str, timeout: float = 30.0) -> str:
        """Its output; a HalabError with the end of what it said if it failed."""
        assert self.host is not None
        result = self.lab.run(self.host, as_postgres(argv), timeout=timeout)
        if result.returncode != 0:
            raise HalabError(f"{what} on {self.host} failed: {(result.stderr or result.stdout).strip()[-800:]}",
                             f"See the PostgreSQL documentation for {what}; the lab's data is in {self.data_dir}.")
        return result.stdout

    def argv(self) -> list[str]:
        return as_postgres([str(self.bin / "postgres"), "-D", str(self.data_dir)])

    def ready(self) -> bool:
        assert self.host is not None
        result = self.lab.run(self.host, [str(self.bin / "pg_isready"), "-q", "-p", str(self.cluster.port),
                                          "-h", str(self.cluster.socket_dir(self.host))], timeout=5)
        return result.returncode == 0

    def sql(self, statement: str, database: str = "postgres", timeout: float = 10.0) -> str:
        """Run SQL as the superuser over the host's unix socket; its output, tab-separated. The
        statement goes through a private file, never the command line (which anyone can read in
        /proc), because some carry passwords."""
        assert self.host is not None
        files = self.host_files
        script = write_as_postgres(self.cluster.root / f"{self.host}.{secrets.token_hex(4)}.sql", statement,
                                   files=files)
        try:
            return self._run_as_postgres([
                str(self.bin / "psql"), "-h", str(self.cluster.socket_dir(self.host)), "-p", str(self.cluster.port),
                "-U", "postgres", "-d", database, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                "-f", str(script)], "SQL", timeout=timeout).strip()
        finally:
            files.remove(script)

    def set_standbys(self, standbys: list[str]) -> None:
        """On the primary: which standbys a commit waits for, in the cluster's replication mode."""
        for key, value in self.cluster.replication_settings(standbys).items():
            self.sql(f"ALTER SYSTEM SET {key} = '{value}'")
        self.sql("SELECT pg_reload_conf()")

    def create_roles(self) -> None:
        """On the primary, once: the replication and application roles, and the writes table."""
        self.sql(f"CREATE ROLE {REPLICATION_USER} LOGIN REPLICATION PASSWORD '{self.cluster.replication_password}'")
        # pg_rewind's source needs these functions, and nothing else (PostgreSQL's pg_rewind page).
        self.sql("; ".join(f"GRANT EXECUTE ON FUNCTION pg_catalog.{f} TO {REPLICATION_USER}" for f in (
            "pg_ls_dir(text, boolean, boolean)", "pg_stat_file(text, boolean)", "pg_read_binary_file(text)",
            "pg_read_binary_file(text, bigint, bigint, boolean)")))
        # ...and a checkpoint on the new primary first (see `rejoin`): PostgreSQL 15's pg_checkpoint role.
        if int(self.bin.parent.name) >= 15:
            self.sql(f"GRANT pg_checkpoint TO {REPLICATION_USER}")
        self.create_app()

    def create_app(self) -> None:
        """The application role, its database and the writes table (a manager that made the
        replication role itself, Patroni, needs only these)."""
        self.sql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{self.cluster.app_password}'")
        self.sql(f"CREATE DATABASE {APP_USER} OWNER {APP_USER}")
        self.sql(f"SET ROLE {APP_USER}; {SCHEMA}", database=APP_USER)

    def in_recovery(self) -> bool:
        return self.sql("SELECT pg_is_in_recovery()") == "t"

    def timeline(self) -> int:
        """The timeline it writes (a primary) or receives (a standby). Not the last checkpoint's,
        which still names the old timeline for a while after a promotion."""
        return int(self.sql(
            "SELECT CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),"
            " (SELECT timeline_id FROM pg_control_checkpoint()))"
            " ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END"))

    def promote(self, standbys: list[str], timeout: float = 30.0) -> None:
        """A standby becomes the primary; then commits wait for `standbys` (in a synchronous mode),
        not for whatever the old primary named, which may be this host itself."""
        if self.sql(f"SELECT pg_promote(wait => true, wait_seconds => {int(timeout)})", timeout=timeout + 5) != "t":
            raise HalabError(f"{self.host} was not promoted within {timeout:g} s.", f"See {self.lab.run_dir}.")
        self.set_standbys(standbys)

    def wait_streaming(self, standby: str, timeout: float = 20.0) -> None:
        """On the primary: until `standby` streams (pg_stat_replication shows it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sql(f"SELECT state FROM pg_stat_replication WHERE application_name = '{standby}'") == "streaming":
                return
            time.sleep(0.1)
        raise HalabError(f"{standby} did not stream from {self.host} within {timeout:g} s.", f"See {self.lab.run_dir}.")

    def rejoin(self, upstream: PostgreSQL) -> None:
        """A former primary (stopped or crashed) becomes a standby of `upstream`, the new primary,
        the way halab's agent does it (ha.heartbeat.pgrejoin: pg_rewind back to where the
        timelines forked, or a fresh base backup), and restarts streaming. Never a second primary."""
        assert self.host is not None and upstream.host is not None
        if self.alive():
            self.stop()
        self._wait_children_gone()
        address = str(self.lab.topo.addresses[upstream.host][0].ip)
        source = (f"host={address} port={self.cluster.port} user={REPLICATION_USER} dbname=postgres "
                  f"connect_timeout=5 passfile={self.replication_passfile()}")
        self.upstream = address
        said = self._run_as_postgres([sys.executable, "-m", "ha.heartbeat.pgrejoin", "--data-directory",
                                      str(self.data_dir), "--primary-conninfo", source, "--bin-directory",
                                      str(self.bin), "--no-start"], "pgrejoin", timeout=180)
        self.rejoined_by = said.strip().partition("as a standby by ")[2]   # pg_rewind, or base backup (why)
        self._write_config()
        self.start()

    def kill_postmaster(self) -> float:
        """SIGKILL the postmaster, whoever started it (the lab, or Patroni: its pid is in its data
        directory); when it was sent (over there: when the ssh command that sends it left)."""
        assert self.host is not None
        files = self.host_files
        first = (files.read(self.data_dir / "postmaster.pid") or "").split()[:1]
        if not first or not first[0].isdigit():
            raise HalabError(f"PostgreSQL on {self.host} is not running (no postmaster.pid).",
                             f"See {self.lab.run_dir}.")
        pid, at = int(first[0]), time.monotonic()
        if files.server == LOCAL:
            try:
                os.kill(pid, signal.SIGKILL)
                return at
            except ProcessLookupError:
                pass
        elif servers.run_on(files.server, f"kill -KILL {pid}", timeout=10).returncode == 0:
            return at
        raise HalabError(f"PostgreSQL's postmaster {pid} on {self.host} could not be killed: it is gone already.",
                         f"See {self.lab.run_dir}.")

    def _wait_children_gone(self, timeout: float = 10.0) -> None:
        """After a crash (the postmaster SIGKILLed), its children leave on their own within moments;
        until they have, they hold its shared memory and no recovery may start."""
        deadline, files = time.monotonic() + timeout, self.host_files
        while time.monotonic() < deadline:
            if not files.running(f"^postgres: {self.host}: "):
                return
            time.sleep(0.05)
        raise HalabError(f"PostgreSQL's processes on {self.host} did not exit within {timeout:g} s.",
                         f"See {self.lab.run_dir}.")
