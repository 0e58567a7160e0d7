"""Latency as the offered load grows: the probe sends at one rate after another to a service of
finite capacity (harness.probe.capacity), and each step's latency, losses and spread over the
servers are kept. Where the curve bends up (the knee) is the service's capacity as a client
feels it: one server's for Active-Standby, the sum of the servers' for Active-Active.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise

from harness import probe
from harness.errors import HalabError
from harness.measure import percentile
from harness.probe import MAX_RATE, MIN_RATE, Request
from harness.procs import cpu_seconds

#: A step is past the knee when its p99 latency exceeds this many times the service time, or it
#: loses more than LOSS_LIMIT of its requests.
KNEE_FACTOR = 3.0
LOSS_LIMIT = 0.01
DRAIN_MAX_S = 5.0


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
    return Step(offered, len(requests), len(latencies), statistics.median(latencies) if latencies else None,
                percentile(latencies, 0.99), dict(Counter(r.server for r in requests if r.ok and r.server)), cpu)


def past_knee(step: Step, service_ms: float) -> bool:
    return step.loss > LOSS_LIMIT or step.p99_ms is None or step.p99_ms > KNEE_FACTOR * service_ms


def knee(steps: Sequence[Step], service_ms: float) -> float | None:
    """The offered load where the curve leaves its flat part: between the last step within the
    bounds and the first past them, where the p99 latency crosses KNEE_FACTOR x the service time
    (at the last good step if the next one is past only by its losses). None if no step is past
    the knee (it lies beyond the sweep) or the first one already is (there is no flat part)."""
    limit = KNEE_FACTOR * service_ms
    for before, after in pairwise(steps):
        if not past_knee(before, service_ms) and past_knee(after, service_ms):
            assert before.p99_ms is not None
            if after.p99_ms is None or after.p99_ms <= limit:
                return before.offered
            share = (limit - before.p99_ms) / (after.p99_ms - before.p99_ms)
            return before.offered + share * (after.offered - before.offered)
    return None


def report(steps: Sequence[Step], capacity: tuple[int, float]) -> dict:
    """The sweep as result.json keeps it: the servers' capacity, every step, the knee."""
    workers, service = capacity
    return {"workers": workers, "service_ms": service * 1000, "per_server": workers / service,
            "steps": [{**asdict(s), "loss": s.loss} for s in steps], "knee": knee(steps, service * 1000)}


def check_loads(loads: Sequence[float]) -> None:
    for load in loads:
        if not MIN_RATE <= load <= MAX_RATE:
            raise HalabError(f"An offered load of {load:g} requests/s is beyond what the probe can send.",
                             f"Choose loads from {MIN_RATE:g} to {MAX_RATE:g} requests/s.")


def sweep(lab, client: str, target: str, loads: Sequence[float], seconds: float,
          servers: dict[str, int]) -> list[Step]:
    """Probe `target` from `client` at each load for `seconds` (TCP, a new connection each, so the
    balancer spreads them); `servers`: name -> pid of each server's responder, for its CPU."""
    check_loads(loads)
    steps = []
    for i, load in enumerate(loads):
        out = lab.run_dir / f"load-{i + 1}-{load:g}.json"
        before = {name: cpu_seconds(pid) or 0.0 for name, pid in servers.items()}
        started = time.monotonic()
        done = lab.run(client, probe.command("client", "--target", target, "--port", str(probe.PORT), "--proto",
                                             "tcp", "--rate", f"{load:g}", "--duration", f"{seconds:g}",
                                             "--out", str(out)), timeout=seconds + 30)
        if done.returncode != 0:
            raise HalabError(f"The load probe on {client} failed: {done.stderr.strip()[-500:]}",
                             f"See {lab.run_dir}.")
        took = time.monotonic() - started
        cpu = {name: ((cpu_seconds(pid) or 0.0) - before[name]) / took for name, pid in servers.items()}
        requests = [Request(**r) for r in json.loads(out.read_text())["requests"]]
        steps.append(step_of(load, requests, cpu))
        time.sleep(_drain(requests, seconds))
    return steps


def _drain(requests: list[Request], seconds: float) -> float:
    """How long the servers still work through the queue an overloaded step left (bounded)."""
    ok = [r for r in requests if r.ok and r.replied is not None]
    if len(ok) < 2:
        return 1.0
    throughput = len(ok) / max(1e-3, max(r.replied for r in ok) - min(r.sent for r in ok))
    return min(DRAIN_MAX_S, max(0.2, len(requests) / throughput - seconds + 0.2))
