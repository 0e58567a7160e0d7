"""The load sweep on a running lab: the probe at one offered load after another against servers
of finite capacity, each step's figures kept (the arithmetic is harness.loadcurve's)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from harness import probe
from harness.errors import HalabError
from harness.loadcurve import Step, check_loads, report, step_of
from harness.probe import Request
from harness.procs import cpu_seconds

DRAIN_MAX_S = 5.0


def run(lab, client: str, target: str, plan: tuple[Sequence[float], float] | None,
        capacity: tuple[int, float] | None, responders: dict) -> dict | None:
    """A scenario's sweep, when it asked for one: `plan` (loads, seconds each) against servers of
    `capacity`; `responders`: name -> the server's Responder (for its CPU). The report, or None."""
    if plan is None:
        return None
    if capacity is None:
        raise HalabError("A load sweep needs servers of finite capacity.", "Give the scenario a capacity too.")
    pids = {name: r.process.pid for name, r in responders.items() if r.process is not None}
    return report(sweep(lab, client, target, *plan, pids), capacity)


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
