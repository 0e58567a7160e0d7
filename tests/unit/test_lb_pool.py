"""A switch's pools as pure state, on a fake clock: membership, resync, and when to tell the switch."""

from ipaddress import IPv4Address

import pytest

from controller import ids
from controller.lb_config import Backend, HealthCheck, LbConfig, Service
from controller.pool import ARP_RETRY_S, Pools

B1, B2, B3 = (IPv4Address(f"10.0.0.{i}") for i in (1, 2, 3))


def pools(algorithm: str = "consistent", weights=(1, 1, 1)) -> Pools:
    backends = tuple(Backend(ip, 80, w) for ip, w in zip((B1, B2, B3), weights, strict=True))
    service = Service("web", IPv4Address("10.0.0.100"), 80, "tcp", algorithm, backends, HealthCheck(fall=2, rise=2))
    return Pools(LbConfig((service,)))


def located(p: Pools, now: float = 0.0) -> Pools:
    p.sync(now)
    for port, ip in enumerate((B1, B2, B3), start=1):
        p.locate(ip, f"02:00:00:00:00:0{port}", port)
    return p


def key(backend: int) -> ids.BackendKey:
    return ids.BackendKey(0, backend)


def test_nothing_is_pushed_before_the_switch_is_synced():
    p = pools()
    for port, ip in enumerate((B1, B2, B3), start=1):
        p.locate(ip, "02:00:00:00:00:01", port)
    assert p.due(10.0) == []


def test_a_restarted_controller_waits_for_every_backend_or_the_arp_retry():
    p = pools()
    p.sync(0.0)
    p.locate(B1, "02:00:00:00:00:01", 1)
    assert p.due(ARP_RETRY_S / 2) == []  # B2 and B3 not located yet: do not shrink the switch's pool
    [push] = p.due(ARP_RETRY_S + 0.01)
    assert [m.index for m in push.members] == [0] and push.first


def test_every_backend_located_is_pushed_once_until_something_changes():
    p = located(pools(weights=(1, 2, 3)))
    [push] = p.due(0.0)
    assert [m.index for m in push.members] == [0, 1, 2] and len(push.buckets) == 6
    assert p.due(0.1) == []
    p.locate(B2, "02:00:00:00:00:02", 7)  # moved to another port
    [moved] = p.due(0.2)
    assert not moved.first and {m.index: m.port for m in moved.members}[1] == 7


def test_a_backend_leaves_after_fall_failures_and_returns_after_rise_successes():
    p = located(pools())
    p.due(0.0)
    assert p.result(key(1), False, "check failed") is None
    change = p.result(key(1), False, "check failed")
    assert (change.old, change.new, change.reason) == ("up", "down", "check failed")
    assert [m.index for m in p.due(0.1)[0].members] == [0, 2]
    assert p.result(key(1), True, "check passed") is None
    assert p.result(key(1), True, "check passed").new == "up"
    assert [m.index for m in p.due(0.2)[0].members] == [0, 1, 2]


def test_a_link_going_down_takes_out_the_backends_on_that_port_only():
    p = located(pools())
    [change] = p.link(2, up=False)
    assert change.key == key(1) and (change.old, change.new) == ("link up", "link down")
    assert p.link(2, up=False) == []  # no change, no event
    assert [m.index for m in p.members(0)] == [0, 2]
    assert p.link(2, up=True)[0].new == "link up"


def test_drain_keeps_the_backend_healthy_but_out_of_the_pool():
    p = located(pools())
    change = p.drain(key(0), True)
    assert (change.old, change.new) == ("in service", "drained")
    assert [m.index for m in p.members(0)] == [1, 2] and p.backends[key(0)].health.up


def test_pools_kept_in_the_switch_are_taken_over_as_they_are():
    p = pools()
    p.keep(0, {0, 2})
    assert not p.backends[key(1)].health.up and p.backends[key(0)].health.up
    assert p.kept_pools == 1
    p.keep(5, {0})  # a group that is not one of ours
    assert p.kept_pools == 1
    located(p)
    assert [m.index for m in p.due(0.0)[0].members] == [0, 2]


def test_round_robin_services_get_their_entry_once_and_no_group():
    p = located(pools("round_robin"))
    [push] = p.due(0.0)
    assert push.members is None and push.first
    assert p.due(1.0) == []


def test_identifiers_round_trip_and_stay_in_their_bits():
    k = ids.BackendKey(3, 200)
    assert ids.BackendKey.of_cookie(k.conn_cookie()) == k == ids.BackendKey.of_cookie(k.reply_cookie())
    assert k.conn_cookie() & ids.PINNED_MASK == k.reply_cookie() & ids.PINNED_MASK == ids.CONN_COOKIE
    assert ids.service_of_group(ids.group_id(3)) == 3
    assert ids.backend_of_bucket(ids.bucket_id(200, ids.MAX_WEIGHT - 1)) == 200
    assert ids.bucket_id(1, 0) > ids.bucket_id(0, ids.MAX_WEIGHT - 1)  # replicas never collide
    with pytest.raises(ValueError, match="at most"):
        ids.BackendKey(0, ids.MAX_BACKENDS)


def test_only_configured_backends_are_located():
    p = pools()
    assert not p.locate(IPv4Address("10.0.0.66"), "02:00:00:00:00:66", 9)
    assert p.located == {}
