"""Synchronous replication that may fall back to asynchronous without losing an acknowledged write.

Patroni keeps a `/sync` key in its DCS: only the standby named there may be promoted, and the
primary clears the key before it stops waiting for that standby. halab's two nodes have no DCS;
their heartbeats carry the same promise as a lease (Chandra and Toueg's leases, the way Raft
leaders use them for reads):

- The active node sets FLAG_SYNC_LEASE in its beats while it vouches for its standby: its last
  switch to synchronous succeeded, which includes waiting until the standby had flushed
  everything written before it (so also what was acknowledged asynchronously), and its latest
  check saw the server count the standby as synchronous, streaming and replying.
- A flagged beat echoes one of the standby's nonces (ha.heartbeat.freshness), so it was made
  after that nonce left the standby: the standby holds the lease until that nonce's send time
  plus `lease`, which is never later than the flagged beat's own send time plus `lease`,
  however long the beat took to arrive; a later beat without the flag does not shorten it.
  No bound on delays is assumed; only that the two
  clocks run at the same rate (one machine here; `margin` covers drift and scheduling).
- The active node stops flagging the moment a check stops vouching, and falls back to
  asynchronous only once `lease + margin` has passed since the last flagged beat left: by then
  no standby holds a lease from it.
- In non-strict mode, a standby promotes only while it holds the lease (or if it never heard an
  active peer: the first election). A standby that may lack writes acknowledged asynchronously
  never takes over: writes stop instead of being lost. It does not even fence the peer.

In strict mode the primary never stops waiting, so every acknowledged write is on the standby,
and it may always be promoted. Pure logic on a clock the caller passes in; the agent runs the
commands (switch on, switch off, the check that prints the standby's state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLAG_SYNC_LEASE = 0x01
#: What the replication check prints: the standby counts as synchronous, replicates
#: asynchronously, or (nothing printed, or the check failed) is gone.
SYNC, ASYNC, GONE = "sync", "async", ""


def least_fallback(deadtime: float) -> float:
    """The shortest lease that outlasts a takeover's detection, with a second for fencing."""
    return deadtime + 1.0


@dataclass
class SyncLease:
    lease: float    # seconds a flagged beat vouches for, on the standby
    margin: float   # more seconds the primary waits before falling back (drift, scheduling)
    strict: bool
    # The active node's side.
    waits: bool = False           # the server may be waiting for the standby (names set, not unset since)
    vouched: bool = False         # the last switch on succeeded (standby caught up), no switch off since
    in_effect: bool = False       # the latest check saw the standby synchronous, streaming, replying
    changing: bool = False        # a switch is under way
    flagged_until: float = -math.inf   # no fallback before this: last flagged beat + lease + margin
    # The standby's side.
    held_until: float = -math.inf
    heard_active: bool = False

    def promoted(self) -> None:
        """This node's server became the primary: it waits for the standby from the start only
        when strict (the promotion set the names); nobody is vouched for yet."""
        self.waits, self.vouched, self.in_effect, self.changing = self.strict, False, False, False

    def demoted(self) -> None:
        self.waits = self.vouched = self.in_effect = self.changing = False

    def flag(self) -> int:
        """The flags of the next beat this node sends (as the active node)."""
        return FLAG_SYNC_LEASE if self.vouched and self.in_effect and not self.changing else 0

    def sent(self, flags: int, now: float) -> None:
        if flags & FLAG_SYNC_LEASE:
            self.flagged_until = now + self.lease + self.margin

    def checked(self, state: str, now: float) -> bool | None:
        """The check's verdict (SYNC, ASYNC or GONE); True: switch synchronous on, False: off."""
        self.in_effect = state == SYNC
        if self.changing:
            return None
        if state != GONE and not (self.vouched and self.in_effect):
            self.changing = True
            return True
        if state == GONE and self.waits and not self.strict and now >= self.flagged_until:
            self.changing = True
            return False
        return None

    def changed(self, on: bool, ok: bool) -> None:
        """A switch ended. A switch on, even a failed one, may have set the names: the server may
        wait; only a successful one vouches. After a switch off, nothing is vouched for."""
        self.changing, self.in_effect = False, False
        if on:
            self.waits, self.vouched = True, ok
        else:
            self.vouched = False
            self.waits = not ok

    def heard(self, active: bool, flags: int, echoed_at: float | None) -> None:
        """A beat from the peer, on the standby's side; `echoed_at`: when the nonce it echoes left
        this node (None: it echoes none still remembered)."""
        if not active:
            return
        self.heard_active = True
        # An unflagged beat does not shorten a lease already granted: the primary keeps its side
        # (no fallback before the lease is over) whatever it says later. Ending it early would
        # refuse a safe takeover: a primary whose server just died stops vouching a moment
        # before it gives up, yet acknowledged nothing without the standby.
        if flags & FLAG_SYNC_LEASE and echoed_at is not None:
            self.held_until = max(self.held_until, echoed_at + self.lease)

    def refusal(self, now: float) -> str | None:
        """Why this node must not take over now, or None."""
        if self.strict or not self.heard_active or now < self.held_until:
            return None
        if self.held_until == -math.inf:
            return "not a synchronous standby: the primary never vouched for it"
        return f"not a synchronous standby: its lease ran out {now - self.held_until:.1f} s ago"

    def status(self, now: float) -> dict:
        return {"waits_for_standby": self.waits, "vouched": self.vouched, "strict": self.strict,
                "lease_left": round(max(0.0, self.held_until - now), 3) if self.heard_active else None}
