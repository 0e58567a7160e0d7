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

Start (once this node has fenced its peer): promote the local standby, waiting until it takes
writes. Stop (this node gives up): a fast shutdown, so that it takes no more writes; it comes back
only as a standby of the new primary (rewound, never as a second primary). Monitor: the server
answers a query, as a primary, within the timeout. A node that starts finding its server a
primary stops it first (as it does any resource it finds running): a standby node holds nothing.
Each action is a command line built here and run by the agent as any service's is, as `os_user`
over the unix socket (peer authentication: no password anywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

KEYS = {"data_directory", "socket_directory", "port", "bin_directory", "os_user", "promote_timeout"}
DEFAULTS = {"port": 5432, "bin_directory": "/usr/lib/postgresql/15/bin", "os_user": "postgres",
            "promote_timeout": 30}
MONITOR_INTERVAL, MONITOR_TIMEOUT = 1.0, 2.0

#: Fails (ON_ERROR_STOP: exit status 3) unless the server is a primary, or has become one.
PROMOTE = ("DO $$ BEGIN IF pg_is_in_recovery() AND NOT pg_promote(true, {timeout}) THEN "
           "RAISE EXCEPTION 'not promoted within {timeout} s'; END IF; END $$")
#: Division by zero (exit status 3) on a standby; no answer (exit status 2) when it is down.
IS_PRIMARY = "SELECT 1 / (NOT pg_is_in_recovery())::int"


@dataclass(frozen=True)
class PgServer:
    data_directory: str
    socket_directory: str
    port: int = DEFAULTS["port"]
    bin_directory: str = DEFAULTS["bin_directory"]
    os_user: str = DEFAULTS["os_user"]
    promote_timeout: int = DEFAULTS["promote_timeout"]

    def start(self) -> tuple[str, ...]:
        return self._psql(PROMOTE.format(timeout=self.promote_timeout))

    def stop(self) -> tuple[str, ...]:
        return self._as_user(f"{self.bin_directory}/pg_ctl", "stop", "-D", self.data_directory, "-m", "fast",
                             "-t", str(self.promote_timeout))

    def monitor(self) -> tuple[str, ...]:
        return self._psql(IS_PRIMARY)

    def table(self) -> dict:
        """Its keys as the configuration writes them."""
        return {key: getattr(self, key) for key in sorted(KEYS)}

    def _psql(self, sql: str) -> tuple[str, ...]:
        return self._as_user(f"{self.bin_directory}/psql", "-h", self.socket_directory, "-p", str(self.port),
                             "-U", self.os_user, "-d", "postgres", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             "-c", sql)

    def _as_user(self, *argv: str) -> tuple[str, ...]:
        return as_user(self.os_user, *argv)


def as_user(user: str, *argv: str) -> tuple[str, ...]:
    """Run a program as `user`: PostgreSQL refuses root, and peer authentication maps the
    operating-system user to the database role of the same name. setpriv execs, so the pid
    stays the program's own."""
    return ("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv)
