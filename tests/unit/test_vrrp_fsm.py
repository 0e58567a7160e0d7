"""Every transition of the VRRPv3 state machine, on a fake clock with fake adverts."""

from ipaddress import ip_address

import pytest

from ha.vrrp.fsm import (
    Announce,
    ReleaseAddresses,
    RouterConfig,
    SendAdvert,
    State,
    TakeAddresses,
    Transition,
    VirtualRouter,
)
from ha.vrrp.packet import Advert

ME, PEER_LOW, PEER_HIGH = ip_address("10.0.0.2"), ip_address("10.0.0.1"), ip_address("10.0.0.3")
VIP = (ip_address("10.0.0.100"),)


def router(priority: int = 100, advert_int: float = 1.0, **kw) -> VirtualRouter:
    return VirtualRouter(RouterConfig(vrid=51, priority=priority, advert_int=advert_int, primary_address=ME, **kw))


def advert(priority: int, interval_cs: int = 100) -> Advert:
    return Advert(51, priority, interval_cs, VIP)


def states(actions) -> list[State]:
    return [a.new for a in actions if isinstance(a, Transition)]


def test_intervals_follow_the_rfc():
    r = router(priority=100, advert_int=1.0)
    assert r.skew_time == pytest.approx(156 / 256)
    assert r.master_down_interval == pytest.approx(3 + 156 / 256)


def test_a_backup_becomes_master_after_master_down_interval():
    r = router()
    actions = r.startup(0.0)
    assert states(actions) == [State.BACKUP]
    assert actions[0] == ReleaseAddresses(), "a VIP left by a killed agent is removed at start"
    assert r.next_deadline() == pytest.approx(3.609375)
    assert r.on_timer(3.6) == []
    actions = r.on_timer(3.61)
    assert actions[:2] == [SendAdvert(100), TakeAddresses()] and states(actions) == [State.MASTER]
    assert r.next_deadline() == pytest.approx(4.61)


def test_a_master_advertises_every_interval():
    r = router(advert_int=0.1)
    r.startup(0.0)
    r.on_timer(1.0)
    assert r.state is State.MASTER
    assert r.on_timer(1.05) == []
    assert r.on_timer(1.1) == [SendAdvert(100)]
    assert r.next_deadline() == pytest.approx(1.2)


def test_adverts_from_a_better_master_keep_the_backup_waiting_and_teach_it_the_interval():
    r = router(advert_int=1.0)
    r.startup(0.0)
    r.on_advert(2.0, advert(200, interval_cs=50), PEER_LOW)
    assert r.master_adver_interval == 0.5
    assert r.master_down_timer == pytest.approx(2.0 + 1.5 + 156 * 0.5 / 256)
    assert r.on_timer(3.0) == [] and r.state is State.BACKUP


def test_priority_zero_makes_the_backup_take_over_after_skew_time():
    r = router(priority=100)
    r.startup(0.0)
    r.on_advert(1.0, advert(0), PEER_LOW)
    assert r.master_down_timer == pytest.approx(1.0 + 156 / 256)
    assert states(r.on_timer(1.61)) == [State.MASTER]


def test_a_master_answers_priority_zero_with_an_advert_at_once():
    r = router()
    r.startup(0.0)
    r.on_timer(4.0)
    assert r.on_advert(4.2, advert(0), PEER_LOW) == [SendAdvert(100), Announce()]
    assert r.adver_timer == pytest.approx(5.2)


def test_preempt_lets_a_higher_priority_backup_take_over_a_lower_master():
    r = router(priority=200)
    r.startup(0.0)
    r.on_advert(1.0, advert(100), PEER_LOW)  # ignored: we are better
    assert r.master_down_timer == pytest.approx(3 + 56 / 256)
    assert states(r.on_timer(3.3)) == [State.MASTER]


def test_nopreempt_keeps_a_higher_priority_backup_waiting():
    r = router(priority=200, preempt=False)
    r.startup(0.0)
    for t in range(1, 10):
        r.on_advert(float(t), advert(100), PEER_LOW)
        assert r.on_timer(float(t) + 0.5) == []
    assert r.state is State.BACKUP


def test_preempt_delay_holds_preemption_until_it_has_passed():
    """Until 5 s after start-up a lower master's adverts hold the timer; from 5 s on (inclusive) they
    are ignored, so the last held deadline is 4 + 3 + 56/256 = 7.21875 s, the takeover then."""
    r = router(priority=200, preempt_delay=5.0)
    r.startup(0.0)
    for t in range(1, 8):
        r.on_advert(float(t), advert(100), PEER_LOW)
        assert r.on_timer(t + 0.1) == [], f"preempted at {t + 0.1} s, inside the delay"
    assert r.on_timer(7.2) == [] and r.state is State.BACKUP
    assert r.on_timer(7.21875) == [SendAdvert(200),
                                   Transition(State.BACKUP, State.MASTER, "preempting lower priority master 10.0.0.1")]


def test_a_master_yields_to_higher_priority_and_releases_the_addresses():
    r = router(priority=100)
    r.startup(0.0)
    r.on_timer(4.0)
    actions = r.on_advert(5.0, advert(150, interval_cs=20), PEER_LOW)
    # let go first, then say so (priority 0): a preempting master takes the addresses on hearing it,
    # and after a split brain the survivor re-announces them
    assert actions == [ReleaseAddresses(), SendAdvert(0),
                       Transition(State.MASTER, State.BACKUP, "higher priority master 10.0.0.1 (150)")]
    assert r.master_adver_interval == 0.2 and r.adver_timer is None
    # a backup now, on the winner's interval: 3 * 0.2 + 156 * 0.2 / 256 = 0.721875 s without its adverts
    assert r.master_down_timer == pytest.approx(5.721875)
    assert r.on_timer(5.72) == []
    assert r.on_timer(5.7219) == [SendAdvert(100), TakeAddresses(),
                                  Transition(State.BACKUP, State.MASTER, "master down timer expired")]


@pytest.mark.parametrize(("src", "yields"), [(PEER_HIGH, True), (PEER_LOW, False), (ME, False)])
def test_equal_priority_the_higher_primary_address_wins(src, yields):
    """RFC 9568 6.4.3: at equal priority a master yields only to a strictly greater primary address."""
    r = router(priority=100)
    r.startup(0.0)
    r.on_timer(4.0)
    actions = r.on_advert(5.0, advert(100), src)
    assert (r.state is State.BACKUP) == yields
    assert (ReleaseAddresses() in actions) == yields
    assert (Announce() in actions) == (not yields)


def test_a_master_hearing_a_lower_master_stays_and_reannounces():
    r = router(priority=100)
    r.startup(0.0)
    r.on_timer(4.0)
    assert r.on_advert(5.0, advert(50), PEER_HIGH) == [SendAdvert(100), Announce()]
    assert r.state is State.MASTER


def test_lower_masters_heard_again_within_the_holdoff_are_not_reannounced_to():
    r = router(priority=100, lower_prio_holdoff=2.0)
    r.startup(0.0)
    r.on_timer(4.0)
    assert Announce() in r.on_advert(5.0, advert(50), PEER_HIGH)
    assert r.on_advert(6.0, advert(50), PEER_HIGH) == [SendAdvert(100)]
    assert Announce() in r.on_advert(7.0, advert(50), PEER_HIGH)


@pytest.mark.parametrize("priority", [0, 50])
def test_a_flood_of_lower_or_yielding_adverts_gets_one_answer_per_interval(priority):
    """1000 adverts in one second: one immediate advert (and announce) answers them, not 1000."""
    r = router(priority=100, advert_int=1.0, lower_prio_holdoff=0.0)
    r.startup(0.0)
    r.on_timer(4.0)
    answers = [a for i in range(1000) for a in r.on_advert(5.0 + i / 1000, advert(priority), PEER_HIGH)]
    assert answers == [SendAdvert(100), Announce()]
    assert r.on_advert(6.0, advert(priority), PEER_HIGH) == [SendAdvert(100), Announce()]
    assert r.state is State.MASTER


def test_a_master_that_just_answered_a_lower_one_still_reannounces_when_it_yields():
    """After a healed partition: the survivor answers the loser's advert (its announce held off by
    an earlier one), then the loser lets go: clients that followed the loser must come back."""
    r = router(priority=200, advert_int=0.1)
    r.startup(0.0)
    r.on_timer(0.4)
    r.on_advert(1.0, advert(100, interval_cs=10), PEER_LOW)  # announces; holdoff starts
    assert r.on_advert(3.0, advert(100, interval_cs=10), PEER_LOW) == [SendAdvert(200)]  # held off
    assert r.on_advert(3.02, advert(0, interval_cs=10), PEER_LOW) == [Announce()]


def test_a_yielded_master_keeps_advertising_for_one_master_down_interval():
    """The survivor may not hear the first farewell (the partition heals one way first)."""
    r = router(priority=100, advert_int=0.1)
    r.startup(0.0)
    r.on_timer(0.4)
    r.on_advert(1.0, advert(150, interval_cs=10), PEER_LOW)
    until = 1.0 + r.master_down_interval
    sent = []
    for step in range(1, 200):  # 2 s in 10 ms steps; the survivor advertises every 100 ms
        t = 1.0 + step / 100
        sent += [t for a in r.on_timer(t) if a == SendAdvert(100)]
        if step % 10 == 5:
            r.on_advert(t, advert(150, interval_cs=10), PEER_LOW)
    assert r.state is State.BACKUP
    assert sent == pytest.approx([1.1, 1.2, 1.3], abs=0.011)
    assert until == pytest.approx(1.36, abs=0.01)


@pytest.mark.parametrize("event", ["fault", "priority", "shutdown"])
def test_the_farewell_stops_when_the_router_changes(event):
    r = router(priority=100, advert_int=0.1)
    r.startup(0.0)
    r.on_timer(0.4)
    r.on_advert(1.0, advert(150, interval_cs=10), PEER_LOW)
    {"fault": lambda: r.fault(1.05, "eth1 down"), "priority": lambda: r.set_priority(1.05, 90),
     "shutdown": lambda: r.shutdown(1.05)}[event]()
    assert r.farewell_timer is None
    assert SendAdvert(100) not in r.on_timer(1.1)


def test_the_address_owner_is_master_at_once_and_ignores_adverts():
    r = router(priority=255)
    actions = r.startup(0.0)
    assert states(actions) == [State.MASTER] and SendAdvert(255) in actions
    assert r.on_advert(1.0, advert(254), PEER_HIGH) == [Announce()]
    assert r.state is State.MASTER


def test_shutdown_of_a_master_sends_priority_zero_and_releases():
    r = router()
    r.startup(0.0)
    r.on_timer(4.0)
    actions = r.shutdown(5.0)
    assert actions[:2] == [SendAdvert(0), ReleaseAddresses()] and states(actions) == [State.INIT]
    assert r.next_deadline() is None


def test_shutdown_of_a_backup_sends_nothing():
    r = router()
    r.startup(0.0)
    assert [a for a in r.shutdown(1.0) if not isinstance(a, Transition)] == []


def test_fault_and_recovery():
    r = router()
    r.startup(0.0)
    r.on_timer(4.0)
    actions = r.fault(5.0, "track_interface eth1 down")
    assert SendAdvert(0) in actions and ReleaseAddresses() in actions and states(actions) == [State.FAULT]
    assert r.next_deadline() is None and r.on_timer(100.0) == []
    assert r.on_advert(6.0, advert(100), PEER_LOW) == []
    assert states(r.recover(7.0, "eth1 up")) == [State.BACKUP]
    assert r.master_down_timer == pytest.approx(7.0 + r.master_down_interval)


def test_a_lowered_priority_is_advertised_at_once_by_a_master():
    r = router(priority=100)
    r.startup(0.0)
    r.on_timer(4.0)
    assert r.set_priority(5.0, 60) == [SendAdvert(60)]
    assert r.skew_time == pytest.approx(196 / 256)


def preempting(advert_int: float = 0.1) -> VirtualRouter:
    """A backup of priority 200 that has heard a live master of priority 100 until its timer ran out."""
    r = router(priority=200, advert_int=advert_int)
    r.startup(0.0)
    for i in range(3):
        r.on_advert(0.1 * i, advert(100, interval_cs=10), PEER_LOW)
    return r


def test_preempting_a_live_master_takes_the_addresses_only_once_it_let_go():
    r = preempting()
    t = r.next_deadline()
    actions = r.on_timer(t)
    assert states(actions) == [State.MASTER] and SendAdvert(200) in actions and TakeAddresses() not in actions
    assert r.on_advert(t + 0.001, advert(100, interval_cs=10), PEER_LOW) == [SendAdvert(200)]  # still its old advert
    assert r.on_advert(t + 0.002, advert(0, interval_cs=10), PEER_LOW) == [SendAdvert(200), TakeAddresses()]
    assert r.take_at is None
    assert r.on_timer(t + 0.002 + 0.09) == []  # it just advertised: the next one is an interval later
    assert r.on_timer(t + 0.002 + 0.1001) == [SendAdvert(200)]


def test_a_preempted_master_that_says_nothing_loses_the_addresses_after_the_wait():
    r = preempting(advert_int=1.0)
    t = r.next_deadline()
    r.on_timer(t)
    assert r.next_deadline() == pytest.approx(t + 0.05)  # HANDOVER_WAIT_S, not the whole interval
    assert r.on_timer(t + 0.05) == [TakeAddresses()]
    assert r.next_deadline() == pytest.approx(t + 1.0)  # then it advertises as any master does
    assert r.on_timer(t + 1.001) == [SendAdvert(200)]


def test_a_backup_whose_master_died_takes_the_addresses_at_once():
    r = router(priority=100)
    r.startup(0.0)
    r.on_advert(0.5, advert(150), PEER_LOW)
    assert TakeAddresses() in r.on_timer(r.next_deadline())


def test_a_backup_follows_the_master_that_holds_its_timer_and_not_a_lower_one():
    """`followed` is whose adverts get a queue of their own (ha.vrrp.sockfilter)."""
    r = router(priority=100)
    r.startup(0.0)
    master, lower = ip_address("10.0.0.1"), ip_address("10.0.0.3")
    r.on_advert(0.5, advert(200), master)
    assert r.followed == master
    r.on_advert(0.6, advert(50), lower)  # a lower master does not hold the timer: not followed
    assert r.followed == master
    r.on_advert(0.7, advert(0), master)  # the master leaves
    assert r.followed is None


def test_an_equal_priority_master_holds_a_backups_timer():
    """RFC 9568 6.4.2: a backup preempts only a lower priority; an equal one is followed like a higher one."""
    r = router(priority=100)
    r.startup(0.0)
    for t in range(1, 11):
        r.on_advert(float(t), advert(100), PEER_HIGH)
        assert r.on_timer(t + 0.9) == []
    assert r.state is State.BACKUP and r.followed == PEER_HIGH


@pytest.mark.parametrize(("timer_at", "expected"), [
    # heard 3.21875 s (one Master_Down_Interval) before the timer fires: still alive, break before make
    (3.21875, [SendAdvert(200), Transition(State.BACKUP, State.MASTER, "preempting lower priority master 10.0.0.1")]),
    # heard longer ago than that: it is gone, take the addresses at once
    (3.5, [SendAdvert(200), TakeAddresses(), Transition(State.BACKUP, State.MASTER, "master down timer expired")]),
])
def test_a_lower_master_counts_as_live_for_one_master_down_interval(timer_at, expected):
    """Preempting a live master waits for it to let go; a master silent for longer is not waited for."""
    r = router(priority=200)
    r.startup(0.0)
    r.on_advert(0.0, advert(100), PEER_LOW)
    assert r.on_timer(timer_at) == expected


def test_a_yielded_master_says_farewell_every_advert_int_for_one_master_down_interval_both_ends_included():
    """Yielding at 10 s to a master advertising every 1 s: Master_Down_Interval = 3 + 128/256 = 3.5 s, so
    its own adverts (advert_int 0.5 s) go out at 10.5, 11, ... 13.5 s and then stop."""
    r = router(priority=128, advert_int=0.5)
    r.startup(0.0)
    r.on_timer(1.75)
    assert r.state is State.MASTER
    r.on_advert(10.0, advert(150), PEER_HIGH)
    sent = []
    for step in range(1, 21):
        t = 10.0 + step / 4
        if t == int(t):
            r.on_advert(t, advert(150), PEER_HIGH)
        sent += [t for a in r.on_timer(t) if a == SendAdvert(128)]
    assert sent == [10.5, 11.0, 11.5, 12.0, 12.5, 13.0, 13.5]
    assert r.state is State.BACKUP


@pytest.mark.parametrize(("asked", "effective"), [(-5, 1), (0, 1), (1, 1), (2, 2), (254, 254), (255, 254), (300, 254)])
def test_tracking_keeps_a_backups_priority_within_1_to_254(asked, effective):
    """0 would announce a leaving master and 255 an address owner; tracking may claim neither."""
    r = router(priority=100)
    r.startup(0.0)
    r.set_priority(1.0, asked)
    assert r.priority == effective


def test_tracking_does_not_change_the_owners_priority():
    """The address owner is always 255 (RFC 9568 6.1); it keeps advertising that."""
    r = router(priority=255)
    r.startup(0.0)
    assert r.set_priority(1.0, 50) == [SendAdvert(255)]
    assert r.priority == 255


def test_a_master_whose_priority_changed_advertises_again_one_interval_later():
    """The immediate advert restarts the advert timer, neither dropping it nor firing it early."""
    r = router(priority=100)
    r.startup(0.0)
    r.on_timer(4.0)
    r.on_timer(5.0)
    assert r.set_priority(5.25, 60) == [SendAdvert(60)]
    assert r.on_timer(6.2) == []
    assert r.on_timer(6.25) == [SendAdvert(60)]


def _startup(r: VirtualRouter) -> list:
    return r.startup(0.0)


def _master_down(r: VirtualRouter) -> list:
    r.startup(0.0)
    return r.on_timer(4.0)


def _fault(r: VirtualRouter) -> list:
    _master_down(r)
    return r.fault(5.0, "track_interface eth1 down")


def _recover(r: VirtualRouter) -> list:
    _fault(r)
    return r.recover(6.0, "eth1 up")


def _shutdown(r: VirtualRouter) -> list:
    _master_down(r)
    return r.shutdown(5.0)


def _backup_shutdown(r: VirtualRouter) -> list:
    r.startup(0.0)
    return r.shutdown(1.0)


@pytest.mark.parametrize(("priority", "scenario", "expected"), [
    (100, _startup, [ReleaseAddresses(), Transition(State.INIT, State.BACKUP, "startup")]),
    (255, _startup, [SendAdvert(255), TakeAddresses(),
                     Transition(State.INIT, State.MASTER, "address owner (priority 255)")]),
    (100, _master_down, [SendAdvert(100), TakeAddresses(),
                         Transition(State.BACKUP, State.MASTER, "master down timer expired")]),
    (100, _fault, [SendAdvert(0), ReleaseAddresses(),
                   Transition(State.MASTER, State.FAULT, "track_interface eth1 down")]),
    (100, _recover, [Transition(State.FAULT, State.BACKUP, "eth1 up")]),
    (255, _recover, [SendAdvert(255), TakeAddresses(), Transition(State.FAULT, State.MASTER, "eth1 up")]),
    (100, _shutdown, [SendAdvert(0), ReleaseAddresses(), Transition(State.MASTER, State.INIT, "shutdown")]),
    (100, _backup_shutdown, [Transition(State.BACKUP, State.INIT, "shutdown")]),
], ids=["startup", "owner-startup", "master-down", "fault", "recover", "owner-recover", "shutdown",
        "backup-shutdown"])
def test_each_transition_carries_its_actions_in_order_and_the_reason_the_event_log_shows(priority, scenario, expected):
    """The agent writes old state, new state and reason to the event log and runs the actions in order."""
    assert scenario(router(priority=priority)) == expected
