"""Benchmark: many VRRP instances on one host, halab's agent against keepalived: the CPU they
take, and how true their advert timers stay.

    sudo .venv/bin/python benchmarks/vrrp_instances.py [--runs 5] [--instances 1,4,16] [--advert-int 0.1]

For each number of instances N the two agents take turns (halab, keepalived, halab, ...), each
run a fresh Active-Standby lab: server1 runs N instances at priority 200 (virtual router ids 1 to
N, one VIP each), server2 the same N at priority 100. Once server1 is master of all N and server2
backup of all, for `--seconds`:

- the CPU of each server's VRRP processes (keepalived: its parent and its VRRP child), in % of
  one core: the master sends N adverts every advert_int, the backup receives them;
- every advert as client1 hears it: per virtual router, the gaps between consecutive adverts,
  how far they stray from advert_int (median and 99th percentile) and the longest, which a
  backup holds against its Master_Down_Interval (3 x advert_int + skew); the adverts missed
  (a gap of k intervals misses k - 1);
- the state changes in the window: a backup that takes over from a live master is a false
  failover (there must be none).

Medians over the runs with min-max; everything also in runs/benchmark-vrrp-instances-<date>/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from ipaddress import IPv4Interface
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.daemons.vrrp import VRRP_DAEMONS, VrrpDaemon, instance
from harness.errors import HalabError
from harness.lab import Lab
from harness.measure import median_spread, percentile
from harness.procs import cpu_of, descendants
from harness.report import master_down
from topologies import ActiveStandbyTopo

PRIORITIES = {"server1": 200, "server2": 100}
FIRST_VIP = 150  # 10.0.0.150 and up: clear of the servers (.1, .2), the lab's VIP (.100) and the client (.101)


def instances(topo: ActiveStandbyTopo, host: str, count: int, advert_int: float) -> tuple:
    return tuple(instance(topo, host, PRIORITIES[host], advert_int, vip=IPv4Interface(f"10.0.0.{FIRST_VIP + i}/24"),
                          name=f"VI_{i}", virtual_router_id=i) for i in range(1, count + 1))


def one(agent: str, count: int, advert_int: float, seconds: float, run_dir: Path) -> dict:
    """One lab, one agent with `count` instances on each server: CPU, advert gaps, state changes."""
    topo = ActiveStandbyTopo(clients=1)
    with Lab(topo, run_dir) as lab:
        daemons: dict[str, VrrpDaemon] = {
            host: VRRP_DAEMONS[agent](lab, host, instances(topo, host, count, advert_int)).start()
            for host in PRIORITIES}
        deadline = time.monotonic() + 4 * advert_int + 15
        while not (len(daemons["server1"].masters()) == count and len(daemons["server2"].states()) == count
                   and not daemons["server2"].masters()):
            if time.monotonic() > deadline:
                raise HalabError(f"{agent}: server1 did not become master of all {count} instances "
                                 f"({daemons['server1'].states()}).", f"See the agents' logs in {run_dir}.")
            time.sleep(0.1)
        time.sleep(2 * advert_int + 0.5)
        watch = lab.spawn("client1", "advert-watch", [sys.executable, "-u", "-m", "harness.advert_watch",
                                                      "--interface", "client1-eth0", "--seconds", f"{seconds:g}"])
        watch.wait_for("watching", timeout=15)
        pids = {host: descendants(d.process.pid) for host, d in daemons.items() if d.process}
        cpu_before = {host: cpu_of(p) for host, p in pids.items()}
        start = time.monotonic()
        watch.popen.wait(seconds + 15)
        took = time.monotonic() - start
        cpu = {host: 100 * (cpu_of(p) - cpu_before[host]) / took for host, p in pids.items()}
        changes = [e for d in daemons.values() for e in d.events() if e.at >= start]
    master_ip = str(topo.addresses["server1"][0].ip)
    heard: dict[str, list[float]] = {}
    for line in watch.log_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == master_ip:
            heard.setdefault(parts[2], []).append(float(parts[0]))
    gaps = [b - a for times in heard.values() for a, b in itertools.pairwise(times)]
    strays = [abs(g - advert_int) for g in gaps]
    return {"agent": agent, "instances": count, "cpu_master": cpu["server1"], "cpu_backup": cpu["server2"],
            "routers_heard": len(heard), "adverts": len(gaps) + len(heard),
            "missed": sum(max(0, round(g / advert_int) - 1) for g in gaps),
            "stray_median": percentile(strays, 0.5), "stray_p99": percentile(strays, 0.99),
            "longest_gap": max(gaps, default=None), "state_changes": [f"{e.host} {e.subject} -> {e.state}"
                                                                      for e in changes]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--instances", default="1,4,16", help="numbers of instances, comma-separated (1 to 99)")
    parser.add_argument("--advert-int", type=float, default=0.1, help="seconds (0.01 to 1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to watch each run (2 to 60)")
    parser.add_argument("--agents", nargs="+", default=list(VRRP_DAEMONS), choices=list(VRRP_DAEMONS))
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.instances.split(",")]
    except ValueError:
        parser.error(f"--instances {args.instances!r}: give numbers like 1,4,16")
    if not all(1 <= n <= 99 for n in counts) or not 0.01 <= args.advert_int <= 1 or not 2 <= args.seconds <= 60:
        parser.error("--instances each 1 to 99, --advert-int 0.01 to 1, --seconds 2 to 60")
    console = Console(width=200)
    out = Path("runs") / f"benchmark-vrrp-instances-{time.strftime('%Y%m%d-%H%M%S')}"
    results: list[dict] = []
    for run in range(1, args.runs + 1):
        for count in counts:
            for agent in args.agents:
                with console.status(f"{count} instances, {agent}, run {run}/{args.runs}"):
                    try:
                        results.append(one(agent, count, args.advert_int, args.seconds,
                                           out / f"{agent}-{count}-{run}"))
                    except HalabError as exc:
                        results.append({"agent": agent, "instances": count, "failed": str(exc)})
                        console.print(f"[red]{agent}, {count} instances, run {run}: {exc}[/red]")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"args": vars(args), "runs": results}, indent=1))
    print_table(console, results, counts, args)
    console.print(f"Every run: {out / 'summary.json'}")
    return 0


def print_table(console: Console, results: list[dict], counts: list[int], args: argparse.Namespace) -> None:
    table = Table(title=f"VRRP instances on one host, advert_int {args.advert_int:g} s, {args.seconds:g} s watched: "
                        f"median of {args.runs} runs (min-max) ({time.strftime('%Y-%m-%d')}, {platform.node()}, "
                        f"{platform.release()})")
    for col in ("instances", "agent", "CPU master %", "CPU backup %", "adverts heard / missed", "stray median",
                "stray p99", "longest gap", "state changes", "failed runs"):
        table.add_column(col, justify="right")
    mdi = master_down(args.advert_int, PRIORITIES["server2"])
    for count in counts:
        for agent in args.agents:
            rows = [r for r in results if r["agent"] == agent and r["instances"] == count and "failed" not in r]
            failed = sum(1 for r in results if r["agent"] == agent and r["instances"] == count and "failed" in r)
            if not rows:
                table.add_row(str(count), agent, *["-"] * 7, str(failed))
                continue
            heard = f"{sum(r['adverts'] for r in rows)} / {sum(r['missed'] for r in rows)}"
            table.add_row(str(count), agent, _spread(rows, "cpu_master", 1, "{:.1f}"),
                          _spread(rows, "cpu_backup", 1, "{:.1f}"), heard,
                          _spread(rows, "stray_median", 1000, "{:.2f} ms"),
                          _spread(rows, "stray_p99", 1000, "{:.1f} ms"),
                          _spread(rows, "longest_gap", 1000, "{:.0f} ms"),
                          str(sum(len(r["state_changes"]) for r in rows)), str(failed))
    console.print(table)
    console.print(f"A backup takes over after Master_Down_Interval = {mdi * 1000:.0f} ms without an advert.")


def _spread(rows: list[dict], key: str, scale: float, fmt: str) -> str:
    return median_spread([r[key] * scale for r in rows if r[key] is not None], fmt)


if __name__ == "__main__":
    raise SystemExit(main())
