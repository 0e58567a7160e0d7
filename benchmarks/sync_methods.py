"""Benchmark: content sync by tar, rsync and lsyncd, at the same period and at lsyncd's own pace.

    sudo .venv/bin/python benchmarks/sync_methods.py [--runs 5] [--before 8]

Each run is `halab run sync` on a fresh lab: 100 files (4 KiB to 1 MiB) on server1, a writer
making 10 changes a second (half rewrites, a quarter new files, a quarter deletions), the sync
taking them to server2 over the lab network, then server1 crashes. The settings take turns within
each round (interleaved), so a slow moment of the machine lands on all of them alike. Medians
over --runs of each run's staleness p50 / p99 / max (write on the primary -> visible on the
standby), deletions that arrived, half-written views, writes lost at the crash, bytes sent per
transfer and CPU seconds per second (sender and receiver, children included).

Everything goes to runs/benchmark-sync-<date>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.measure import median
from harness.scenarios.sync import SyncOptions, run

SETTINGS = (("tar", 1.0), ("rsync", 1.0), ("lsyncd", 1.0), ("rsync", 0.1), ("lsyncd", 0.1))
FIGURES = {"stale p50": lambda s: s["writes"]["p50"], "stale p99": lambda s: s["writes"]["p99"],
           "stale max": lambda s: s["writes"]["max"],
           "deletions arrived": lambda s: s["deletions"]["count"] / max(1, s["deletions"]["of"]),
           "half-written": lambda s: s["partial_views"] + s["missing_for_a_moment"],
           "writes lost": lambda s: s["lost_at_crash"]["writes_lost"], "RPO": lambda s: s["lost_at_crash"]["rpo"],
           "bytes/transfer": lambda s: s["bytes_per_transfer"], "CPU s/s": lambda s: s["cpu_seconds_per_second"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--before", type=float, default=8.0, help="seconds of writing before the crash")
    args = parser.parse_args()
    console = Console()
    base = Path("runs") / f"benchmark-sync-{time.strftime('%Y%m%d-%H%M%S')}"
    found: dict[str, list[dict]] = {}
    for i in range(1, args.runs + 1):
        for method, period in SETTINGS:
            key = f"{method}@{period:g}s"
            console.log(f"{key}: run {i}/{args.runs}")
            opts = SyncOptions(method=method, period=period, before=args.before)
            found.setdefault(key, []).append(run(opts, base / f"{key}-{i}").sync or {})
    medians = {key: {name: median(f(s) for s in runs) for name, f in FIGURES.items()} for key, runs in found.items()}
    table = Table(title=f"Content sync, medians of {args.runs} runs ({args.before:g} s of writing at 10 changes/s)")
    table.add_column("method @ period")
    for name in FIGURES:
        table.add_column(name, justify="right")
    for key, m in medians.items():
        table.add_row(key, *(_show(name, m[name]) for name in FIGURES))
    console.print(table)
    base.mkdir(parents=True, exist_ok=True)
    (base / "summary.json").write_text(json.dumps(
        {"settings": SETTINGS, "options": asdict(SyncOptions(before=args.before)), "medians": medians,
         "runs": {k: [{n: f(s) for n, f in FIGURES.items()} for s in v] for k, v in found.items()}}, indent=1))
    console.print(f"Results in {base}/")
    return 0


def _show(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name.startswith("stale") or name == "RPO":
        return f"{value * 1000:.0f} ms"
    if name == "deletions arrived":
        return f"{value * 100:.0f} %"
    if name == "bytes/transfer":
        return f"{value / 1e6:.2f} MB"
    if name == "CPU s/s":
        return f"{value:.3f}"
    return f"{value:g}"


if __name__ == "__main__":
    raise SystemExit(main())
