"""A switch's pools as pure state, on a fake clock: membership, resync, and when to tell the switch."""

from collections import Counter
from ipaddress import IPv4Address

import pytest

from controller import ids
from controller.lb_config import Backend, HealthCheck, LbConfig, Service
from controller.pool import ARP_RETRY_S, Change, Member, Pools, Push

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
    assert ids.BackendKey.of_mark(k.mark) == k and ids.BackendKey(0, 0).mark != 0  # 0: not committed yet
    assert ids.BackendKey.of_mark(0) is None and ids.BackendKey.of_mark(0x1234_0102) is None
    assert ids.service_of_group(ids.group_id(3)) == 3
    assert ids.backend_of_bucket(ids.bucket_id(200, ids.MAX_WEIGHT - 1)) == 200
    assert ids.bucket_id(1, 0) > ids.bucket_id(0, ids.MAX_WEIGHT - 1)  # replicas never collide
    with pytest.raises(ValueError, match="at most"):
        ids.BackendKey(0, ids.MAX_BACKENDS)


def test_only_configured_backends_are_located():
    p = pools()
    assert not p.locate(IPv4Address("10.0.0.66"), "02:00:00:00:00:66", 9)
    assert p.located == {}


def two_services(first: str = "round_robin") -> Pools:
    """Service 0 (`first`) on B1 and B2, service 1 (consistent) on B2 and B3."""
    check = HealthCheck(fall=2, rise=2)
    web = Service("web", IPv4Address("10.0.0.100"), 80, "tcp", first, (Backend(B1, 80), Backend(B2, 80)), check)
    api = Service("api", IPv4Address("10.0.0.100"), 81, "tcp", "consistent", (Backend(B2, 81), Backend(B3, 81)), check)
    return Pools(LbConfig((web, api)))


def test_every_backend_state_knows_its_own_key():
    """The status API and the event log name a backend by the key its state carries."""
    p = two_services()
    assert sorted(p.backends) == [ids.BackendKey(s, b) for s in (0, 1) for b in (0, 1)]
    assert all(state.key == k for k, state in p.backends.items())


@pytest.mark.parametrize(("act", "expected"), [
    (lambda p: p.drain(key(0), True), Change(key(0), "in service", "drained", "by request")),
    (lambda p: p.drain(key(0), False), Change(key(0), "drained", "in service", "by request")),
    (lambda p: p.link(2, up=False), [Change(key(1), "link up", "link down", "port 2")]),
    (lambda p: p.link(2, up=False) and p.link(2, up=True), [Change(key(1), "link down", "link up", "port 2")]),
    (lambda p: p.result(key(1), False, "x") or p.result(key(1), False, "no SYN-ACK"),
     Change(key(1), "up", "down", "no SYN-ACK")),
    (lambda p: [p.result(key(2), ok, "x") for ok in (False, False, True)] and p.result(key(2), True, "SYN-ACK"),
     Change(key(2), "down", "up", "SYN-ACK")),
], ids=["drain", "undrain", "link down", "link up", "health down", "health up"])
def test_each_change_names_the_backend_what_it_was_what_it_is_and_why(act, expected):
    """These fields are the event log's line (subject, old -> new, reason): each must be right."""
    assert act(located(pools())) == expected


def test_the_reason_a_backend_is_shown_follows_its_last_health_change():
    """The status API shows state.reason: the verdict that flipped it, not a stale one."""
    p = located(pools())
    p.result(key(0), False, "timeout")
    p.result(key(0), False, "refused")
    assert p.backends[key(0)].reason == "refused"
    p.result(key(0), True, "SYN-ACK")
    assert p.backends[key(0)].reason == "refused"  # one good check does not flip it back yet


def test_locating_says_whether_it_is_news():
    """Only a first sighting or a move is news (it makes a push); the same ARP reply again is not."""
    p = pools()
    assert p.locate(B1, "02:00:00:00:00:01", 1) is True
    assert p.locate(B1, "02:00:00:00:00:01", 1) is False
    assert p.locate(B1, "02:00:00:00:00:01", 4) is True and p.located[B1] == ("02:00:00:00:00:01", 4)
    assert p.locate(B1, "02:00:00:00:00:11", 4) is True and p.located[B1] == ("02:00:00:00:00:11", 4)


def test_a_link_event_on_a_port_skips_the_backends_not_yet_located():
    """A port can go down before every backend answered ARP: that must not crash or touch them."""
    p = pools()
    p.locate(B1, "02:00:00:00:00:01", 1)
    assert p.link(2, up=False) == []
    assert p.link(1, up=False) == [Change(key(0), "link up", "link down", "port 1")]
    assert [s.link_up for s in p.backends.values()] == [False, True, True]


def test_taking_over_a_kept_pool_touches_only_that_service_and_says_why():
    """After a restart the switch's pools are adopted one group at a time, each with its reason shown."""
    p = two_services()
    p.keep(1, {1})
    p.keep(0, {0, 1})
    assert p.kept_pools == 2
    states = {k: (s.health.up, s.reason) for k, s in p.backends.items()}
    assert states == {
        ids.BackendKey(0, 0): (True, "up (in the pool the switch kept)"),
        ids.BackendKey(0, 1): (True, "up (in the pool the switch kept)"),
        ids.BackendKey(1, 0): (False, "not in the pool the switch kept"),
        ids.BackendKey(1, 1): (True, "up (in the pool the switch kept)"),
    }


def test_a_group_just_past_the_last_service_is_not_taken_over():
    """A switch may hold a group for a service that is no longer configured: it is not ours to count."""
    p = two_services()
    p.keep(2, {0})
    p.keep(-1, {0})
    assert p.kept_pools == 0 and all(s.reason == "not yet located (no ARP reply)" for s in p.backends.values())


def test_the_arp_wait_counts_from_the_sync_not_from_time_zero():
    """The ARP retry is a delay after (re)connecting, whatever the clock reads then."""
    p = pools()
    p.sync(100.0)
    p.locate(B1, "02:00:00:00:00:01", 1)
    assert p.due(100.0 + ARP_RETRY_S / 2) == []
    assert [m.index for m in p.due(100.0 + ARP_RETRY_S)[0].members] == [0]  # the wait is over at its bound


def test_pushes_name_their_service_and_carry_where_each_member_is():
    """The switch is told, per service, which group to fill and each member's MAC and port."""
    p = located(two_services())
    rr, consistent = p.due(0.0)
    assert rr == Push(0, None, [], True)
    assert consistent == Push(1, [Member(0, Backend(B2, 81), "02:00:00:00:00:02", 2),
                                  Member(1, Backend(B3, 81), "02:00:00:00:00:03", 3)],
                              [ids.bucket_id(0, 0), ids.bucket_id(1, 0)], True)
    p.link(3, up=False)
    assert p.due(1.0) == [Push(1, [consistent.members[0]], [ids.bucket_id(0, 0)], False)]


def test_heavy_backends_get_distinct_buckets_that_name_them():
    """Weights up to the configured maximum: every replica a bucket of its own, read back to its backend."""
    p = located(pools(weights=(ids.MAX_WEIGHT, 1, ids.MAX_WEIGHT - 1)))
    [push] = p.due(0.0)
    assert len(push.buckets) == len(set(push.buckets)) == 2 * ids.MAX_WEIGHT
    assert Counter(ids.backend_of_bucket(b) for b in push.buckets) == {0: ids.MAX_WEIGHT, 1: 1, 2: ids.MAX_WEIGHT - 1}


def test_checks_keep_their_cadence_when_a_tick_comes_late():
    """A check started 8 ms after its turn is not followed 100 ms after that: the late ticks
    (10 ms apart) had added up, and a dead process took up to 320 ms to find at fall 3."""
    state = pools().backends[key(0)]
    state.start_check(0.0, 0.1)
    state.start_check(0.108, 0.1)
    assert state.next_check == pytest.approx(0.2)
    state.start_check(0.5, 0.1)  # a whole interval late (a check that hung): start over from now
    assert state.next_check == pytest.approx(0.6)


def test_a_reset_makes_a_healthy_backends_check_due_now_once():
    state = pools().backends[key(0)]
    state.start_check(0.0, 0.1)
    assert state.reset_seen(0.03) and state.next_check == 0.03
    assert not state.reset_seen(0.03)  # already due
    state.start_check(0.03, 0.1)
    assert state.next_check == pytest.approx(0.13)  # the cadence starts again from the check the reset moved
    state.check = object()
    assert not state.reset_seen(0.05)  # one in flight: its answer will do


def test_a_reset_changes_nothing_once_a_bad_check_is_counted_or_the_backend_is_down():
    """From the first bad check on, checks keep their interval: `fall` bad checks still span
    fall - 1 intervals, so a reset cannot take a backend out any sooner than the checks would."""
    p = located(pools())
    state = p.backends[key(1)]
    state.start_check(0.0, 0.1)
    p.result(key(1), False, "check failed")
    assert not state.reset_seen(0.05) and state.next_check == pytest.approx(0.1)
    p.result(key(1), False, "check failed")
    assert not state.health.up
    assert not state.reset_seen(0.15)


def test_a_backend_is_checked_once_located_or_once_the_arp_wait_is_over():
    p = pools()
    p.sync(10.0)
    assert not p.may_check(key(0), 10.0)
    p.locate(B1, "02:00:00:00:00:01", 1)
    assert p.may_check(key(0), 10.0) and not p.may_check(key(1), 10.0 + ARP_RETRY_S / 2)
    assert p.may_check(key(1), 10.0 + ARP_RETRY_S)
