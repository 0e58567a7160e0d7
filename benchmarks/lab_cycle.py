"""Benchmark: how long a lab people enter takes to come up, to go down, and to run a command in.

    sudo .venv/bin/python benchmarks/lab_cycle.py [--runs 5] [--topology active-standby]

Each run, from the command line as a user types it: `halab up TOPOLOGY --detach` until it
returns (it returns once the probe's host has had an answer from the VIP), then 20 rounds of
`halab exec server1 -- true` interleaved with the bare ways to run `true` there (mnexec into the
host's namespaces, and `true` in the root namespace), and of `halab status --json` (a verb the
lab answers) interleaved with the same verb through the full command line (`python -m
harness.cli`, which imports all of halab: the way every verb went before), then `halab down`
until it returns. Targets: up < 5 s, down < 3 s, exec < 50 ms over the bare command. Medians,
min and max over --runs; everything goes to runs/benchmark-lab-cycle-<date>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.labinfo import read_descriptor
from harness.measure import median

HALAB = [sys.executable, "-m", "harness.entry"]
EXEC_ROUNDS = 20
TARGETS = {"up": 5.0, "down": 3.0, "exec over mnexec": 0.050}


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return took


def one_run(topology: str, host: str) -> dict[str, float | list[float]]:
    up = timed([*HALAB, "up", topology, "--detach"])
    try:
        pid = read_descriptor()["hosts"][host]["pid"]  # type: ignore[index]
        halab_exec, mnexec, bare, verb, full_cli = [], [], [], [], []
        for _ in range(EXEC_ROUNDS):  # interleaved, so that drift hits them all alike
            halab_exec.append(timed([*HALAB, "exec", host, "--", "true"]))
            mnexec.append(timed(["mnexec", "-a", str(pid), "true"]))
            bare.append(timed(["true"]))
            verb.append(timed([*HALAB, "status", "--json"]))
            full_cli.append(timed([sys.executable, "-m", "harness.cli", "status", "--json"]))
    finally:
        down = timed([*HALAB, "down"])
    return {"up": up, "down": down, "exec": median(halab_exec), "mnexec": median(mnexec), "bare": median(bare),
            "status": median(verb), "status_full_cli": median(full_cli)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 51), metavar="1..50")
    parser.add_argument("--topology", default="active-standby",
                        choices=("active-standby", "active-active", "cluster", "reference"))
    args = parser.parse_args()
    host = {"active-standby": "server1", "active-active": "backend1", "cluster": "node1", "reference": "lb1"}
    runs = [one_run(args.topology, host[args.topology]) for _ in range(args.runs)]
    rows = {"up": [r["up"] for r in runs], "down": [r["down"] for r in runs],
            "exec over mnexec": [r["exec"] - r["mnexec"] for r in runs],
            "exec over bare true": [r["exec"] - r["bare"] for r in runs],
            "status --json": [r["status"] for r in runs],
            "status --json, full command line": [r["status_full_cli"] for r in runs]}
    table = Table(title=f"halab up/down/exec, {args.topology}, {args.runs} runs")
    for col in ("what", "median", "min", "max", "target"):
        table.add_column(col)
    for name, values in rows.items():
        target = TARGETS.get(name)
        table.add_row(name, f"{median(values) * 1000:.0f} ms", f"{min(values) * 1000:.0f} ms",
                      f"{max(values) * 1000:.0f} ms",
                      "" if target is None else f"< {target * 1000:.0f} ms: "
                      + ("met" if median(values) < target else "NOT met"))
    Console().print(table)
    out = Path("runs") / f"benchmark-lab-cycle-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({
        "topology": args.topology, "runs": runs, "medians": {k: median(v) for k, v in rows.items()},
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()}}, indent=1))
    print(f"summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
