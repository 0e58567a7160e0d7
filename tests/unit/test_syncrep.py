"""The synchronous-replication lease: the primary never stops waiting for a standby that may
still be promoted, and a standby that may have missed acknowledged writes is never promoted."""

import random

import pytest

from ha.heartbeat.syncrep import FLAG_SYNC_LEASE, SyncLease

LEASE, WINDOW = 3.0, 1.0


def primary(strict: bool = False) -> SyncLease:
    lease = SyncLease(LEASE, WINDOW, strict)
    lease.promoted()
    return lease


def test_a_new_primary_waits_for_its_standby_only_once_the_standby_replicates():
    p = primary()
    assert not p.synchronous and p.flag() == 0
    assert p.checked(True, now=0.0) == "on"
    assert p.checked(True, now=0.1) is None          # one change at a time
    p.changed("on", ok=True)
    assert p.synchronous and p.flag() == 0           # not vouched for until a check after the change
    assert p.checked(True, now=0.3) is None
    assert p.flag() == FLAG_SYNC_LEASE


def test_a_strict_primary_waits_from_its_promotion_and_never_falls_back():
    p = primary(strict=True)
    assert p.synchronous
    assert p.checked(False, now=100.0) is None and p.synchronous
    assert SyncLease(LEASE, WINDOW, strict=True).refusal(now=5.0) is None   # every acknowledged write is there


def synchronous_primary(now: float = 0.0) -> SyncLease:
    p = primary()
    p.checked(True, now)
    p.changed("on", ok=True)
    p.checked(True, now)
    return p


def test_the_primary_stops_vouching_at_once_and_falls_back_only_after_the_lease_and_the_window():
    p = synchronous_primary()
    p.sent(p.flag(), now=10.0)                        # the last flagged beat
    assert p.checked(False, now=10.1) is None
    assert p.flag() == 0
    assert p.checked(False, now=10.0 + LEASE + WINDOW - 0.01) is None
    assert p.checked(False, now=10.0 + LEASE + WINDOW) == "off"
    p.changed("off", ok=True)
    assert not p.synchronous
    assert p.checked(True, now=20.0) == "on"          # the standby is back: wait for it again


def test_a_failed_change_is_tried_again_at_the_next_check():
    p = synchronous_primary()
    assert p.checked(False, now=100.0) == "off"
    p.changed("off", ok=False)
    assert p.synchronous
    assert p.checked(False, now=100.5) == "off"


def test_a_standby_promotes_only_while_it_holds_the_lease():
    s = SyncLease(LEASE, WINDOW, strict=False)
    assert s.refusal(now=0.0) is None                 # never heard an active primary: the first election
    s.heard(active=True, flags=FLAG_SYNC_LEASE, now=1.0)
    assert s.refusal(now=1.0 + LEASE - 0.01) is None
    assert "lease ran out" in s.refusal(now=1.0 + LEASE + 0.5)
    s.heard(active=False, flags=FLAG_SYNC_LEASE, now=2.0)   # only an active peer's word counts
    assert s.refusal(now=1.0 + LEASE + 0.5) is not None
    s.heard(active=True, flags=FLAG_SYNC_LEASE, now=10.0)
    s.heard(active=True, flags=0, now=10.1)           # unflagged: the lease ends at once
    assert "did not vouch" in s.refusal(now=10.2)


@pytest.mark.parametrize("seed", range(20))
def test_no_standby_holds_a_lease_once_the_primary_has_fallen_back(seed):
    """Beats every 0.1 s, each delayed by up to the window; the standby stops replying at a random
    moment. Whenever the primary falls back, every flagged beat, however late it arrives, has
    already run out on the standby."""
    rng = random.Random(seed)
    p, s = synchronous_primary(), SyncLease(LEASE, WINDOW, strict=False)
    stops = rng.uniform(1, 5)
    arrivals: list[tuple[float, int]] = []
    fell_back = None
    t = 0.0
    while t < 15 and fell_back is None:
        flags = p.flag()
        p.sent(flags, t)
        arrivals.append((t + rng.uniform(0, WINDOW), flags))
        if p.checked(t < stops, t) == "off":
            fell_back = t
            p.changed("off", ok=True)
        t += 0.1
    assert fell_back is not None and fell_back >= stops + LEASE
    for at, flags in sorted(arrivals):
        s.heard(active=True, flags=flags, now=at)
        if flags:
            assert at + LEASE <= fell_back + 1e-9
    assert s.refusal(max(fell_back, max(a for a, _ in arrivals))) is not None
