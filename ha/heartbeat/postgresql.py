"""The `postgresql` resource: the active node's PostgreSQL is the primary, the standby node's a
streaming standby (Pacemaker calls such a resource promotable).

    [[resource]]
    name = "db"
    kind = "postgresql"
    data_directory = "/var/lib/postgresql/15/main"
    socket_directory = "/var/run/postgresql"
    port = 5432                                   # defaults: this port, the Debian 12 programs,
    bin_directory = "/usr/lib/postgresql/15/bin"  # the postgres user, and these timings
    os_user = "postgres"
    promote_timeout = 30
    monitor_interval = 1.0
    monitor_timeout = 2.0
    synchronous_standby = "db2"                   # the peer's server (its cluster_name): a commit
    synchronous_mode_strict = false               # waits for it; without it, asynchronous
    synchronous_fallback_timeout = 3.0
    primary_conninfo = "host=10.0.1.12 user=replicator dbname=postgres passfile=/var/lib/postgresql/.pgpass"

Start (once this node has fenced its peer): promote the local standby, waiting until it takes
writes. Stop (this node gives up): a fast shutdown, so that it takes no more writes; it comes back
only as a standby of the new primary (rewound, never as a second primary). Monitor: the server
answers a query, as a primary, within the timeout. A node that starts finding its server a
primary stops it first (as it does any resource it finds running): a standby node holds nothing.
Each action is a command line built here and run by the agent as any service's is, as `os_user`
over the unix socket (peer authentication: no password anywhere).

Synchronous replication (`synchronous_standby` set), as Patroni's synchronous_mode does it:
- strict (`synchronous_mode_strict = true`): a commit waits for the standby, always. When it is
  gone, writes block until it is back; after a failover, until the old primary has rejoined.
- not strict (the default): when the standby stops replying, the primary drops to asynchronous
  after `synchronous_fallback_timeout` s, so writes go on. Safely: the active node grants its
  peer a lease in its heartbeats while the peer is synchronous (ha.heartbeat.syncrep), drops only
  once that lease has run out, and a standby without a valid lease refuses to be promoted. So a
  primary that fell back and then crashed is not replaced by a standby that lacks its writes:
  writes stop rather than being lost.

Rejoin (`primary_conninfo` set: how this server reaches the peer's, a passfile for the password):
while the peer is active and this node a standby, the agent checks that its server runs as a
standby; when it is down or a primary (the old primary, back after a failover), the agent makes
it a standby of the peer's (ha.heartbeat.pgrejoin: pg_rewind, or a fresh base backup). A running
standby that does not stream is left to reconnect by itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

KEYS = {"data_directory", "socket_directory", "port", "bin_directory", "os_user", "promote_timeout",
        "synchronous_standby", "synchronous_mode_strict", "synchronous_fallback_timeout", "primary_conninfo"}
DEFAULTS = {"port": 5432, "bin_directory": "/usr/lib/postgresql/15/bin", "os_user": "postgres",
            "promote_timeout": 30, "synchronous_standby": "", "synchronous_mode_strict": False,
            "synchronous_fallback_timeout": 3.0, "primary_conninfo": ""}
#: A standby counts as replicating while it streams and its last reply is younger than this
#: (it replies at least every wal_receiver_status_interval, 1 s, and at every flush).
REPLY_MAX_AGE_S = 2.0
MONITOR_INTERVAL, MONITOR_TIMEOUT = 1.0, 2.0

#: Fails (ON_ERROR_STOP: exit status 3) unless the server is a primary, or has become one.
PROMOTE = ("DO $$ BEGIN IF pg_is_in_recovery() AND NOT pg_promote(true, {timeout}) THEN "
           "RAISE EXCEPTION 'not promoted within {timeout} s'; END IF; END $$")
#: Division by zero (exit status 3) on a standby; no answer (exit status 2) when it is down.
IS_PRIMARY = "SELECT 1 / (NOT pg_is_in_recovery())::int"
#: Division by zero on a primary; no answer when it is down: a standby that runs passes.
IS_STANDBY = "SELECT 1 / pg_is_in_recovery()::int"
#: Prints how the standby replicates from this server: "sync" (the server counts it as a
#: synchronous standby), "async", or nothing when it does not stream or has not replied lately.
REPLICATION_STATE = ("SELECT CASE WHEN sync_state IN ('sync', 'quorum') THEN 'sync' ELSE 'async' END "
                     "FROM pg_stat_replication WHERE application_name = '{name}' AND state = 'streaming' "
                     "AND now() - reply_time < interval '{age} s' "
                     "ORDER BY sync_state IN ('sync', 'quorum') DESC LIMIT 1")
#: After commits were told to wait for the standby: until the server counts it as synchronous and
#: it has flushed everything written so far, acknowledged asynchronously before included.
CAUGHT_UP = ("DO $$ DECLARE target pg_lsn := pg_current_wal_lsn(); BEGIN FOR i IN 1..{tries} LOOP "
             "IF EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = '{name}' "
             "AND sync_state IN ('sync', 'quorum') AND flush_lsn >= target) THEN RETURN; END IF; "
             "PERFORM pg_sleep(0.05); END LOOP; "
             "RAISE EXCEPTION 'the standby did not catch up within {seconds} s'; END $$")
CATCH_UP_S = 5
#: The longest a rejoin may take (a base backup of a small lab database takes seconds).
REJOIN_TIMEOUT_S = 150


@dataclass(frozen=True)
class PgServer:
    data_directory: str
    socket_directory: str
    port: int = DEFAULTS["port"]
    bin_directory: str = DEFAULTS["bin_directory"]
    os_user: str = DEFAULTS["os_user"]
    promote_timeout: int = DEFAULTS["promote_timeout"]
    synchronous_standby: str = DEFAULTS["synchronous_standby"]
    synchronous_mode_strict: bool = DEFAULTS["synchronous_mode_strict"]
    synchronous_fallback_timeout: float = DEFAULTS["synchronous_fallback_timeout"]
    primary_conninfo: str = DEFAULTS["primary_conninfo"]

    def start(self) -> tuple[str, ...]:
        """Whom commits wait for is set before the promotion, so that no commit slips through
        in between: the standby when strict; nobody otherwise (the peer was just fenced: the
        agent turns synchronous replication on when a standby replicates again)."""
        waits_for = self.synchronous_standby if self.synchronous_mode_strict else ""
        return self._psql(*self._standby_names(waits_for), PROMOTE.format(timeout=self.promote_timeout))

    def stop(self) -> tuple[str, ...]:
        return self._as_user(f"{self.bin_directory}/pg_ctl", "stop", "-D", self.data_directory, "-m", "fast",
                             "-t", str(self.promote_timeout))

    def monitor(self) -> tuple[str, ...]:
        return self._psql(IS_PRIMARY)

    def is_standby(self) -> tuple[str, ...]:
        return self._psql(IS_STANDBY)

    def rejoin(self) -> tuple[str, ...]:
        """ha.heartbeat.pgrejoin, run as `os_user`: it needs no more rights than the data's owner."""
        return self._as_user(sys.executable, "-m", "ha.heartbeat.pgrejoin", "--data-directory", self.data_directory,
                             "--primary-conninfo", self.primary_conninfo, "--bin-directory", self.bin_directory,
                             "--timeout", str(REJOIN_TIMEOUT_S))

    def replication_state(self) -> tuple[str, ...]:
        """Prints "sync", "async" or nothing: how the synchronous standby replicates now."""
        return self._psql(REPLICATION_STATE.format(name=self.synchronous_standby, age=REPLY_MAX_AGE_S))

    def synchronous_on(self) -> tuple[str, ...]:
        """Commits wait for the standby from now on; succeeds once it has caught up."""
        return self._psql(*self._standby_names(self.synchronous_standby), CAUGHT_UP.format(
            name=self.synchronous_standby, tries=CATCH_UP_S * 20, seconds=CATCH_UP_S))

    def synchronous_off(self) -> tuple[str, ...]:
        return self._psql(*self._standby_names(""))

    def _standby_names(self, standby: str) -> tuple[str, str]:
        names = f'"{standby}"' if standby else ""
        return f"ALTER SYSTEM SET synchronous_standby_names = '{names}'", "SELECT pg_reload_conf()"

    def table(self) -> dict:
        """Its keys as the configuration writes them."""
        return {key: getattr(self, key) for key in sorted(KEYS)}

    def _psql(self, *statements: str) -> tuple[str, ...]:
        """One psql for all of them, each in its own transaction (ALTER SYSTEM allows no other)."""
        return self._as_user(f"{self.bin_directory}/psql", "-h", self.socket_directory, "-p", str(self.port),
                             "-U", self.os_user, "-d", "postgres", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             *(arg for sql in statements for arg in ("-c", sql)))

    def _as_user(self, *argv: str) -> tuple[str, ...]:
        return as_user(self.os_user, *argv)


def as_user(user: str, *argv: str) -> tuple[str, ...]:
    """Run a program as `user`: PostgreSQL refuses root, and peer authentication maps the
    operating-system user to the database role of the same name. setpriv execs, so the pid
    stays the program's own."""
    return ("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv)
