"""Benchmark: client-visible VRRP failover, halab's agent against keepalived, in one run.

    sudo .venv/bin/python benchmarks/vrrp_failover.py [--runs 5] [--intervals 1 0.1 0.01]
    sudo .venv/bin/python benchmarks/vrrp_failover.py --agents halab-assist keepalived --faults link-cut host-crash

For every advert_int and fault, the two agents take turns (halab, keepalived, halab, ...) so
that the machine's noise falls on both alike; every run is a fresh Active-Standby lab with a
1000 requests/s UDP probe on the VIP. The fault is injected right after one of the master's
adverts reached the client (fault_phase 0): the backup's Master_Down_Interval then starts with
the fault, so a link cut costs Master_Down_Interval plus what the agent itself adds, and the two
agents are compared on that, not on where the cut happened to fall between two adverts.
Printed: the median outage of each, the ratio halab / keepalived, and the target for a link cut,
Master_Down_Interval + 30 ms (backup priority 100; RFC 9568). `halab-assist` is halab's agent
with failover assist: the switch's controller tells the backup when the master's port goes down
(target: under 10 ms at every interval). Everything also goes to runs/benchmark-<date>/summary.json.
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
from harness.report import master_down
from harness.scenarios.active_standby import ActiveStandbyOptions, run

BACKUP_PRIORITY = 100
#: Each agent as the scenario runs it: the daemon, and whether the controller assists it.
AGENTS = {"halab": ("halab", False), "keepalived": ("keepalived", False), "halab-assist": ("halab", True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1, 0.01])
    parser.add_argument("--faults", nargs="+", default=["link-cut", "agent-term"])
    parser.add_argument("--agents", nargs="+", default=["halab", "keepalived"], choices=list(AGENTS))
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--free-phase", action="store_true",
                        help="inject the fault when the scenario gets there, wherever it falls between adverts")
    args = parser.parse_args()
    console = Console()
    out = Path("runs") / f"benchmark-{time.strftime('%Y%m%d-%H%M%S')}"
    rows = []
    for adv in args.intervals:
        for fault in args.faults:
            outages: dict[str, list[float | None]] = {a: [] for a in args.agents}
            for i in range(args.runs):
                for agent in args.agents:
                    daemon, assist = AGENTS[agent]
                    opts = ActiveStandbyOptions(fault=fault, agent=daemon, assist=assist, advert_int=adv,
                                                rate=args.rate, after=3.5 * adv + 1.5,
                                                fault_phase=None if args.free_phase else 0.0)
                    with console.status(f"advert_int {adv:g} s, {fault}, {agent}, run {i + 1}/{args.runs}"):
                        rec = run(opts, out / f"adv{adv:g}-{fault}-{agent}-{i + 1}")
                    outages[agent].append(rec.outcome.outage)
            rows.append({"advert_int": adv, "fault": fault, "outages": outages,
                         "medians": {a: median(o) for a, o in outages.items()},
                         "master_down_interval": master_down(adv, BACKUP_PRIORITY)})
    print_table(console, rows, args)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    return 0


def print_table(console: Console, rows: list[dict], args: argparse.Namespace) -> None:
    phase = "fault at a free phase" if args.free_phase else "fault right after an advert"
    table = Table(title=f"VRRP failover seen by the client: median of {args.runs} runs, {phase}, {args.rate:g} UDP "
                        f"requests/s ({time.strftime('%Y-%m-%d')}, {platform.node()}, {platform.release()}, "
                        f"{platform.machine()})")
    for col in ("advert_int", "fault", *(f"{a} median (min-max)" for a in args.agents), "ratio to keepalived",
                "target"):
        table.add_column(col, justify="right")
    for r in rows:
        cells = []
        for a in args.agents:
            present = [o for o in r["outages"][a] if o is not None]
            missing = len(r["outages"][a]) - len(present)
            cells.append(f"{_ms(r['medians'][a])} ({_ms(min(present, default=None))}-"
                         f"{_ms(max(present, default=None))})" + (f", {missing} never" if missing else ""))
        first = next((a for a in args.agents if a != "keepalived"), None)  # None: keepalived alone
        rat = ratio(r["medians"].get(first), r["medians"].get("keepalived")) if first else None
        if "halab-assist" in args.agents and r["fault"] in ("link-cut", "host-crash"):
            target = "< 10 ms"
        else:
            target = _ms(r["master_down_interval"] + 0.03) if r["fault"] == "link-cut" else "-"
        table.add_row(f"{r['advert_int']:g} s", r["fault"], *cells, "-" if rat is None else f"{rat:.2f}", target)
    console.print(table)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
