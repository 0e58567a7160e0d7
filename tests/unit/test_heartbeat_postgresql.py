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


@pytest.mark.parametrize(("extra", "message"), [
    ({"start": "/bin/true"}, r"unknown key 'start'"),
    ({"address": "10.0.0.1/24"}, r"unknown key 'address'"),
    ({"data_directory": "relative/dir"}, r"data_directory = 'relative/dir' is not allowed; expected an absolute"),
    ({"port": 0}, r"port = 0 is not allowed; expected a TCP port"),
    ({"os_user": "root; rm"}, r"os_user = 'root; rm' is not allowed"),
    ({"promote_timeout": 1.5}, r"promote_timeout = 1.5 is not allowed"),
    ({"synchronous_standby": "db2'; DROP"}, r"synchronous_standby = .* is not allowed; expected the standby's"),
    ({"synchronous_mode_strict": "yes"}, r"synchronous_mode_strict = 'yes' is not allowed; expected true"),
    ({"synchronous_fallback_timeout": 0.5}, r"synchronous_fallback_timeout = 0.5 is not allowed"),
    ({"primary_conninfo": "host=x password=s3cr3t"}, r"primary_conninfo holds a password; put it in a libpq passfile"),
    ({"primary_conninfo": "user=replicator"}, r"primary_conninfo = .* is not allowed; expected a libpq"),
])
def test_a_wrong_key_is_refused_naming_the_resource_and_the_key(extra, message):
    with pytest.raises(ConfigError, match=r"^n.toml: resource 'db'.*" + message):
        parse({**DB, **extra})


def test_a_service_may_not_take_the_postgresql_keys():
    with pytest.raises(ConfigError, match=r"resource 'web' \(kind service\): unknown key 'data_directory'"):
        parse({"name": "web", "kind": "service", "start": "a", "stop": "b", "monitor": "c",
               "data_directory": "/srv"})


def test_a_missing_directory_is_named():
    with pytest.raises(ConfigError, match="missing key 'socket_directory'"):
        parse({"name": "db", "kind": "postgresql", "data_directory": "/srv"})


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


def test_a_fallback_shorter_than_a_takeover_is_refused():
    with pytest.raises(ConfigError, match=r"resource db: synchronous_fallback_timeout = 1 is shorter than a "
                                          r"takeover; expected at least deadtime \+ 1 s \(4\)"):
        config.parse({**BASE, "deadtime": 3, "resource": [{**DB, "synchronous_standby": "db2",
                                                           "synchronous_fallback_timeout": 1}]}, "n.toml")
    # Strict mode never falls back: any timeout will do.
    config.parse({**BASE, "deadtime": 3, "resource": [{**DB, "synchronous_standby": "db2",
                                                       "synchronous_mode_strict": True,
                                                       "synchronous_fallback_timeout": 1}]}, "n.toml")


def test_a_password_in_the_connection_string_is_never_echoed():
    with pytest.raises(ConfigError) as err:
        parse({**DB, "primary_conninfo": "host=x password=s3cr3t"})
    assert "s3cr3t" not in str(err.value)
    assert parse({**DB, "primary_conninfo": "host=x passfile=/srv/password.pgpass"}).server   # only password=


def test_a_rejoin_runs_pgrejoin_with_the_peer_and_only_with_it_set():
    r = parse({**DB, "primary_conninfo": "host=10.0.1.12 user=replicator dbname=postgres passfile=/srv/pgpass"})
    cmd = r.server.rejoin()
    assert cmd[:2] == ("setpriv", "--reuid=postgres")          # as the data's owner, not root
    assert cmd[cmd.index("-m") + 1] == "ha.heartbeat.pgrejoin"
    assert cmd[cmd.index("--primary-conninfo") + 1] == r.server.primary_conninfo
    assert cmd[cmd.index("--data-directory") + 1] == "/srv/pg/node1"
    assert r.server.is_standby()[-1] == postgresql.IS_STANDBY
    assert parse(DB).server.primary_conninfo == ""   # no automatic rejoin unless asked for
