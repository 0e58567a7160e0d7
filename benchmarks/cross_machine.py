"""Benchmark: the same VRRP failover with the VIP's two servers on one machine and on two.

    sudo .venv/bin/python benchmarks/cross_machine.py [--runs 5] [--intervals 1 0.1] [--servers localhost,B]

Every run is the active-standby scenario: halab's agents, a 1000 requests/s UDP probe on the
VIP from client1, the master's (server1's) link cut right after one of its adverts reached the
client. "one machine" is the usual lab; "two machines" puts server2, the backup, on the second
server (Mininet's cluster edition: its link to the switch is an ssh tunnel). Without --servers
the second server is emulated here (harness.emulated_server); name a real one to measure it.
The layouts take turns, run by run. Printed per advert_int: the median outage of each (and the
spread), and the round trip of the probe's answers from server2 after the takeover, which is
what the tunnel adds. Everything also goes to runs/benchmark-<date>-cross/summary.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.emulated_server import EmulatedServer
from harness.measure import median_spread
from harness.scenarios.active_standby import ActiveStandbyOptions, run
from harness.servers import LOCAL, ServerPlan, parse_servers

LAYOUTS = ("one machine", "two machines")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--servers", help="localhost,B: measure on a real second server B (default: emulated)")
    args = parser.parse_args()
    console = Console()
    out = Path("runs").resolve() / f"benchmark-{time.strftime('%Y%m%d-%H%M%S')}-cross"
    with contextlib.ExitStack() as stack:
        if args.servers:
            names = parse_servers(args.servers)
            if LOCAL not in names or len(names) != 2:
                parser.error("--servers names this machine and one other: localhost,B")
        else:
            names = (LOCAL, stack.enter_context(EmulatedServer(1)).address)
        other = next(n for n in names if n != LOCAL)
        plans = {"one machine": None, "two machines": ServerPlan(names, {"server2": other})}
        rows = []
        for adv in args.intervals:
            got: dict[str, dict[str, list[float]]] = {layout: {"outage": [], "rtt": []} for layout in LAYOUTS}
            failed: dict[str, int] = dict.fromkeys(LAYOUTS, 0)
            for i in range(args.runs):
                for layout in LAYOUTS:
                    opts = ActiveStandbyOptions(advert_int=adv, rate=1000.0, after=3.5 * adv + 1.5, fault_phase=0.0,
                                                servers=plans[layout])
                    run_dir = out / f"adv{adv:g}-{layout.replace(' ', '-')}-{i + 1}"
                    with console.status(f"advert_int {adv:g} s, {layout}, run {i + 1}/{args.runs}"):
                        record = run(opts, run_dir)
                    outcome = record.outcome
                    rtts = [(r.replied - r.sent) * 1000 for r in record.requests
                            if r.replied is not None and r.server == "server2"]
                    if outcome.outage is None or outcome.server_after != "server2" or not rtts:
                        failed[layout] += 1
                        continue
                    got[layout]["outage"].append(outcome.outage * 1000)
                    got[layout]["rtt"].append(statistics.median(rtts))
            rows.append({"advert_int": adv, "runs": args.runs, "failed": failed, "results": got})
        summary = {"date": time.strftime("%Y-%m-%d"), "servers": list(names),
                   "emulated": not args.servers, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    table = Table(title=f"VRRP link-cut failover, server2 on this machine or on {other} (median, min - max)")
    for column in ("advert_int", "layout", "outage ms", "answers from server2: round trip ms", "failed runs"):
        table.add_column(column)
    for row in rows:
        for layout in LAYOUTS:
            r = row["results"][layout]
            table.add_row(f"{row['advert_int']:g} s", layout, median_spread(r["outage"], "{:.0f}"),
                          median_spread(r["rtt"], "{:.3f}"), str(row["failed"][layout]))
    console.print(table)
    console.print(f"summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
