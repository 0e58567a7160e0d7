"""Synchronous replication that may fall back to asynchronous without losing an acknowledged write.

Patroni keeps a `/sync` key in its DCS: only the standby named there may be promoted, and the
primary clears the key before it stops waiting for that standby. halab's two nodes have no DCS;
their heartbeats carry the same promise as a lease (Chandra and Toueg's leases, the way Raft
leaders use them for reads):

- The active node sets FLAG_SYNC_LEASE in its beats while its standby replicates synchronously
  (the primary waits for it, and the last check saw it stream and reply).
- The standby that hears a flagged beat holds the lease for `lease` seconds from then. A beat
  without the flag ends it at once.
- The active node stops flagging the moment the standby stops replying, and drops to
  asynchronous only once `lease` plus the oldest age a beat may arrive with (the freshness
  window) has passed since the last flagged beat: by then no standby holds the lease.
- A standby promotes only while it holds the lease (in non-strict mode, once it has heard an
  active peer at all): a standby that missed writes acknowledged asynchronously never takes
  over; writes stop instead of being lost.

In strict mode the primary never stops waiting, so every acknowledged write is on the standby
and it may always be promoted. Pure logic on a clock the caller passes in; the agent runs the
commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLAG_SYNC_LEASE = 0x01


@dataclass
class SyncLease:
    lease: float    # seconds a flagged beat vouches for, on the standby
    window: float   # the oldest a beat may be and still be accepted (ha.heartbeat.freshness)
    strict: bool
    # The active node's side.
    synchronous: bool = False     # commits wait for the standby (turned on, not turned off since)
    replicating: bool = False     # the latest check, made after the last change, saw it replicate
    flagged_until: float = -math.inf   # no fallback before this: last flagged beat + lease + window
    changing: bool = False        # a change of synchronous_standby_names is under way
    # The standby's side.
    held_until: float = -math.inf
    heard_active: bool = False

    def promoted(self) -> None:
        """This node's server became the primary: it waits for the standby only when strict."""
        self.synchronous, self.replicating, self.changing = self.strict, False, False

    def demoted(self) -> None:
        self.synchronous = self.replicating = self.changing = False

    def flag(self) -> int:
        """The flags of the next beat this node sends (as the active node)."""
        return FLAG_SYNC_LEASE if self.synchronous and self.replicating else 0

    def sent(self, flags: int, now: float) -> None:
        if flags & FLAG_SYNC_LEASE:
            self.flagged_until = now + self.lease + self.window

    def checked(self, replicating: bool, now: float) -> str | None:
        """The check's verdict; "on" or "off" when synchronous_standby_names must change."""
        self.replicating = replicating
        if self.changing:
            return None
        if replicating and not self.synchronous:
            self.changing = True
            return "on"
        if not replicating and self.synchronous and not self.strict and now >= self.flagged_until:
            self.changing = True
            return "off"
        return None

    def changed(self, change: str, ok: bool) -> None:
        """A change ended; the standby must be seen replicating again before the next flag."""
        self.changing = False
        if ok:
            self.synchronous = change == "on"
            self.replicating = False

    def heard(self, active: bool, flags: int, now: float) -> None:
        """A beat from the peer, on the standby's side."""
        if not active:
            return
        self.heard_active = True
        self.held_until = now + self.lease if flags & FLAG_SYNC_LEASE else -math.inf

    def refusal(self, now: float) -> str | None:
        """Why this node must not promote now, or None."""
        if self.strict or not self.heard_active or now < self.held_until:
            return None
        if self.held_until == -math.inf:
            return "not a synchronous standby: the primary did not vouch for it in its last heartbeat"
        return f"not a synchronous standby: its lease ran out {now - self.held_until:.1f} s ago"

    def status(self, now: float) -> dict:
        return {"synchronous": self.synchronous, "replicating": self.replicating, "strict": self.strict,
                "lease_left": round(max(0.0, self.held_until - now), 3) if self.heard_active else None}
