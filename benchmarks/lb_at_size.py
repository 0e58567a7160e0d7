"""Benchmark: the load balancer at size. What thousands of open connections over up to 64
backends cost the switch and the controller, whether a backend's failure under them stays in
the data plane, and how long the controller takes to push a pool change as the pool grows.

    sudo .venv/bin/python benchmarks/lb_at_size.py [--runs 5] [--backends 8,32,64] [--connections 10000]

Each round takes every size once, in an order that rotates from round to round. Each size is a
fresh Active-Active lab with two clients and the consistent-hash service on TCP:

1. Pool push: one backend is drained and put back 5 times over the controller's API; each time,
   from the request until the switch's select group shows the change (polled with ovs-ofctl:
   its call time, printed, is the resolution).
2. client1 opens `--connections` TCP connections to the VIP, asks on each who answers, and
   holds them. With them open: the connections conntrack holds in halab's zone, the OpenFlow
   rules and group buckets, the controller's resident memory and CPU, against the same before.
3. client2 opens new connections at 200/s while backend1's link is cut: the longest gap in
   answers (the outage a new client sees; the controller only notices the port going down,
   the datapath already skips the dead bucket). At the end client1 asks on every held
   connection again: kept (the same backend answered), moved (another did: must be 0; over TCP
   another backend would reset it, so it would show as lost), lost (must be exactly backend1's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from controller import conntrack
from harness import lb
from harness.errors import HalabError
from harness.faults import Faults
from harness.lab import Lab
from harness.measure import analyse, median, median_spread
from harness.probe import PORT, Request
from harness.probe import command as probe_cmd
from harness.procs import cpu_of
from topologies import ActiveActiveTopo

OFCTL = ["ovs-ofctl", "-O", "OpenFlow15"]
NEW_RATE = 200.0
DRAINS = 5
CUT = "backend1"
#: The held connections are opened, and asked again, this many at a time. All 10 000 asked at
#: once lost packets on the way: answers came up to 7 s late (TCP's retransmission backoff)
#: and some counted as lost on live backends. One whose backend is gone holds its place for the
#: probe's timeout (2 s).
AT_ONCE = 128


def group_dump() -> str:
    return subprocess.run([*OFCTL, "dump-groups", "s1"], capture_output=True, text=True, timeout=10).stdout


def push_time(lab: Lab, label: str, drained: bool, timeout: float = 5.0) -> float:
    """Seconds from the API request until the switch's group differs from before it."""
    before = group_dump()
    start = time.perf_counter()
    lb.drain(lab, "probe", label, drained=drained)
    while group_dump() == before:
        if time.perf_counter() - start > timeout:
            raise HalabError(f"the group did not change within {timeout:g} s of a drain", "See controller.log.")
    return time.perf_counter() - start


def switch_state() -> dict:
    flows = subprocess.run([*OFCTL, "--no-names", "dump-flows", "s1"], capture_output=True, text=True,
                           timeout=30).stdout
    return {"flows": sum(1 for line in flows.splitlines() if "actions=" in line),
            "buckets": group_dump().count("bucket_id:"), "conntrack": len(conntrack.dump().splitlines())}


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def controller_load(pid: int, seconds: float = 3.0) -> tuple[float, float]:
    """The controller's resident MiB, and its CPU in % of a core over `seconds`."""
    cpu = cpu_of([pid])
    time.sleep(seconds)
    return rss_mib(pid), 100 * (cpu_of([pid]) - cpu) / seconds


def one(backends: int, connections: int, run_dir: Path) -> dict:
    topo = ActiveActiveTopo(backends=backends, clients=2)
    vip = str(topo.vip.ip)
    with Lab(topo, run_dir, lb=lb.config(lb.service(topo))) as lab:
        for host in topo.hosts_with_role("backend"):
            lab.responder(host)
        lb.wait_for_pool(lab, timeout=30 + backends)
        assert lab.controller is not None and lab.controller.process is not None
        pid = lab.controller.process.pid
        label = f"{topo.addresses[CUT][0].ip}:{PORT}"
        t = time.perf_counter()
        group_dump()
        ofctl_s = time.perf_counter() - t
        pushes = [push_time(lab, label, drained) for _ in range(DRAINS) for drained in (True, False)]
        idle = {**switch_state(), **dict(zip(("rss_mib", "cpu_pct"), controller_load(pid), strict=True))}
        holder = lab.spawn("client1", "hold", probe_cmd("hold", "--target", vip, "--count", str(connections),
                                                        "--seconds", "20", "--at-once", str(AT_ONCE)))
        opened_at = time.monotonic()
        holder.wait_for("open ", timeout=300)
        opened_s = time.monotonic() - opened_at
        held = {**switch_state(), **dict(zip(("rss_mib", "cpu_pct"), controller_load(pid), strict=True))}
        out = run_dir / "new.json"
        new = lab.spawn("client2", "probe", probe_cmd("client", "--target", vip, "--proto", "tcp", "--rate",
                                                      f"{NEW_RATE:g}", "--duration", "8", "--out", str(out)))
        new.wait_for("sending", timeout=15)
        time.sleep(2)
        cut_at = Faults(lab).cut_link(CUT, "s1").at
        if "asking again" in holder.log_text():
            raise HalabError("the held connections were asked again before the cut", "Hold them longer.")
        new.popen.wait(40)
        holder.popen.wait(120)
        outcome = analyse([Request(**r) for r in json.loads(out.read_text())["requests"]], cut_at)
        kept = json.loads(holder.log_text().strip().splitlines()[-1])
    return {"backends": backends, "connections": connections, "opened": sum(kept["first"].values()),
            "open_s": opened_s, "ofctl_s": ofctl_s, "push_s": pushes, "idle": idle, "held": held,
            "new_outage_s": outcome.outage, "new_lost": outcome.lost_after_fault, "kept": kept["kept"],
            "moved": kept["moved"], "lost": kept["lost"], "lost_by_backend": kept["lost_by_backend"],
            "on_cut_backend": kept["first"].get(CUT, 0), "never": kept["never"],
            "slowest_answer_s": kept["slowest_answer_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--backends", default="8,32,64", help="sizes, comma-separated (2 to 99 each)")
    parser.add_argument("--connections", type=int, default=10_000, choices=range(1, 20_001), metavar="1..20000")
    args = parser.parse_args()
    try:
        sizes = [int(n) for n in args.backends.split(",")]
    except ValueError:
        parser.error(f"--backends {args.backends!r}: give numbers like 8,32,64")
    if not all(2 <= n <= 99 for n in sizes):
        parser.error(f"--backends {args.backends!r}: each size from 2 to 99")
    console = Console(width=200)
    out = Path("runs") / f"benchmark-lb-at-size-{time.strftime('%Y%m%d-%H%M%S')}"
    results: list[dict] = []
    for run in range(args.runs):
        order = sizes[run % len(sizes):] + sizes[:run % len(sizes)]
        for size in order:
            with console.status(f"{size} backends, {args.connections} connections, run {run + 1}/{args.runs}"):
                try:
                    results.append(one(size, args.connections, out / f"{size}-{run + 1}"))
                except (HalabError, subprocess.TimeoutExpired, ValueError, OSError) as exc:
                    results.append({"backends": size, "failed": f"{type(exc).__name__}: {exc}"})
                    console.print(f"[red]{size} backends, run {run + 1}: {exc}[/red]")
            out.mkdir(parents=True, exist_ok=True)  # after every run: a later failure loses nothing
            (out / "summary.json").write_text(json.dumps({"args": vars(args), "runs": results}, indent=1))
    print_table(console, results, sizes, args)
    console.print(f"Every run: {out / 'summary.json'}")
    return 0


def print_table(console: Console, results: list[dict], sizes: list[int], args: argparse.Namespace) -> None:
    table = Table(title=f"The load balancer at size, {args.connections} held connections: median of {args.runs} runs "
                        f"(min - max) ({time.strftime('%Y-%m-%d')}, {platform.node()}, {platform.release()})")
    for col in ("backends", "pool push", "open all", "conntrack", "rules", "buckets", "ctl RSS idle/held",
                "ctl CPU idle/held", "outage (new)", "kept/moved/lost (cut's)", "failed"):
        table.add_column(col, justify="right")
    for size in sizes:
        rows = [r for r in results if r["backends"] == size and "failed" not in r]
        failed = sum(1 for r in results if r["backends"] == size and "failed" in r)
        if not rows:
            table.add_row(str(size), *["-"] * 9, str(failed))
            continue
        pushes = [p for r in rows for p in r["push_s"]]
        table.add_row(
            str(size), median_spread([p * 1000 for p in pushes], "{:.1f} ms"),
            median_spread([r["open_s"] for r in rows], "{:.1f} s"),
            median_spread([r["held"]["conntrack"] for r in rows], "{:.0f}"),
            median_spread([r["held"]["flows"] for r in rows], "{:.0f}"),
            median_spread([r["held"]["buckets"] for r in rows], "{:.0f}"),
            f"{median(r['idle']['rss_mib'] for r in rows):.0f}/{median(r['held']['rss_mib'] for r in rows):.0f} MiB",
            f"{median(r['idle']['cpu_pct'] for r in rows):.1f}/{median(r['held']['cpu_pct'] for r in rows):.1f} %",
            median_spread([r["new_outage_s"] * 1000 for r in rows if r["new_outage_s"] is not None], "{:.0f} ms"),
            f"{sum(r['kept'] for r in rows)}/{sum(r['moved'] for r in rows)}/{sum(r['lost'] for r in rows)} "
            f"({sum(r['on_cut_backend'] for r in rows)}); exactly the cut's in "
            f"{sum(r['lost_by_backend'] == {CUT: r['on_cut_backend']} for r in rows)}/{len(rows)}", str(failed))
    console.print(table)
    ofctl = median(r["ofctl_s"] for r in results if "ofctl_s" in r)
    if ofctl is not None:
        console.print(f"One ovs-ofctl dump-groups call took {_ms(ofctl)}: the pool push is measured to about that.")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    raise SystemExit(main())
