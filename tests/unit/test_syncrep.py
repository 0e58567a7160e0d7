"""The synchronous-replication lease: the primary never stops waiting for a standby that may
still be promoted, and a standby that may have missed acknowledged writes is never promoted."""

import random

import pytest

from ha.heartbeat.fsm import Node, Role, View
from ha.heartbeat.packet import State
from ha.heartbeat.syncrep import ASYNC, FLAG_SYNC_LEASE, GONE, SYNC, SyncLease, least_fallback

LEASE, MARGIN = 3.0, 1.0


def primary(strict: bool = False) -> SyncLease:
    lease = SyncLease(LEASE, MARGIN, strict)
    lease.promoted()
    return lease


def vouching_primary(now: float = 0.0) -> SyncLease:
    p = primary()
    assert p.checked(ASYNC, now) is True
    p.changed(on=True, ok=True)
    p.checked(SYNC, now)
    assert p.flag() == FLAG_SYNC_LEASE
    return p


def test_a_new_primary_vouches_only_after_a_switch_that_waited_for_the_standby_to_catch_up():
    p = primary()
    assert not p.waits and p.flag() == 0
    assert p.checked(ASYNC, now=0.0) is True         # the standby replicates: switch on
    assert p.checked(ASYNC, now=0.1) is None         # one switch at a time
    p.changed(on=True, ok=True)
    assert p.waits and p.flag() == 0                 # not until a check sees the server count it as synchronous
    assert p.checked(SYNC, now=0.3) is None
    assert p.flag() == FLAG_SYNC_LEASE


def test_a_failed_switch_on_vouches_for_nothing_but_the_server_may_wait():
    p = primary()
    p.checked(ASYNC, now=0.0)
    p.changed(on=True, ok=False)                     # the names were set; the standby did not catch up
    assert p.waits and not p.vouched
    assert p.checked(SYNC, now=0.2) is True          # try again, with the catch-up
    assert p.flag() == 0


def test_the_server_has_the_last_word_a_standby_it_counts_as_asynchronous_is_not_vouched_for():
    p = vouching_primary()
    assert p.checked(ASYNC, now=1.0) is True and p.flag() == 0


def test_no_flag_while_a_switch_off_is_under_way_even_if_the_standby_is_seen_again():
    """The review's race: decide off, then a check sees the standby; a flagged beat then would
    grant a lease that the switch off, finishing right after, breaks."""
    p = vouching_primary()
    p.sent(p.flag(), now=1.0)
    assert p.checked(GONE, now=1.0 + LEASE + MARGIN) is False
    p.checked(SYNC, now=1.0 + LEASE + MARGIN + 0.2)
    assert p.flag() == 0
    p.changed(on=False, ok=True)
    assert p.flag() == 0 and not p.waits


def test_a_strict_primary_waits_from_its_promotion_and_never_falls_back():
    p = primary(strict=True)
    assert p.waits
    assert p.checked(GONE, now=100.0) is None and p.waits
    assert SyncLease(LEASE, MARGIN, strict=True).refusal(now=5.0) is None   # every acknowledged write is there


def test_the_primary_stops_vouching_at_once_and_falls_back_only_after_the_lease_and_the_margin():
    p = vouching_primary()
    p.sent(p.flag(), now=10.0)                        # the last flagged beat
    assert p.checked(GONE, now=10.1) is None
    assert p.flag() == 0
    assert p.checked(GONE, now=10.0 + LEASE + MARGIN - 0.01) is None
    assert p.checked(GONE, now=10.0 + LEASE + MARGIN) is False
    p.changed(on=False, ok=True)
    assert not p.waits
    assert p.checked(ASYNC, now=20.0) is True         # the standby is back: wait for it again


def test_a_failed_switch_off_is_tried_again_at_the_next_check():
    p = vouching_primary()
    assert p.checked(GONE, now=100.0) is False
    p.changed(on=False, ok=False)
    assert p.waits and not p.vouched
    assert p.checked(GONE, now=100.5) is False


def test_a_standby_promotes_only_while_it_holds_the_lease_counted_from_its_own_nonce():
    s = SyncLease(LEASE, MARGIN, strict=False)
    assert s.refusal(now=0.0) is None                 # never heard an active primary: the first election
    s.heard(active=True, flags=FLAG_SYNC_LEASE, echoed_at=1.0)
    assert s.refusal(now=1.0 + LEASE - 0.01) is None
    assert s.refusal(now=1.0 + LEASE + 0.5) == "not a synchronous standby: its lease ran out 0.5 s ago"
    s.heard(active=False, flags=FLAG_SYNC_LEASE, echoed_at=9.0)   # only an active peer's word counts
    assert s.refusal(now=1.0 + LEASE + 0.5) is not None
    s.heard(active=True, flags=FLAG_SYNC_LEASE, echoed_at=None)   # echoes nothing we remember: no lease
    assert s.refusal(now=1.0 + LEASE + 0.5) is not None
    s.heard(active=True, flags=FLAG_SYNC_LEASE, echoed_at=10.0)
    s.heard(active=True, flags=0, echoed_at=10.1)     # unflagged: the lease runs on to its end
    assert s.refusal(now=10.0 + LEASE - 0.01) is None
    assert "lease ran out" in s.refusal(now=10.0 + LEASE + 0.01)


def test_a_primary_that_stopped_vouching_because_its_server_died_is_still_replaced():
    """The benchmark's case: the primary's PostgreSQL is killed; its replication check fails
    first (no flag in its last beats), its monitor a moment later (FAULT). The standby still
    holds the lease the primary granted, and nothing was acknowledged without it: promote."""
    p, s = vouching_primary(), SyncLease(LEASE, MARGIN, strict=False)
    p.sent(p.flag(), now=5.0)
    s.heard(active=True, flags=FLAG_SYNC_LEASE, echoed_at=4.95)
    p.checked(GONE, now=5.1)
    s.heard(active=True, flags=p.flag(), echoed_at=5.05)   # unflagged
    assert s.refusal(now=5.3) is None
    never = SyncLease(LEASE, MARGIN, strict=False)
    never.heard(active=True, flags=0, echoed_at=1.0)
    assert never.refusal(now=1.1) == "not a synchronous standby: the primary never vouched for it"


@pytest.mark.parametrize("seed", range(30))
def test_no_standby_holds_a_lease_once_the_primary_has_fallen_back(seed):
    """Heartbeats both ways every 0.1 s, each delayed by anything up to 3 s, so beats arrive late
    and out of order; the standby stops replying at a random moment. A flagged beat echoes the
    latest nonce the primary had received, and the standby's lease runs from that nonce's send
    time. Whenever the primary falls back, no beat, however late, leaves a lease running."""
    rng = random.Random(seed)
    p, s = vouching_primary(), SyncLease(LEASE, MARGIN, strict=False)
    stops = rng.uniform(1, 5)
    nonces: list[tuple[float, float]] = []     # (sent by the standby, arrives at the primary)
    beats: list[tuple[float, int, float]] = []  # (arrives at the standby, flags, echoed nonce's send time)
    fell_back = None
    t = 0.0
    while t < 20 and fell_back is None:
        nonces.append((t, t + rng.uniform(0, 3.0)))
        arrived = [sent for sent, at in nonces if at <= t]
        flags = p.flag()
        p.sent(flags, t)
        beats.append((t + rng.uniform(0, 3.0), flags, max(arrived) if arrived else None))
        if p.checked(SYNC if t < stops else GONE, t) is False:
            fell_back = t
            p.changed(on=False, ok=True)
        t += 0.1
    assert fell_back is not None and fell_back >= stops + LEASE
    for at, flags, echoed in sorted(beats, key=lambda b: b[0]):
        s.heard(active=True, flags=flags, echoed_at=echoed)
        assert s.held_until <= fell_back + 1e-9, (at, flags, echoed)


def test_a_standby_without_the_lease_neither_fences_nor_takes_over():
    node = Node("db2", 100, "db1", 200, started=0.0, grace=0.0)
    node.peer_heard = True
    refused = "not a synchronous standby: its lease ran out 2.0 s ago"
    silent = View(10.0, peer_alive=False, peer_state=None, quorum=True, healthy=True, refusal=refused)
    assert node.step(silent) == [] and node.role is Role.STANDBY and "lease ran out" in node.reason
    in_fault = View(10.0, peer_alive=True, peer_state=State.FAULT, quorum=True, healthy=True, refusal=refused)
    assert node.step(in_fault) == [] and node.role is Role.STANDBY
    allowed = View(10.0, peer_alive=False, peer_state=None, quorum=True, healthy=True)
    assert node.step(allowed) and node.role is Role.FENCING


def test_the_shortest_lease_outlasts_the_deadtime_by_a_second_for_fencing():
    """A standby must still hold its lease when it has detected the primary's death and fenced it."""
    assert least_fallback(3.0) == 4.0
    assert least_fallback(0.3) == pytest.approx(1.3)


def test_a_new_primary_switches_on_even_if_the_server_already_counts_the_standby_as_synchronous():
    """Promotion vouches for nobody: only its own switch on waits for the standby to catch up."""
    p = primary()
    assert p.checked(SYNC, now=0.0) is True
    assert p.flag() == 0
    assert p.status(now=0.0)["vouched"] is False


def test_a_demoted_primary_neither_flags_nor_waits_nor_falls_back():
    """After demotion this node's server is a standby: it vouches for nobody and has nothing to switch off."""
    p = vouching_primary()
    p.demoted()
    assert p.flag() == 0
    assert p.status(now=0.0) == {"waits_for_standby": False, "vouched": False, "strict": False, "lease_left": None}
    assert p.checked(GONE, now=100.0) is None


def test_the_lease_runs_until_but_not_including_its_end():
    """At send time + lease exactly, the standby no longer holds it (the primary may fall back soon after)."""
    s = SyncLease(LEASE, MARGIN, strict=False)
    s.heard(active=True, flags=FLAG_SYNC_LEASE, echoed_at=1.0)
    assert s.refusal(now=3.99) is None
    assert s.refusal(now=4.0) == "not a synchronous standby: its lease ran out 0.0 s ago"


def test_status_reports_each_side_of_the_lease():
    """The agent's status (read by the lab's checks) names both sides; lease_left in ms precision, never negative."""
    p = vouching_primary()
    assert p.status(now=1.0) == {"waits_for_standby": True, "vouched": True, "strict": False, "lease_left": None}
    p.checked(GONE, now=100.0)
    p.changed(on=False, ok=True)
    assert p.status(now=100.0) == {"waits_for_standby": False, "vouched": False, "strict": False, "lease_left": None}
    assert primary(strict=True).status(now=0.0)["strict"] is True
    s = SyncLease(LEASE, MARGIN, strict=False)
    s.heard(active=True, flags=0, echoed_at=None)
    assert s.status(now=0.0)["lease_left"] == 0.0        # heard an active primary, holds no lease
    s.heard(active=True, flags=FLAG_SYNC_LEASE, echoed_at=1.0)
    assert s.status(now=2.1234)["lease_left"] == 1.877  # held until 4.0
    assert s.status(now=4.5)["lease_left"] == 0.0
