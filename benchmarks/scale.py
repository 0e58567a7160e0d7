"""Benchmark: how halab's cost grows with the lab — bring-up and teardown time, memory, kernel
objects and idle CPU of an Active-Active lab of 2, 8, 32 and 64 backends behind the switch, or
of an Active-Standby lab of 1, 4 and 16 VRRP pairs side by side.

    sudo .venv/bin/python benchmarks/scale.py [--runs 5] [--sizes 2,8,32,64] [--idle 5]
    sudo .venv/bin/python benchmarks/scale.py --lab active-standby [--sizes 1,4,16]

Each round brings every size up once, in an order that rotates from round to round (so that
drift and warm caches hit every size alike), from the command line as a user types it:
`halab up -f LAB --detach` until it returns (the probe's host has had an answer from the VIP),
then, with the lab idle, what it holds:

- the resident memory (RSS) of every process the lab started (the lab's own process and its
  descendants: host shells, agents, responders, the controller), and how much Open vSwitch's
  daemon grew over its size before the lab;
- kernel objects: network namespaces, veth interfaces, OVS ports; the OpenFlow rules and groups the
  balancer installed;
- the CPU the lab's processes and Open vSwitch's daemon use over `--idle` seconds doing nothing;

then `halab down` until it returns. A size that does not come up is recorded with what `halab up`
said, and left out of the figures. Medians, min and max per size, the least-squares line of
each figure against the size (what one more backend, or pair, costs), a plot and summary.json
in runs/benchmark-scale-<date>/.

The Active-Standby lab of N pairs is the built-in one with `pairs = N`: pair k (server 2k-1 at
priority 200, server 2k at 100) shares its own VIP with VRRP, advert_int 1 s, as the first pair
does in the built-in file.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import tomli_w
from rich.console import Console
from rich.table import Table

from harness.labfile import builtin
from harness.labinfo import read_descriptor
from harness.measure import median
from harness.procs import cpu_of, descendants, vswitchd
from topologies import ActiveStandbyTopo

HALAB = [sys.executable, "-m", "harness.entry"]
PAGE = os.sysconf("SC_PAGE_SIZE")


class HalabFailedError(Exception):
    """`halab up` or `down` failed: the size did not come up (its words are kept)."""


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    took = time.perf_counter() - t
    if done.returncode != 0:
        said = done.stderr.strip()
        raise HalabFailedError(said.splitlines()[0] if said else f"exit {done.returncode}")
    return took


#: Each lab this benchmark grows: what its size counts, and the sizes by default.
LABS = {"active-active": ("backends", "2,8,32,64"), "active-standby": ("pairs", "1,4,16")}


def lab_file(lab: str, size: int, folder: Path, check_interval: float | None) -> Path:
    """The built-in lab at `size` (backends, or VRRP pairs each with a VIP of its own), with the
    balancer's health checks every `check_interval` (None: the lab's own)."""
    raw = tomllib.loads(builtin(lab).read_text())
    raw.setdefault("options", {})[LABS[lab][0]] = size
    if lab == "active-standby":
        raw["agent"] = [a for a in raw["agent"] if a["program"] != "halab-vrrp"] + vrrp_pairs(raw["agent"], size)
    elif check_interval is not None:
        raw.setdefault("lb", {})["check_interval"] = check_interval
    path = folder / f"{lab}-{size}.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def vrrp_pairs(agents: list[dict], pairs: int) -> list[dict]:
    """The built-in pair's two VRRP agents, once for every pair: its servers, interfaces, VIP and
    virtual router id."""
    first = {a["hosts"][0]: a for a in agents if a["program"] == "halab-vrrp"}
    out = []
    for pair in range(1, pairs + 1):
        for role, host in (("server1", f"server{2 * pair - 1}"), ("server2", f"server{2 * pair}")):
            config = copy.deepcopy(first[role]["config"])
            for inst in config["vrrp_instance"]:
                inst["interface"] = f"{host}-eth0"
                inst["virtual_router_id"] += pair - 1
                inst["virtual_ipaddress"] = [str(ActiveStandbyTopo.pair_vip(pair))]
            out.append({**first[role], "hosts": [host], "config": config})
    return out


def rss(pid: int) -> int:
    """Resident bytes (0 for a process that is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def kernel_objects() -> dict[str, int]:
    namespaces = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                namespaces.add(os.readlink(f"/proc/{entry}/ns/net"))
            except OSError:
                continue
    veths = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True).stdout
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    ports = sum(len(subprocess.run(["ovs-vsctl", "list-ports", br], capture_output=True, text=True).stdout.split())
                for br in bridges)
    flows = groups = 0
    for br in bridges:  # what the balancer installed: its rules, and a select group per service
        ofctl = ["ovs-ofctl", "-O", "OpenFlow13"]
        flows += len(subprocess.run([*ofctl, "dump-flows", br], capture_output=True, text=True).stdout.splitlines()[1:])
        groups += subprocess.run([*ofctl, "dump-groups", br], capture_output=True, text=True).stdout.count("group_id=")
    return {"netns": len(namespaces), "veths": len(veths.splitlines()), "ovs_ports": ports, "flows": flows,
            "groups": groups}


def one(path: Path, idle: float, before: dict) -> dict:
    """One size's figures, or {"failed": what `halab up` said} (it cleans up after itself)."""
    try:
        up = timed([*HALAB, "up", "-f", str(path), "--detach"])
    except HalabFailedError as exc:
        return {"failed": str(exc)}
    try:
        time.sleep(1.0)  # the agents' first health checks and the probe's first seconds are start-up, not idle
        lab = read_descriptor()
        assert lab is not None
        ovs = vswitchd()
        tree = descendants(lab["pid"])
        objects = kernel_objects()
        lab_cpu, ovs_cpu = cpu_of(tree), cpu_of([ovs] if ovs else [])
        time.sleep(idle)
        lab_cpu = cpu_of(descendants(lab["pid"])) - lab_cpu
        ovs_cpu = cpu_of([ovs] if ovs else []) - ovs_cpu
        figures = {"up_s": up, "processes": len(tree), "rss_mib": sum(map(rss, tree)) / 2**20,
                   "ovs_rss_growth_mib": ((rss(ovs) if ovs else 0) - before["ovs_rss"]) / 2**20,
                   "idle_cpu_pct": 100 * lab_cpu / idle, "ovs_idle_cpu_pct": 100 * ovs_cpu / idle,
                   **{k: v - before[k] for k, v in objects.items()}}
    finally:
        down = timed([*HALAB, "down"])
    return {**figures, "down_s": down}


FIGURES = {"up_s": ("bring-up", "s"), "down_s": ("teardown", "s"), "rss_mib": ("RSS of the lab's processes", "MiB"),
           "ovs_rss_growth_mib": ("Open vSwitch daemon's growth", "MiB"), "processes": ("processes", ""),
           "netns": ("network namespaces", ""), "veths": ("veth interfaces", ""), "ovs_ports": ("OVS ports", ""),
           "flows": ("OpenFlow rules", ""), "groups": ("OpenFlow groups", ""),
           "idle_cpu_pct": ("idle CPU, the lab's processes", "% of a core"),
           "ovs_idle_cpu_pct": ("idle CPU, Open vSwitch daemon", "% of a core")}


def plot(lab: str, sizes: list[int], medians: dict[int, dict[str, float]], out: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("up_s", "down_s"), ("rss_mib", "ovs_rss_growth_mib"), ("netns", "veths", "ovs_ports", "flows"),
              ("idle_cpu_pct", "ovs_idle_cpu_pct")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, keys in zip(axes.flat, panels, strict=True):
        for key in keys:
            ax.plot(sizes, [medians[n][key] for n in sizes], marker="o", label=FIGURES[key][0])
        ax.set_xlabel(LABS[lab][0])
        ax.set_ylabel(FIGURES[keys[0]][1] or "count")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"halab: the {lab} lab's cost against its size (medians)")
    fig.tight_layout()
    path = out / "scale.png"
    fig.savefig(path, dpi=100)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--lab", choices=list(LABS), default="active-active", help="the lab to grow")
    parser.add_argument("--sizes", help="backends (active-active, 1 to 99 each; default 2,8,32,64) or pairs "
                                        "(active-standby, 1 to 49; default 1,4,16), comma-separated")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle to take the CPU over (1 to 60)")
    parser.add_argument("--check-interval", type=float, help="the balancer's health-check interval, seconds "
                                                              "(default: the lab's, 0.1)")
    args = parser.parse_args()
    try:
        sizes = sorted({int(n) for n in (args.sizes or LABS[args.lab][1]).split(",")})
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: give numbers, e.g. {LABS[args.lab][1]}")
    noun, most = LABS[args.lab][0], ActiveStandbyTopo.MAX_PAIRS if args.lab == "active-standby" else 99
    if args.check_interval is not None and args.lab != "active-active":
        parser.error("--check-interval is the balancer's: it applies to --lab active-active")
    if not all(1 <= n <= most for n in sizes) or not 1 <= args.idle <= 60:
        parser.error(f"--sizes: 1 to {most} {noun} each; --idle: 1 to 60 s")
    if os.geteuid() != 0:
        parser.error("run it as root (sudo): it brings labs up")
    results: dict[int, list[dict]] = {n: [] for n in sizes}
    with tempfile.TemporaryDirectory(prefix="halab-scale-") as tmp:
        files = {n: lab_file(args.lab, n, Path(tmp), args.check_interval) for n in sizes}
        for r in range(args.runs):
            order = sizes[r % len(sizes):] + sizes[:r % len(sizes)]
            for n in order:
                ovs = vswitchd()
                before = {"ovs_rss": rss(ovs) if ovs else 0, **kernel_objects()}
                results[n].append(one(files[n], args.idle, before))
                print(f"round {r + 1}/{args.runs}: {n} {noun}: "
                      + (f"up {results[n][-1]['up_s']:.1f} s" if "up_s" in results[n][-1] else "did not come up"),
                      file=sys.stderr)
    ok = {n: [run for run in results[n] if "failed" not in run] for n in sizes}
    for n in sizes:
        if len(ok[n]) < len(results[n]):
            reasons = sorted({run["failed"] for run in results[n] if "failed" in run})
            print(f"{n} {noun}: {len(results[n]) - len(ok[n])} of {len(results[n])} bring-ups failed: "
                  f"{'; '.join(reasons)}", file=sys.stderr)
    sizes = [n for n in sizes if ok[n]]
    if not sizes:
        raise SystemExit("no size came up")
    medians = {n: {k: median([run[k] for run in ok[n]]) for k in FIGURES} for n in sizes}
    table = Table(title=f"halab at scale: {args.lab}, {args.runs} runs per size (median, min-max)")
    table.add_column("figure")
    for n in sizes:
        table.add_column(f"{n} {noun}")
    table.add_column(f"per {noun[:-1]}")
    fits = {}
    for key, (name, unit) in FIGURES.items():
        if len(sizes) > 1:  # least squares: what one more backend (pair) costs, and the lab without any
            fits[key] = statistics.linear_regression([float(n) for n in sizes], [medians[n][key] for n in sizes])
        per = f"{fits[key][0]:.3g} {unit}".strip() if key in fits else ""
        table.add_row(f"{name} ({unit})" if unit else name,
                      *[f"{medians[n][key]:.3g} ({min(x[key] for x in ok[n]):.3g}-"
                        f"{max(x[key] for x in ok[n]):.3g})" for n in sizes], per)
    Console().print(table)
    out = Path("runs") / f"benchmark-scale-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    picture = plot(args.lab, sizes, medians, out)
    (out / "summary.json").write_text(json.dumps({
        "lab": args.lab, "size_is": noun, "sizes": sizes, "runs": {str(n): runs for n, runs in results.items()},
        "medians": {str(n): medians[n] for n in sizes},
        "per_unit": {k: {"slope": s, "intercept": i} for k, (s, i) in fits.items()}, "idle_s": args.idle,
        "check_interval": args.check_interval,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "memory_gib": os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30}}, indent=1))
    print(f"summary: {out / 'summary.json'}\nplot: {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
