"""Which heartbeats prove that the peer is alive now: replay protection, as pure logic.

A signed heartbeat can be captured and sent again, from anywhere, as often as one likes; the
signature still holds. Replayed, an old beat would keep a dead peer "alive" (no failover), or,
if it said FAULT, make this node take over from a healthy one. So:

- Within one life (incarnation) of the peer, a beat counts on a link only if its sequence
  number is higher than every one accepted on that link before (each beat goes out on every
  link with the same number): a replay of any earlier beat of that life is dropped.
- A life of the peer not yet seen (at first contact, after either side restarted) counts only
  once it answers a challenge: its beat must echo one of the nonces this node sent in the last
  `window` seconds. No capture, however old, has one, and a restarted node, which remembers no
  mark, needs no clock to tell an old life from a new one; a peer whose clock stepped back is
  not locked out either. Until then its beats are not proof of life, but their nonces are
  echoed back, so the answer comes one interval later.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from ha.heartbeat.packet import Heartbeat


def window_for(deadtime: float, interval: float) -> float:
    """How long a nonce may take to come back: a few intervals, never under a second."""
    return max(deadtime + 2 * interval, 1.0)


@dataclass
class Freshness:
    window: float  # how long one of our nonces may be echoed back (a few intervals)
    sent: dict[int, float] = field(default_factory=dict)  # our nonce -> when it left
    life: int | None = None  # the peer's incarnation that answered our challenge
    marks: dict[str, int] = field(default_factory=dict)  # link -> newest sequence accepted there, in `life`
    heard: int = 0  # the peer's latest nonce: what our next beat echoes
    dropped: dict[str, int] = field(default_factory=dict)  # why beats did not count, how many

    def next_nonce(self, now: float) -> int:
        """A nonce for the beat about to leave; nonces older than the window are forgotten."""
        nonce = secrets.randbits(64) or 1
        self.sent = {n: t for n, t in self.sent.items() if now - t <= self.window}
        self.sent[nonce] = now
        return nonce

    def accept(self, link: str, beat: Heartbeat, now: float) -> bool:
        """Whether `beat`, heard on `link`, proves the peer alive now; every refusal is counted by reason."""
        if beat.incarnation == self.life:
            if beat.seq <= self.marks.get(link, 0):
                return self.drop("replayed or out of order")
        else:
            sent_at = self.sent.get(beat.echo)
            if sent_at is None or now - sent_at > self.window:
                self.heard = beat.nonce  # answer its challenge (a replay learns nothing from ours)
                return self.drop("a life of the peer that has not answered our challenge yet")
            self.life, self.marks = beat.incarnation, {}
        self.marks[link] = beat.seq
        self.heard = beat.nonce
        return True

    def drop(self, why: str) -> bool:
        """Count a beat that did not count, by reason (the agent's status shows them)."""
        self.dropped[why] = self.dropped.get(why, 0) + 1
        return False
