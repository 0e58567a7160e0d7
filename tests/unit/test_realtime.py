"""The agents' real-time knob: checked like every key, applied with children reset, refused softly."""
import os

import pytest

from ha import realtime
from ha.configcheck import ConfigError
from ha.heartbeat import config as heartbeat_config
from ha.vrrp import config as vrrp_config

VRRP = {"vrrp_instance": [{"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "priority": 100,
                           "advert_int": 1.0, "virtual_ipaddress": ["10.0.0.100/24"]}]}
HEARTBEAT = {"name": "node1", "secret": "a-secret-long-enough", "peer": {"name": "node2"},
             "link": [{"interface": "eth1", "peer_address": "192.168.1.2"}],
             "resource": [{"name": "vip", "kind": "vip", "address": "10.0.0.100/24", "interface": "eth0"}]}


@pytest.mark.parametrize("parse", [vrrp_config.parse, heartbeat_config.parse], ids=["vrrp", "heartbeat"])
@pytest.mark.parametrize("value", [1, 10, 99])
def test_both_agents_read_it_and_write_it_back(parse, value):
    raw = {**(VRRP if parse is vrrp_config.parse else HEARTBEAT), "realtime_priority": value}
    cfg = parse(raw, "a.toml")
    assert cfg.realtime_priority == value
    dump = vrrp_config.dump if parse is vrrp_config.parse else heartbeat_config.dump
    assert f"realtime_priority = {value}" in dump(cfg)


@pytest.mark.parametrize("parse", [vrrp_config.parse, heartbeat_config.parse], ids=["vrrp", "heartbeat"])
def test_absent_means_ordinary_scheduling(parse):
    assert parse(VRRP if parse is vrrp_config.parse else HEARTBEAT, "a.toml").realtime_priority is None


@pytest.mark.parametrize("value", [0, 100, -1, True, 10.0, "10"])
def test_a_value_outside_1_to_99_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"^a.toml: realtime_priority = .* from 1 to 99"):
        realtime.parse({"realtime_priority": value}, "a.toml")


def test_apply_asks_for_round_robin_with_children_reset(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "sched_setscheduler", lambda pid, policy, param: calls.append((pid, policy, param)))
    assert realtime.apply(10, "halab-vrrp") == 10
    assert calls == [(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(10))]
    assert realtime.apply(None, "halab-vrrp") is None and len(calls) == 1


def test_a_kernel_that_refuses_costs_one_warning_not_the_agent(monkeypatch, capsys):
    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert realtime.apply(10, "halab-heartbeat") is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("halab-heartbeat: realtime_priority = 10 refused")
