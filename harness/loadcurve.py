"""Latency as the offered load grows, the arithmetic: each step's latency, losses and spread
over the servers, and where the curve bends up (the knee), which is the service's capacity as a
client feels it: one server's for Active-Standby, the sum of the servers' for Active-Active.
Pure functions; harness.loadsweep drives the probe on a lab.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from harness.errors import HalabError
from harness.measure import percentile
from harness.probe import MAX_RATE, MIN_RATE, Request

#: A step is past the knee when its p99 latency exceeds this many times the service time, or it
#: loses more than LOSS_LIMIT of its requests.
KNEE_FACTOR = 3.0
LOSS_LIMIT = 0.01


@dataclass
class Step:
    offered: float                 # requests per second sent
    sent: int
    answered: int
    p50_ms: float | None
    p99_ms: float | None
    per_server: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # busy fraction of one core, per server

    @property
    def loss(self) -> float:
        return (self.sent - self.answered) / self.sent if self.sent else 1.0


def step_of(offered: float, requests: list[Request], cpu: dict[str, float]) -> Step:
    latencies = [(r.replied - r.sent) * 1000 for r in requests if r.ok and r.replied is not None]
    return Step(offered, len(requests), len(latencies), percentile(latencies, 0.5),
                percentile(latencies, 0.99), dict(Counter(r.server for r in requests if r.ok and r.server)), cpu)


def past_knee(step: Step, service_ms: float) -> bool:
    return step.loss > LOSS_LIMIT or step.p99_ms is None or step.p99_ms > KNEE_FACTOR * service_ms


def knee(steps: Sequence[Step], service_ms: float) -> float | None:
    """The offered load where the curve leaves its flat part for good: between the last step
    within the bounds and the first past them after which every step is past, where the p99
    crosses KNEE_FACTOR x the service time (at that last good step if the next one is past only
    by its losses). A hiccup at a light step (one slow connection is a p99 of 150 requests) does
    not count: the curve came back under. None if the last step is within the bounds (the knee
    lies beyond the sweep) or none is (there is no flat part)."""
    limit = KNEE_FACTOR * service_ms
    within = [i for i, s in enumerate(steps) if not past_knee(s, service_ms)]
    if not within or within[-1] == len(steps) - 1:
        return None
    before, after = steps[within[-1]], steps[within[-1] + 1]
    assert before.p99_ms is not None
    if after.p99_ms is None or after.p99_ms <= limit:
        return before.offered
    share = (limit - before.p99_ms) / (after.p99_ms - before.p99_ms)
    return before.offered + share * (after.offered - before.offered)


def report(steps: Sequence[Step], capacity: tuple[int, float]) -> dict:
    """The sweep as result.json keeps it: the servers' capacity, every step, the knee, and where
    it lies when the sweep did not catch it ("above" the last load, "below" the first)."""
    workers, service = capacity
    found = knee(steps, service * 1000)
    beyond = None
    if found is None and steps:
        beyond = "above" if not past_knee(steps[-1], service * 1000) else "below"
    return {"workers": workers, "service_ms": service * 1000, "per_server": workers / service,
            "steps": [{**asdict(s), "loss": s.loss} for s in steps], "knee": found, "knee_beyond": beyond}


def check_loads(loads: Sequence[float]) -> None:
    for load in loads:
        if not MIN_RATE <= load <= MAX_RATE:
            raise HalabError(f"An offered load of {load:g} requests/s is beyond what the probe can send.",
                             f"Choose loads from {MIN_RATE:g} to {MAX_RATE:g} requests/s.")
