"""Failover arithmetic on a probe timeline: pure functions, one clock (CLOCK_MONOTONIC).

Definitions (the one method every scenario, test and benchmark uses; README, "How failover is
measured"):
- outage: the longest span without a successful request from the fault on, measured between
  the send times of two consecutive successful requests, the later one sent after the fault.
  Usually that span covers the fault; after a graceful stop the service may answer a few more
  milliseconds before it goes, and the span starts just after the fault. Its resolution is one
  probe interval (10 ms at 100 requests/s). A probe with no answer before the fault (started
  during the outage) counts from its first request: a lower bound, marked by server_before None.
- time to first good reply: from the fault to the reply of the request that ended the outage.
- lost: requests that got no reply within the probe timeout.
- last failure: how long after the fault the last request that failed was sent. With Active-Active
  most requests succeed throughout; this is how long new requests still went to the dead server.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from harness.probe import Request


@dataclass(frozen=True)
class Outcome:
    """What one run looked like from the client, in seconds relative to nothing (raw clock)."""

    fault_at: float
    outage: float | None          # None: the longest silence lasted until the probe ended
    first_good_after: float | None
    lost: int
    lost_after_fault: int
    requests: int
    server_before: str | None
    server_after: str | None
    outage_start: float | None
    outage_end: float | None
    last_failure_after: float | None = None  # None: nothing sent after the fault failed

    @property
    def recovered(self) -> bool:
        return self.outage is not None


def analyse(requests: Sequence[Request], fault_at: float) -> Outcome:
    """Measure the outage that a fault at `fault_at` caused, as the probe client saw it."""
    ok = sorted((r for r in requests if r.ok), key=lambda r: r.sent)
    first_sent = min((r.sent for r in requests), default=fault_at)
    last_sent = max((r.sent for r in requests), default=fault_at)
    before = [r for r in ok if r.sent <= fault_at]
    edges: list[Request | None] = [before[-1] if before else None, *ok[len(before):], None]
    # Every span between consecutive successes that ends after the fault; None ends the probe.
    spans = list(pairwise(edges))
    failed = sorted(r.sent for r in requests if not r.ok)

    def bounds(span: tuple[Request | None, Request | None]) -> tuple[float, float]:
        start, end = span
        return (start.sent if start else first_sent), (end.sent if end else last_sent)

    def length(span: tuple[Request | None, Request | None]) -> float:
        start, end = bounds(span)
        return end - start

    def holds_a_failure(span: tuple[Request | None, Request | None]) -> bool:
        start, end = bounds(span)
        i = bisect.bisect_left(failed, start)
        return i < len(failed) and failed[i] < end

    # The outage is the longest span in which a request failed: a span without one is the probe
    # itself pausing (the CPU busy elsewhere), not the service; with no failure at all, the longest.
    candidates = [span for span in spans if holds_a_failure(span)] or spans
    start_req, end_req = max(candidates, key=length)  # end_req None: still down when the probe ended
    start = start_req.sent if start_req else first_sent
    return Outcome(
        fault_at=fault_at,
        outage=(end_req.sent - start) if end_req else None,
        first_good_after=(end_req.replied - fault_at) if end_req else None,
        lost=sum(1 for r in requests if not r.ok),
        lost_after_fault=sum(1 for r in requests if not r.ok and r.sent >= fault_at),
        requests=len(requests),
        server_before=start_req.server if start_req else None,
        server_after=end_req.server if end_req else None,
        outage_start=start,
        outage_end=end_req.sent if end_req else None,
        last_failure_after=max((r.sent - fault_at for r in requests if not r.ok and r.sent >= fault_at),
                               default=None),
    )


def median(values: Iterable[float | None]) -> float | None:
    """Median of the values that exist; None when there are none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_spread(values: Sequence[float], fmt: str = "{:g}") -> str:
    """"median (min - max)", each written with `fmt`; "-" when there are none."""
    if not values:
        return "-"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))} - {fmt.format(max(values))})"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by the nearest rank: a value that was measured, never one interpolated."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q * len(ranked)) - 1)]


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or not baseline:
        return None
    return value / baseline
