"""Failure detection from heartbeat arrivals, per link and for the peer as a whole.

- Deadtime: a link is dead when nothing arrived on it for `deadtime` seconds; the peer is dead
  when every link is. One dead link with another alive is a degraded link, not a dead peer.
- Phi accrual (Hayashibara et al., 2004): instead of a yes/no timeout, a suspicion level
  phi = -log10(P(a heartbeat arrives later than now)), from the mean and spread of recent
  inter-arrival times. phi 1 means a 10 % chance the peer is still fine, phi 8 one in 10^8. It
  adapts to a jittery link (a loaded machine) instead of firing on the first late beat.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Arrivals:
    """Inter-arrival history of one link."""

    interval: float  # the configured heartbeat interval: the prior before there is history
    window: int = 100
    last: float | None = None
    gaps: deque = field(default_factory=deque)

    def beat(self, now: float) -> None:
        if self.last is not None:
            self.gaps.append(now - self.last)
            if len(self.gaps) > self.window:
                self.gaps.popleft()
        self.last = now

    def silence(self, now: float) -> float:
        return math.inf if self.last is None else now - self.last

    def phi(self, now: float, min_std: float) -> float:
        """Suspicion that the sender is gone, given how long it has been silent."""
        if self.last is None:
            return math.inf
        mean, std = self._spread(min_std)
        # P(gap > silence) for a normal distribution, via the complementary error function.
        tail = 0.5 * math.erfc((self.silence(now) - mean) / (std * math.sqrt(2)))
        return math.inf if tail <= 0 else -math.log10(tail)

    def silence_for_phi(self, threshold: float, min_std: float) -> float:
        """How long a silence makes phi reach `threshold`: the inverse of `phi`."""
        mean, std = self._spread(min_std)
        return mean - std * statistics.NormalDist().inv_cdf(10 ** -threshold)

    def _spread(self, min_std: float) -> tuple[float, float]:
        mean = statistics.fmean(self.gaps) if self.gaps else self.interval
        return mean, max(statistics.pstdev(self.gaps) if len(self.gaps) > 1 else 0.0, min_std)


@dataclass
class Detector:
    """The peer's liveness over every link it is heard on."""

    links: tuple[str, ...]
    interval: float
    deadtime: float
    method: str = "deadtime"  # or "phi"
    phi_threshold: float = 8.0
    arrivals: dict[str, Arrivals] = field(init=False)

    def __post_init__(self) -> None:
        self.arrivals = {link: Arrivals(self.interval) for link in self.links}

    def beat(self, link: str, now: float) -> None:
        self.arrivals[link].beat(now)

    def unplug(self, link: str) -> None:
        """The switch saw the peer's port on `link` go down (failover assist): that link is dead
        now, not when its deadtime runs out, until the peer is heard on it again."""
        self.arrivals[link].last = None

    def forget(self) -> None:
        """A new life of the peer (another incarnation): its old rhythm says nothing."""
        for a in self.arrivals.values():
            a.last = None
            a.gaps.clear()

    def link_alive(self, link: str, now: float) -> bool:
        a = self.arrivals[link]
        if self.method == "phi":
            return a.phi(now, min_std=self.min_std) < self.phi_threshold
        return a.silence(now) < self.deadtime

    @property
    def min_std(self) -> float:
        """A floor on phi's spread: a perfectly regular history would make one late beat fatal."""
        return self.interval / 4

    def next_change(self, now: float) -> float | None:
        """When a link heard so far goes silent for good if nothing more arrives (the agent wakes then)."""
        times = []
        for a in self.arrivals.values():
            if a.last is not None:
                limit = (a.silence_for_phi(self.phi_threshold, self.min_std) if self.method == "phi"
                         else self.deadtime)
                if a.last + limit > now:
                    times.append(a.last + limit)
        return min(times, default=None)

    def alive_links(self, now: float) -> list[str]:
        return [link for link in self.links if self.link_alive(link, now)]

    def peer_alive(self, now: float) -> bool:
        return bool(self.alive_links(now))
