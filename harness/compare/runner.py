"""Run the comparison: fresh labs through the scenarios, each fault on each architecture, the
load sweep in the first crash run of each, then the content-sync runs; the figures at the end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.compare import figures
from harness.compare.plan import CAPACITY, FAULTS, PROBE_RATE, SERVERS, Plan
from harness.compare.table import AA, AS
from harness.scenarios import active_active, active_standby, sync

Progress = Callable[[str], None]


def _options(arch: str, fault: str, agent: str, lb: str, sweep: tuple | None) -> object:
    if arch == AS:
        return active_standby.ActiveStandbyOptions(fault=fault, agent=agent, proto="tcp", rate=PROBE_RATE, before=2.0,
                                                   after=4.5, capacity=CAPACITY, sweep=sweep)
    return active_active.ActiveActiveOptions(fault=fault, lb=lb, backends=len(SERVERS[AA]), proto="tcp",
                                             rate=PROBE_RATE, before=2.0, after=3.0, capacity=CAPACITY, sweep=sweep)


def run(plan: Plan, agent: str, lb: str, out: Path, progress: Progress) -> tuple[dict, list[Path]]:
    """Every run of the plan (each in its own directory under `out`); the figures and the run directories."""
    results: dict[str, dict[str, list[dict]]] = {arch: {"crash": [], "process": []} for arch in (AS, AA)}
    dirs: list[Path] = []
    scenarios = {AS: active_standby.run, AA: active_active.run}
    for i in range(1, plan.runs + 1):
        for arch in (AS, AA):
            for kind, fault in FAULTS[arch]:
                sweep = (plan.loads, plan.step_s) if i == 1 and kind == "crash" else None
                label = f"{arch}, {kind}, run {i}/{plan.runs}"
                run_dir = out / f"{arch}-{kind}-{i}"
                rec = scenarios[arch](_options(arch, fault, agent, lb, sweep), run_dir,
                                      lambda m, lbl=label: progress(f"{lbl}: {m}"))
                results[arch][kind].append(rec.to_json())
                dirs.append(run_dir)
    synced = []
    for method, period in plan.sync:
        run_dir = out / f"sync-{method}-{period:g}s"
        opts = sync.SyncOptions(method=method, period=period, before=plan.sync_before, proto="tcp", rate=PROBE_RATE)
        rec = sync.run(opts, run_dir, lambda m, lbl=f"sync {method} {period:g} s": progress(f"{lbl}: {m}"))
        synced.append(rec.to_json())
        dirs.append(run_dir)
    found = {arch: figures.architecture(results[arch]["crash"], results[arch]["process"], SERVERS[arch])
             for arch in (AS, AA)}
    found["sync"] = figures.sync(synced)
    return found, dirs
