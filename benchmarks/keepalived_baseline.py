"""Benchmark: keepalived's client-visible failover in the Active-Standby lab.

    sudo .venv/bin/python benchmarks/keepalived_baseline.py [--runs 5] [--intervals 1 0.1 0.01]

Each run is a fresh lab (halab run active-standby); the probe sends 1000 UDP requests/s to the
VIP. For each advert_int and fault it prints the median outage over the runs and its ratio to
the backup's Master_Down_Interval (3 x advert_int + skew, priority 100), the time VRRP itself
allows. Results also go to runs/benchmark-<date>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.measure import median, ratio
from harness.scenarios import ActiveStandbyOptions, run_active_standby

BACKUP_PRIORITY = 100


def master_down_interval(advert_int: float, priority: int = BACKUP_PRIORITY) -> float:
    """RFC 9568: 3 x Master_Adver_Interval + Skew_Time, Skew_Time = (256 - priority) x interval / 256."""
    return 3 * advert_int + (256 - priority) * advert_int / 256


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1, 0.01])
    parser.add_argument("--faults", nargs="+", default=["link-cut", "agent-term"])
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    console = Console()
    out = Path("runs") / f"benchmark-{time.strftime('%Y%m%d-%H%M%S')}"
    rows = []
    for adv in args.intervals:
        for fault in args.faults:
            outages = []
            for i in range(args.runs):
                opts = ActiveStandbyOptions(fault=fault, advert_int=adv, rate=args.rate, after=3.5 * adv + 1.5)
                with console.status(f"advert_int {adv:g} s, {fault}, run {i + 1}/{args.runs}"):
                    rec = run_active_standby(opts, out / f"adv{adv:g}-{fault}-{i + 1}")
                outages.append(rec.outcome.outage)
            rows.append({"advert_int": adv, "fault": fault, "outages": outages, "median": median(outages),
                         "master_down_interval": master_down_interval(adv)})
    table = Table(title=f"keepalived 2.2.7 failover seen by the client, {args.runs} runs each, "
                        f"{args.rate:g} UDP requests/s ({time.strftime('%Y-%m-%d')}, {platform.node()}, "
                        f"{platform.release()})")
    for col in ("advert_int", "fault", "median outage", "min", "max", "Master_Down_Interval", "ratio"):
        table.add_column(col, justify="right")
    for r in rows:
        present = [o for o in r["outages"] if o is not None]
        table.add_row(f"{r['advert_int']:g} s", r["fault"], _ms(r["median"]), _ms(min(present, default=None)),
                      _ms(max(present, default=None)), _ms(r["master_down_interval"]),
                      f"{ratio(r['median'], r['master_down_interval']) or float('nan'):.2f}")
    console.print(table)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    return 0


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
