"""The `postgresql` resource kind: its keys, its defaults, and the commands the agent will run."""
import tomllib

import pytest

from ha.configcheck import ConfigError
from ha.heartbeat import config, postgresql

BASE = {"name": "node1", "secret": "a-secret-long-enough", "peer": {"name": "node2"},
        "link": [{"interface": "eth1", "peer_address": "192.168.1.2"}]}
DB = {"name": "db", "kind": "postgresql", "data_directory": "/srv/pg/node1", "socket_directory": "/srv/pg/sock"}


def parse(resource: dict):
    return config.parse({**BASE, "resource": [resource]}, "n.toml").resources[0]


def test_defaults_and_the_commands_built_from_them():
    r = parse(DB)
    assert r.server == postgresql.PgServer("/srv/pg/node1", "/srv/pg/sock")
    assert (r.monitor_interval, r.monitor_timeout) == (postgresql.MONITOR_INTERVAL, postgresql.MONITOR_TIMEOUT)
    as_postgres = ("setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--")
    assert r.stop == (*as_postgres, "/usr/lib/postgresql/15/bin/pg_ctl", "stop", "-D", "/srv/pg/node1",
                      "-m", "fast", "-t", "30")
    assert r.start[:6] == (*as_postgres, "/usr/lib/postgresql/15/bin/psql")
    assert "-h" in r.start and r.start[r.start.index("-h") + 1] == "/srv/pg/sock"
    assert "pg_promote(true, 30)" in r.start[-1] and "ON_ERROR_STOP=1" in r.start
    assert r.monitor[-1] == postgresql.IS_PRIMARY


def test_every_key_is_read_and_survives_dump_and_parse():
    r = parse({**DB, "port": 5433, "bin_directory": "/opt/pg16/bin", "os_user": "pg", "promote_timeout": 5,
               "monitor_interval": 0.2, "monitor_timeout": 0.5})
    assert r.server == postgresql.PgServer("/srv/pg/node1", "/srv/pg/sock", 5433, "/opt/pg16/bin", "pg", 5)
    assert "--reuid=pg" in r.stop and "/opt/pg16/bin/pg_ctl" in r.stop and "5433" in r.monitor
    cfg = config.parse({**BASE, "resource": [{**DB, "port": 5433}]}, "n.toml")
    assert config.parse(tomllib.loads(config.dump(cfg)), "again") == cfg


WHERE = "n.toml: resource 'db'"
PATH = "an absolute path"
PORT = "a TCP port"
USER = "a user name (letters, digits, - and _)"
WHOLE = "whole seconds from 1 to 3600"
STANDBY = 'the standby\'s cluster_name (letters, digits, - and _), or "" for asynchronous replication'
STRICT = "true (writes wait for the standby, always) or false"
FALLBACK = "seconds from 1 to 600"
CONNINFO = ('a libpq connection string to the peer\'s server, like '
            '"host=10.0.1.12 user=replicator dbname=postgres passfile=/path"')


def refusal(resource: dict, **top) -> str:
    with pytest.raises(ConfigError) as err:
        config.parse({**BASE, **top, "resource": [resource]}, "n.toml")
    return str(err.value)


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("data_directory", "relative/dir", PATH),
    ("data_directory", "/srv/pg\0node1", PATH),
    ("data_directory", 5, PATH),
    ("socket_directory", "", PATH),
    ("socket_directory", "sock", PATH),
    ("bin_directory", "bin", PATH),
    ("bin_directory", ["/usr/bin"], PATH),
    ("port", 0, PORT),
    ("port", 65536, PORT),
    ("port", -5432, PORT),
    ("port", "5432", PORT),
    ("port", 5432.0, PORT),
    ("port", True, PORT),
    ("os_user", "", USER),
    ("os_user", "-", USER),
    ("os_user", "_", USER),
    ("os_user", "root; rm", USER),
    ("os_user", "pg.admin", USER),
    ("os_user", "u" * 33, USER),
    ("os_user", 1000, USER),
    ("promote_timeout", 0, WHOLE),
    ("promote_timeout", 3601, WHOLE),
    ("promote_timeout", 1.5, WHOLE),
    ("promote_timeout", "30", WHOLE),
    ("promote_timeout", True, WHOLE),
    ("synchronous_standby", "db2'; DROP", STANDBY),
    ("synchronous_standby", "db 2", STANDBY),
    ("synchronous_standby", "-", STANDBY),
    ("synchronous_standby", "_", STANDBY),
    ("synchronous_standby", "d" * 64, STANDBY),
    ("synchronous_standby", 2, STANDBY),
    ("synchronous_mode_strict", "yes", STRICT),
    ("synchronous_mode_strict", 1, STRICT),
    ("synchronous_fallback_timeout", 0.99, FALLBACK),
    ("synchronous_fallback_timeout", 0, FALLBACK),
    ("synchronous_fallback_timeout", 600.5, FALLBACK),
    ("synchronous_fallback_timeout", 601, FALLBACK),
    ("synchronous_fallback_timeout", "3", FALLBACK),
    ("synchronous_fallback_timeout", False, FALLBACK),
    ("primary_conninfo", "user=replicator dbname=postgres", CONNINFO),
    ("primary_conninfo", "host=10.0.1.12\nuser=replicator", CONNINFO),
    ("primary_conninfo", "host=" + "x" * 996, CONNINFO),
    ("primary_conninfo", 5, CONNINFO),
    ("primary_conninfo", ["host=10.0.1.12"], CONNINFO),
])
def test_a_wrong_value_is_refused_naming_the_key_the_value_and_what_is_allowed(key, value, allowed):
    """The contract for bad input: the message says where, which key, the value given and what would do."""
    assert refusal({**DB, key: value}) == f"{WHERE}: {key} = {value!r} is not allowed; expected {allowed}"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("data_directory", "/", "/"),
    ("socket_directory", "/run/postgresql", "/run/postgresql"),
    ("bin_directory", "/opt/pg16/bin", "/opt/pg16/bin"),
    ("port", 1, 1),
    ("port", 65535, 65535),
    ("os_user", "u" * 32, "u" * 32),
    ("os_user", "pg-admin_2", "pg-admin_2"),
    ("promote_timeout", 1, 1),
    ("promote_timeout", 3600, 3600),
    ("synchronous_standby", "", ""),
    ("synchronous_standby", "db-2_b", "db-2_b"),
    ("synchronous_standby", "d" * 63, "d" * 63),
    ("synchronous_mode_strict", True, True),
    ("synchronous_mode_strict", False, False),
    ("synchronous_fallback_timeout", 1, 1.0),
    ("synchronous_fallback_timeout", 600, 600.0),
    ("synchronous_fallback_timeout", 2.5, 2.5),
    ("primary_conninfo", "", ""),
    ("primary_conninfo", "host=" + "x" * 995, "host=" + "x" * 995),
    ("primary_conninfo", "host=10.0.1.12 user=password_owner", "host=10.0.1.12 user=password_owner"),
])
def test_a_value_at_a_bound_or_of_each_allowed_form_is_taken(key, value, expected):
    """The bounds are inclusive, and -, _ and the empty string are allowed where the message says so."""
    fast = {**BASE, "interval": 0.1, "resource": [{**DB, key: value}]}   # deadtime 0.3: any fallback outlasts it
    r = config.parse(fast, "n.toml").resources[0]
    assert getattr(r.server, key) == expected and type(getattr(r.server, key)) is type(expected)


def test_every_optional_key_has_its_documented_default():
    """A minimal resource gets the defaults postgresql.py documents (Debian 12's PostgreSQL 15)."""
    s = parse(DB).server
    assert (s.port, s.bin_directory, s.os_user, s.promote_timeout) == (5432, "/usr/lib/postgresql/15/bin",
                                                                       "postgres", 30)
    assert (s.synchronous_standby, s.synchronous_mode_strict, s.primary_conninfo) == ("", False, "")
    assert s.synchronous_fallback_timeout == 3.0 and type(s.synchronous_fallback_timeout) is float


@pytest.mark.parametrize("key", ["data_directory", "socket_directory"])
def test_a_missing_directory_is_named_with_what_it_must_be(key):
    """The two directories have no default: the message names the one missing."""
    resource = {k: v for k, v in DB.items() if k != key}
    assert refusal(resource) == f"{WHERE}: missing key {key!r} (an absolute path)"


@pytest.mark.parametrize("key", ["start", "stop", "monitor", "address", "interface"])
def test_another_kinds_key_is_unknown_to_a_postgresql_resource(key):
    """Its commands come from its server's settings, not from start/stop/monitor, and it has no address."""
    allowed = ("bin_directory, data_directory, kind, monitor_interval, monitor_timeout, name, os_user, port, "
               "primary_conninfo, promote_timeout, socket_directory, synchronous_fallback_timeout, "
               "synchronous_mode_strict, synchronous_standby")
    assert refusal({**DB, key: "x"}) == f"{WHERE} (kind postgresql): unknown key {key!r}; allowed keys: {allowed}"


def test_a_service_may_not_take_the_postgresql_keys():
    with pytest.raises(ConfigError, match=r"resource 'web' \(kind service\): unknown key 'data_directory'"):
        parse({"name": "web", "kind": "service", "start": "a", "stop": "b", "monitor": "c",
               "data_directory": "/srv"})


def test_synchronous_replication_keys_and_the_commands_that_turn_it_on_and_off():
    r = parse({**DB, "synchronous_standby": "db2", "synchronous_fallback_timeout": 4})
    assert r.server.synchronous_standby == "db2" and not r.server.synchronous_mode_strict
    assert "ALTER SYSTEM SET synchronous_standby_names = '\"db2\"'" in r.server.synchronous_on()
    assert "ALTER SYSTEM SET synchronous_standby_names = ''" in r.server.synchronous_off()
    assert "application_name = 'db2'" in r.server.replication_state()[-1]
    assert "flush_lsn >= target" in r.server.synchronous_on()[-1]   # switched on once caught up
    # Not strict: a promotion waits for nobody (the peer was just fenced); strict: for the standby, from the start.
    assert "ALTER SYSTEM SET synchronous_standby_names = ''" in r.start
    strict = parse({**DB, "synchronous_standby": "db2", "synchronous_mode_strict": True})
    assert "ALTER SYSTEM SET synchronous_standby_names = '\"db2\"'" in strict.start
    assert strict.start.index("SELECT pg_reload_conf()") < len(strict.start) - 1   # then the promotion


def sync_db(name: str = "db", **keys) -> dict:
    return {**DB, "name": name, "synchronous_standby": "db2", **keys}


@pytest.mark.parametrize(("deadtime", "fallback", "least"), [
    (3, 3.9, "4"),
    (3, 1, "4"),
    (0.5, 1.4, "1.5"),
    (2.25, 3.2, "3.25"),
])
def test_a_fallback_shorter_than_a_takeover_is_refused(deadtime, fallback, least):
    """A primary must not drop to asynchronous before its standby can have taken over (deadtime, then 1 s to fence)."""
    message = refusal(sync_db(synchronous_fallback_timeout=fallback), interval=0.1, deadtime=deadtime)
    assert message == (f"n.toml: resource db: synchronous_fallback_timeout = {fallback:g} is shorter than a takeover; "
                       f"expected at least deadtime + 1 s ({least})")


def test_the_default_fallback_is_refused_with_the_default_timings():
    """3 s (the default fallback) is shorter than deadtime 3 s (3 x the default interval) + 1 s: the user is told."""
    assert refusal(sync_db()).endswith("synchronous_fallback_timeout = 3 is shorter than a takeover; "
                                       "expected at least deadtime + 1 s (4)")


@pytest.mark.parametrize(("deadtime", "keys"), [
    (3, {"synchronous_fallback_timeout": 4}),                                       # exactly deadtime + 1 s
    (0.5, {"synchronous_fallback_timeout": 1.5}),
    (3, {"synchronous_fallback_timeout": 600}),
    (3, {"synchronous_mode_strict": True, "synchronous_fallback_timeout": 1}),     # strict never falls back
    (3, {"synchronous_mode_strict": True}),
])
def test_a_fallback_that_outlasts_a_takeover_or_strict_mode_is_taken(deadtime, keys):
    """The lease bound is inclusive, and strict mode, which never falls back, takes any timeout."""
    cfg = config.parse({**BASE, "interval": 0.1, "deadtime": deadtime, "resource": [sync_db(**keys)]}, "n.toml")
    assert cfg.resources[0].server.synchronous_standby == "db2"


def test_an_asynchronous_database_takes_any_fallback():
    """Without a synchronous standby there is no lease, so the fallback timeout is not compared to the deadtime."""
    assert parse({**DB, "synchronous_fallback_timeout": 1}).server.synchronous_fallback_timeout == 1.0


@pytest.mark.parametrize("count", [2, 3])
def test_only_one_database_may_be_synchronous(count):
    """Each heartbeat carries one lease: two synchronous databases would share it; the message names them all."""
    names = [f"db{i}" for i in range(1, count + 1)]
    resources = [sync_db(name, synchronous_fallback_timeout=5) for name in names]
    with pytest.raises(ConfigError) as err:
        config.parse({**BASE, "resource": resources}, "n.toml")
    assert str(err.value) == (f"n.toml: resources {', '.join(names)}: only one postgresql resource may set "
                              "synchronous_standby")


def test_one_synchronous_database_among_other_resources_is_taken():
    """Addresses, services and asynchronous databases do not count as synchronous."""
    vip = {"name": "vip", "kind": "vip", "address": "10.0.0.100/24", "interface": "eth0"}
    web = {"name": "web", "kind": "service", "start": "a", "stop": "b", "monitor": "c"}
    resources = [vip, web, {**DB, "name": "async"}, sync_db(synchronous_fallback_timeout=5)]
    cfg = config.parse({**BASE, "resource": resources}, "n.toml")
    assert [r.name for r in cfg.resources] == ["vip", "web", "async", "db"]


PASSWORD = (f"{WHERE}: primary_conninfo holds a password; put it in a libpq passfile (passfile=/path) and leave it "
            "out of the configuration")


@pytest.mark.parametrize("conninfo", [
    "host=x password=s3cr3t",
    "password=s3cr3t host=x",
    "host=x password = s3cr3t",
    "host=x user=r\tpassword\t=s3cr3t",
    "postgresql://rep:s3cr3t@10.0.1.12/postgres",        # libpq's URI form
    "postgresql://rep:s3cr3t@/postgres?host=10.0.1.12",
    "postgres://rep:pa?ss@10.0.1.12/postgres",
    ["host=x password=s3cr3t"],                          # not even a string: still never echoed
])
def test_a_password_in_the_connection_string_is_refused_and_never_echoed(conninfo):
    """A password belongs in a passfile: the configuration is readable, and so are the logs its errors go to."""
    message = refusal({**DB, "primary_conninfo": conninfo})
    assert message == PASSWORD and "s3cr3t" not in message


@pytest.mark.parametrize("conninfo", [
    "host=x passfile=/srv/password.pgpass",
    "host=x user=password_owner",
    "host=x application_name=nopassword",
    "postgresql://rep@/postgres?host=10.0.1.12",         # a URI without a password
])
def test_a_connection_string_that_only_mentions_a_password_is_taken(conninfo):
    """Only a password (password=, or user:secret@ in a URI) is refused: a passfile, or a name with it, is fine."""
    assert parse({**DB, "primary_conninfo": conninfo}).server.primary_conninfo == conninfo


def test_a_postgresql_resource_built_in_code_takes_its_timings():
    """The harness builds its database resource with postgresql_resource: its timings must reach the agent."""
    server = postgresql.PgServer("/srv/pg/node1", "/srv/pg/sock", port=5433)
    r = config.postgresql_resource("db", server, 0.2, 0.5)
    assert (r.name, r.kind, r.server, r.monitor_interval, r.monitor_timeout) == ("db", "postgresql", server, 0.2, 0.5)
    assert (r.start, r.stop, r.monitor) == (server.start(), server.stop(), server.monitor())
    assert r.address is None and r.interface == ""
    default = config.postgresql_resource("db", server)
    assert (default.monitor_interval, default.monitor_timeout) == (1.0, 2.0)


def test_a_rejoin_runs_pgrejoin_with_the_peer_and_only_with_it_set():
    r = parse({**DB, "primary_conninfo": "host=10.0.1.12 user=replicator dbname=postgres passfile=/srv/pgpass"})
    cmd = r.server.rejoin()
    assert cmd[:2] == ("setpriv", "--reuid=postgres")          # as the data's owner, not root
    assert cmd[cmd.index("-m") + 1] == "ha.heartbeat.pgrejoin"
    assert cmd[cmd.index("--primary-conninfo") + 1] == r.server.primary_conninfo
    assert cmd[cmd.index("--data-directory") + 1] == "/srv/pg/node1"
    assert r.server.is_standby()[-1] == postgresql.IS_STANDBY
    assert parse(DB).server.primary_conninfo == ""   # no automatic rejoin unless asked for
