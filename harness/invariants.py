"""What a fault campaign checks, as pure functions over what it recorded (one clock, CLOCK_MONOTONIC).

A campaign is a series of windows, one per fault: the fault is injected, held, undone, and the
lab is given `bound` seconds to settle before the next one. Three checks per window:
- the longest silence the client saw (measure.analyse's outage) is within the bound;
- the lab recovered: every request of the window's last `TAIL_S` seconds was answered;
- never two holders of the VIP, except while a fault makes it unavoidable (a master cut off,
  frozen or killed does not know that it should let go; VRRP has no fencing) and only until
  the window ends: two holders that outlast their window are a violation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from harness.measure import analyse
from harness.probe import Request

#: The end of a window where every request must have been answered: the lab has recovered.
TAIL_S = 1.0
#: Requests sent this close to the next fault may be answered, or not, after it: not judged here.
IN_FLIGHT_S = 0.1


@dataclass(frozen=True)
class Window:
    """One fault of a campaign, from its injection to the start of the next one."""

    kind: str
    target: str
    start: float
    undone: float
    end: float
    bound: float  # the longest silence the client may see
    excuses_two_holders: bool


@dataclass(frozen=True)
class Verdict:
    window: Window
    outage: float | None  # None: still silent when the window ended
    recovered: bool
    lost: int

    @property
    def ok(self) -> bool:
        return self.outage is not None and self.outage <= self.window.bound and self.recovered


def judge(window: Window, requests: Sequence[Request]) -> Verdict:
    """The client's view of one window: its longest silence and whether it ends answered."""
    last = window.end - IN_FLIGHT_S
    mine = [r for r in requests if window.start - TAIL_S <= r.sent < last]
    outcome = analyse(mine, window.start)
    tail = [r for r in mine if r.sent >= last - TAIL_S]
    return Verdict(window, outcome.outage, bool(tail) and all(r.ok for r in tail), outcome.lost_after_fault)


def holder_changes(text: str) -> list[tuple[float, frozenset[str]]]:
    """Parse holder_watch's output: (time, holders) at each change."""
    changes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] != "watching":
            changes.append((float(parts[0]), frozenset() if parts[1] == "-" else frozenset(parts[1].split(","))))
    return changes


def two_holder_spans(changes: Sequence[tuple[float, frozenset[str]]], end: float) -> list[tuple[float, float]]:
    """The spans during which two or more hosts held the address (the last one closed at `end`)."""
    spans: list[tuple[float, float]] = []
    for (t, holders), (t_next, _) in pairwise([*changes, (end, frozenset())]):
        if len(holders) > 1:
            if spans and spans[-1][1] == t:
                spans[-1] = (spans[-1][0], t_next)
            else:
                spans.append((t, t_next))
    return spans


def unexcused(spans: Sequence[tuple[float, float]], windows: Sequence[Window]) -> list[tuple[float, float]]:
    """Two-holder spans that no fault explains: not within one window whose fault excuses them."""
    return [(a, b) for a, b in spans
            if not any(w.excuses_two_holders and w.start <= a and b <= w.end for w in windows)]


def growth(samples: Sequence[tuple[float, int]], settle: float) -> int | None:
    """How much a process's memory grew, from its first sample `settle` seconds into its life to
    its last; None when it did not live long enough to say."""
    if not samples:
        return None
    born = samples[0][0]
    kept = [rss for t, rss in samples if t >= born + settle]
    return kept[-1] - kept[0] if len(kept) >= 2 else None
