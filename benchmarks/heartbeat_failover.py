"""Benchmark: the heartbeat agent's client-visible failover, against VRRP, and its false failovers.

    sudo .venv/bin/python benchmarks/heartbeat_failover.py [--runs 3] [--load-seconds 60]
    sudo .venv/bin/python benchmarks/heartbeat_failover.py --settings heartbeat-assist halab-vrrp-assist keepalived \
        --load-seconds 0

Part 1, failover. On the cluster topology (node1 active, node2 standby, a client probing the
VIP with 1000 UDP requests/s), node1 crashes (every process killed, every link down). Compared
in the same run, setting by setting, the agents taking turns: halab's heartbeat agent at
heartbeat intervals 1 s, 100 ms and 20 ms with deadtime 3 intervals and with phi accrual
(threshold 8); halab's VRRP agent and keepalived at the same advert intervals. Medians over
--runs, and the ratio to keepalived at the same interval. The -assist settings run the agent with
failover assist: the switch's controller tells the standby when node1's ports go down.

Part 2, false failovers. Both agents run for --load-seconds with both CPUs kept busy (two
spinning processes that stop by themselves), no fault at all: every takeover by node2 is false.
--load-seconds 0 leaves part 2 out.

Everything goes to runs/benchmark-heartbeat-<date>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import probe
from harness.daemons import HalabHeartbeat
from harness.daemons.heartbeat import PRIORITIES, node_config
from harness.daemons.vrrp import VRRP_DAEMONS, instance
from harness.faults import Faults
from harness.lab import Lab
from harness.measure import analyse, median, ratio
from harness.probe import Request
from topologies import ClusterTopo

VIP = "10.0.0.100"
RATE = 1000.0
#: Each setting: the agent, its detector (heartbeat), and whether the controller assists it.
SETTINGS = {"heartbeat-deadtime": ("heartbeat", "deadtime", False), "heartbeat-phi": ("heartbeat", "phi", False),
            "halab-vrrp": ("halab-vrrp", None, False), "keepalived": ("keepalived", None, False),
            "heartbeat-assist": ("heartbeat", "deadtime", True), "halab-vrrp-assist": ("halab-vrrp", None, True)}
DEFAULT_SETTINGS = ["heartbeat-deadtime", "heartbeat-phi", "halab-vrrp", "keepalived"]


def start_agents(lab: Lab, agent: str, interval: float, detector: str | None, assist: bool = False) -> list:
    if agent == "heartbeat":
        return [HalabHeartbeat(lab, node, node_config(lab, node, interval, detector=detector or "deadtime")).start()
                for node in PRIORITIES]
    daemon = VRRP_DAEMONS["halab" if agent == "halab-vrrp" else "keepalived"]
    return [daemon(lab, node, instance(lab.topo, node, prio, interval, assist=assist)).start()
            for node, prio in PRIORITIES.items()]


def failover(run_dir: Path, setting: str, interval: float) -> float | None:
    """One fresh lab: node1 serves, it crashes, the client's outage in seconds (None: never back)."""
    agent, detector, assist = SETTINGS[setting]
    with Lab(ClusterTopo(), run_dir, fencing=True, assist=assist) as lab:
        for node in PRIORITIES:
            lab.responder(node)
        start_agents(lab, agent, interval, detector, assist)
        lab.wait_for_answer("client1", VIP, timeout=10 * interval + 15, expect="node1")
        after = 6 * interval + 2
        out = run_dir / "probe.json"
        client = lab.spawn("client1", "probe", probe.command(
            "client", "--target", VIP, "--proto", "udp", "--rate", f"{RATE:g}", "--duration", f"{1 + after:g}",
            "--out", str(out)))
        client.wait_for("sending", timeout=15)
        time.sleep(1)
        fault = Faults(lab).crash_host("node1")
        client.popen.wait(timeout=after + 30)
        requests = [Request(**r) for r in json.loads(out.read_text())["requests"]]
    return analyse(requests, fault.at).outage


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def false_failovers(run_dir: Path, interval: float, detector: str, seconds: float) -> int:
    """Takeovers by node2 while nothing fails and both CPUs are busy."""
    with Lab(ClusterTopo(), run_dir, fencing=True) as lab:
        for node in PRIORITIES:
            lab.responder(node)
        agents = start_agents(lab, "heartbeat", interval, detector)
        lab.wait_for_answer("client1", VIP, timeout=20, expect="node1")
        load = [multiprocessing.Process(target=spin, args=(seconds,)) for _ in range(multiprocessing.cpu_count())]
        for p in load:
            p.start()
        for p in load:
            p.join(seconds + 10)
        return sum(1 for e in agents[1].events() if e.subject == "node2" and e.state == "ACTIVE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1, 0.02])
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, choices=list(SETTINGS))
    args = parser.parse_args()
    console = Console()
    base = Path("runs") / f"benchmark-heartbeat-{time.strftime('%Y%m%d-%H%M%S')}"
    outages: dict[str, list[float | None]] = {}
    for interval in args.intervals:
        for i in range(args.runs):
            for setting in args.settings:
                key = f"{setting}@{interval:g}"
                console.log(f"{key}: run {i + 1}/{args.runs}")
                outages.setdefault(key, []).append(failover(base / f"{key}-{i + 1}", setting, interval))
    false: dict[str, int] = {}
    for interval in args.intervals if args.load_seconds > 0 else []:
        for detector in ("deadtime", "phi"):
            key = f"heartbeat-{detector}@{interval:g}"
            console.log(f"{key}: {args.load_seconds:g} s under CPU load")
            false[key] = false_failovers(base / f"load-{key}", interval, detector, args.load_seconds)
    table = Table(title=f"Client-visible failover on a node crash, medians of {args.runs} runs; false failovers "
                        f"in {args.load_seconds:g} s of full CPU load")
    for col in ("interval", "agent", "outage", "vs keepalived", f"false failovers / {args.load_seconds:g} s"):
        table.add_column(col, justify="right")
    medians = {key: median(values) for key, values in outages.items()}
    for interval in args.intervals:
        base_line = medians.get(f"keepalived@{interval:g}")
        for setting in args.settings:
            key = f"{setting}@{interval:g}"
            m = medians[key]
            r = ratio(m, base_line)
            table.add_row(f"{interval:g} s", key.split("@")[0], "-" if m is None else f"{m * 1000:.0f} ms",
                          "-" if r is None else f"{r:.2f}", str(false.get(key, "")))
    console.print(table)
    base.mkdir(parents=True, exist_ok=True)
    (base / "summary.json").write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.node()} {platform.machine()} {platform.release()}",
        "outages": outages, "medians": medians, "false_failovers": false, "load_seconds": args.load_seconds,
        "python": sys.version.split()[0]}, indent=1))
    console.print(f"Written to {base / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
