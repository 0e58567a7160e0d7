"""The settings halab gives each lab PostgreSQL server, and the replication modes' meaning."""
import pytest

from harness.daemons.postgresql import DbCluster, pg_root
from harness.errors import HalabError


def test_each_mode_sets_what_a_commit_waits_for():
    standbys = ["db2"]
    assert DbCluster("r", "async").replication_settings(standbys) == {
        "synchronous_commit": "local", "synchronous_standby_names": ""}
    assert DbCluster("r", "sync").replication_settings(standbys) == {
        "synchronous_commit": "on", "synchronous_standby_names": 'ANY 1 ("db2")'}
    assert DbCluster("r", "remote_apply").replication_settings(["db2", "db3"]) == {
        "synchronous_commit": "remote_apply", "synchronous_standby_names": 'ANY 1 ("db2","db3")'}


def test_a_synchronous_mode_without_standbys_names_none():
    assert DbCluster("r", "sync").replication_settings([])["synchronous_standby_names"] == ""


def test_an_unknown_mode_is_refused_naming_the_choices():
    with pytest.raises(HalabError, match="'semi' is not one of async, sync, remote_apply"):
        DbCluster("r", "semi")


def test_each_host_has_its_own_directories_under_the_runs_root_and_its_name():
    c = DbCluster("20261127-1", "async")
    assert c.data_dir("db1") == pg_root() / "20261127-1" / "db1"
    settings = c.settings("db1")
    assert settings["cluster_name"] == "db1" and settings["unix_socket_directories"].endswith("db1.sock")
    assert settings["wal_log_hints"] == "on"   # pg_rewind needs it


def test_passwords_are_made_per_lab_and_kept_out_of_repr():
    a, b = DbCluster("r"), DbCluster("r")
    assert a.app_password != b.app_password and len(a.replication_password) >= 20
    assert a.app_password not in repr(a) and a.replication_password not in repr(a)
