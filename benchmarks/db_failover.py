"""Benchmark: the database tier's failover (halab's heartbeat agent against Patroni), every fault
in every replication mode with the write checker's verdict, and the cost of synchronous commits.

    sudo .venv/bin/python benchmarks/db_failover.py [--runs 5] [--parts managers faults throughput]

Part "managers". The three-tier lab, synchronous replication, a client writing 50 times a second
through the web tier; db1, the primary, crashes (every process killed, every link down). halab's
heartbeat agent (interval 100 ms), Patroni tuned to its documented minimums and Patroni with its
defaults take turns, run by run. The write outage (last acknowledged write before the crash to the
first acknowledged after), its median and spread, acknowledged writes lost, and the ratio to halab.

Part "faults". halab's agent only: every fault in async and sync (remote_apply and strict where
they decide something, SETTINGS): the most acknowledged writes any run lost, indeterminate writes,
the median write outage.

Part "throughput". 8 connections writing as fast as their commits return, 10 s, straight to the
DB VIP: writes/s and commit latency p50/p99 for async, sync and remote_apply.

Everything goes to runs/benchmark-db-<date>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import dbwriter
from harness.daemons.postgresql import REPLICATION_MODES
from harness.dbtier import PRIORITIES, managed_pair
from harness.lab import Lab
from harness.measure import median, ratio
from harness.scenarios.three_tier import FAULTS, ThreeTierOptions
from harness.scenarios.three_tier import run as three_tier
from topologies.three_tier import ThreeTierTopo

MANAGERS = ("halab", "patroni-tuned", "patroni")   # the order they take turns in
#: Part "faults": each fault in async and sync; remote_apply where the standby is promoted; strict
#: where a fallback is what decides (the crash after a cut).
SETTINGS = {fault: [("async", False), ("sync", False)] for fault in FAULTS}
for _fault in ("db-primary-crash", "db-process-kill", "replication-cut-then-crash"):
    SETTINGS[_fault].append(("remote_apply", False))
SETTINGS["replication-cut-then-crash"].append(("sync", True))
WORKERS, SECONDS = 8, 10.0


def spread(values: list[float | None]) -> str:
    present = sorted(v for v in values if v is not None)
    missing = len(values) - len(present)
    text = f"{present[0]:.2f}-{present[-1]:.2f} s" if present else "-"
    return text + (f", {missing} never" if missing else "")


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def managers(base: Path, runs: int, console: Console) -> dict:
    results: dict[str, list[dict]] = {m: [] for m in MANAGERS}
    for i in range(runs):
        for manager in MANAGERS:
            console.log(f"managers: {manager}, run {i + 1}/{runs}")
            rec = three_tier(ThreeTierOptions(manager=manager, replication="sync"), base / f"{manager}-{i + 1}")
            assert rec.database is not None
            results[manager].append({"write_outage": rec.database["write_outage"],
                                     "acknowledged_lost": len(rec.database["verdict"]["acknowledged_lost"]),
                                     "stale": len(rec.database["verdict"]["stale"])})
    halab = median(r["write_outage"] for r in results["halab"])
    table = Table(title=f"Primary crash, sync, writes through the web tier: medians of {runs} runs")
    for col in ("manager", "write outage", "spread", "vs halab", "acknowledged lost (all runs)", "two primaries"):
        table.add_column(col)
    summary = {}
    for manager, rs in results.items():
        outage = median(r["write_outage"] for r in rs)
        times = ratio(outage, halab)
        summary[manager] = {"runs": rs, "median_write_outage": outage, "ratio_to_halab": times}
        table.add_row(manager, seconds(outage), spread([r["write_outage"] for r in rs]),
                      "-" if times is None else f"{times:.1f} x", str(sum(r["acknowledged_lost"] for r in rs)),
                      str(sum(r["stale"] for r in rs)))
    console.print(table)
    return summary


def faults(base: Path, runs: int, console: Console, only: tuple[str, ...] = FAULTS) -> dict:
    results: dict[str, list[dict]] = {}
    for i in range(runs):
        for fault in only:
            for mode, strict in SETTINGS[fault]:
                key = f"{fault}/{mode}{' strict' if strict else ''}"
                console.log(f"faults: {key}, run {i + 1}/{runs}")
                opts = ThreeTierOptions(fault=fault, replication=mode, strict=strict)
                if fault == "replication-cut":
                    opts = replace(opts, lasting=3.0)   # healed: the primary waits for its standby again
                rec = three_tier(opts, base / f"{fault}-{mode}{'-strict' if strict else ''}-{i + 1}")
                assert rec.database is not None
                v = rec.database["verdict"]
                results.setdefault(key, []).append({
                    "write_outage": rec.database["write_outage"], "acknowledged": v["acknowledged"],
                    "acknowledged_lost": len(v["acknowledged_lost"]), "indeterminate": v["indeterminate"],
                    "stale": len(v["stale"]), "primary_after": rec.database["primary_after"],
                    "lag_before": rec.database["replication_lag_before"]})
    table = Table(title=f"halab's agent, every fault and replication mode, {runs} runs each")
    for col in ("fault", "replication", "write outage (median)", "acknowledged lost (most in a run)",
                "indeterminate (median)", "two primaries", "primary after"):
        table.add_column(col)
    for key, rs in results.items():
        fault, mode = key.split("/")
        table.add_row(fault, mode, seconds(median(r["write_outage"] for r in rs)),
                      str(max(r["acknowledged_lost"] for r in rs)), f"{median(r['indeterminate'] for r in rs):g}",
                      str(sum(r["stale"] for r in rs)), ", ".join(sorted({str(r["primary_after"]) for r in rs})))
    console.print(table)
    return results


def throughput_run(run_dir: Path, mode: str) -> dict:
    """One fresh lab: web1 writes in a closed loop straight to the DB VIP."""
    topo = ThreeTierTopo(webs=1)
    with Lab(topo, run_dir, fencing=True) as lab:
        pair = managed_pair(lab, PRIORITIES, mode, vip=topo.db_vip)
        passfile = pair.cluster.write_app_passfile(lab.run_dir / "app.pgpass")
        out = lab.run_dir / "writes.jsonl"
        done = lab.run("web1", [sys.executable, "-m", "harness.dbwriter", "--host", str(topo.db_vip.ip),
                                "--passfile", str(passfile), "--closed-loop", str(WORKERS), "--seconds", f"{SECONDS:g}",
                                "--timeout", "5", "--out", str(out)], timeout=SECONDS + 60)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        writes = dbwriter.read(out)
    latencies = sorted(w.completed - w.invoked for w in writes if w.outcome == "ok")
    return {"writes_per_s": len(latencies) / SECONDS, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "failed": len(writes) - len(latencies)}


def throughput(base: Path, runs: int, console: Console) -> dict:
    results: dict[str, list[dict]] = {m: [] for m in REPLICATION_MODES}
    for i in range(runs):
        for mode in REPLICATION_MODES:
            console.log(f"throughput: {mode}, run {i + 1}/{runs}")
            results[mode].append(throughput_run(base / f"throughput-{mode}-{i + 1}", mode))
    async_rate = median(r["writes_per_s"] for r in results["async"])
    table = Table(title=f"The write path: {WORKERS} connections for {SECONDS:g} s, medians of {runs} runs")
    for col in ("replication", "writes/s", "vs async", "commit p50", "commit p99"):
        table.add_column(col, justify="left" if col == "replication" else "right")
    for mode, rs in results.items():
        rate = median(r["writes_per_s"] for r in rs)
        times = ratio(rate, async_rate)
        table.add_row(mode, f"{rate:.0f}", "-" if times is None else f"{times:.2f} x",
                      f"{median(r['p50_ms'] for r in rs):.2f} ms", f"{median(r['p99_ms'] for r in rs):.2f} ms")
    console.print(table)
    return results


PARTS = {"managers": managers, "faults": faults, "throughput": throughput}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--faults", nargs="+", default=list(FAULTS), choices=FAULTS, help='part "faults": which')
    args = parser.parse_args()
    console = Console()
    base = Path("runs") / f"benchmark-db-{time.strftime('%Y%m%d-%H%M%S')}"
    summary: dict = {"runs": args.runs, "machine": platform.platform(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for part in args.parts:
        extra = {"only": tuple(args.faults)} if part == "faults" else {}
        summary[part] = PARTS[part](base / part, args.runs, console, **extra)
        base.mkdir(parents=True, exist_ok=True)
        (base / "summary.json").write_text(json.dumps(summary, indent=1))
    console.print(f"Results in {base}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
