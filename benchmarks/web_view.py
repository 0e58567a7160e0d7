"""Benchmark: what the live view costs, and how late it shows a change.

    sudo .venv/bin/python benchmarks/web_view.py [--runs 5] [--rate 1000]

One active-standby lab (halab's VRRP, advert_int 1 s) whose probe sends --rate UDP requests a
second. Rounds alternate (interleaved) between the view running with a page open in Debian's
chromium (headless) and no view at all; in each, the master's link is cut, the outage is measured
from the probe's own log, and the link is restored. Reported, medians and spread over --runs:
- how long after an agent logged a change of state the page showed it (the page's clock and the
  lab's are this machine's), over every change seen in the rounds with the view;
- the outage with and without the view (it must not change);
- CPU, in per cent of the whole machine (all cores): the view's server, and the browser, over a
  quiet stretch of --quiet seconds with the page open at --rate.

Everything goes to runs/benchmark-web-<date>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import livemeasure
from harness.labinfo import control_socket
from harness.measure import median

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.lab.browser import chromium  # noqa: E402  (the same browser as the tests)

HALAB = [sys.executable, "-m", "harness.entry"]
TICK = os.sysconf("SC_CLK_TCK")
WATCH_S = 10.0
console = Console(stderr=True, highlight=False)


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark: {what} did not happen within {timeout:g} s")
        time.sleep(0.05)


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / TICK


def browser_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and _comm(p).startswith(("chromium", "chrome", "headless_shell"))]


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="cuts with the view, and as many without")
    parser.add_argument("--rate", type=float, default=1000.0, help="the probe's requests per second")
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds of the CPU measurement")
    args = parser.parse_args()
    out = REPO / "runs" / f"benchmark-web-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    lab = out / "lab.toml"
    lab.write_text((REPO / "labs" / "active-standby.toml").read_text().replace("rate = 20", f"rate = {args.rate:g}"))
    up = subprocess.run([*HALAB, "up", "-f", str(lab), "--detach", "--out", str(out)], capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit(up.stderr)
    outages: dict[str, list[float | None]] = {"with the view": [], "without": []}
    latencies: list[float] = []
    cpu: dict[str, float] = {}
    try:
        livemeasure.probe_log(control_socket())  # starts the probe
        for i in range(args.runs):
            for mode in (("with the view", "without") if i % 2 == 0 else ("without", "with the view")):
                console.print(f"round {i + 1}/{args.runs}: {mode}")
                if mode == "without":
                    outages[mode].append(livemeasure.measure(control_socket(), "link-cut server1", WATCH_S).outage)
                    continue
                with View() as view:
                    outages[mode].append(livemeasure.measure(control_socket(), "link-cut server1", WATCH_S).outage)
                    latencies += [e["ms"] for e in view.driver.execute_script("return window.halab.latencies")
                                  if e["source"] in ("halab-vrrp", "halab")]
        with View() as view:
            time.sleep(2.0)
            pids = {"view (server)": [view.process.pid], "browser": browser_pids()}
            before = {k: cpu_seconds(v) for k, v in pids.items()}
            started = time.monotonic()
            time.sleep(args.quiet)
            spent = time.monotonic() - started
            cpu = {k: (cpu_seconds(v) - before[k]) / spent / os.cpu_count() * 100 for k, v in pids.items()}
            frames = view.driver.execute_script("return window.halab.messages")
    finally:
        subprocess.run([*HALAB, "down"], capture_output=True)
    summary = {"rate": args.rate, "runs": args.runs, "cpu_percent_of_machine": cpu, "page_messages": frames,
               "latency_ms": {"median": median(latencies), "max": max(latencies, default=None), "n": len(latencies),
                              "all": latencies},
               "outage_s": {m: {"median": median([o for o in v if o is not None]), "all": v}
                            for m, v in outages.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    table = Table(title=f"the live view at {args.rate:g} requests/s ({args.runs} cuts each way)")
    for col in ("measure", "value"):
        table.add_column(col)
    table.add_row("change -> page, median (max), ms", f"{median(latencies):.0f} ({max(latencies):.0f}), "
                                                      f"{len(latencies)} changes")
    for mode, v in summary["outage_s"].items():
        shown = ", ".join("never" if o is None else f"{o * 1000:.0f}" for o in v["all"])
        table.add_row(f"outage {mode}, median ms", f"{v['median'] * 1000:.0f}  ({shown})")
    for k, v in cpu.items():
        table.add_row(f"CPU {k}, % of the machine", f"{v:.1f}")
    Console().print(table)
    console.print(f"summary: {out / 'summary.json'}")
    return 0


class View:
    """`halab web` with a page open in chromium, for one round."""

    def __enter__(self) -> View:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.process = subprocess.Popen([*HALAB, "web", "--port", str(port)], stdout=subprocess.PIPE, text=True,
                                        cwd=REPO)
        assert self.process.stdout is not None
        url = self.process.stdout.readline().split()[-1]
        self.driver = chromium()
        self.driver.get(url)
        wait(lambda: self.driver.execute_script("return window.halab.answering") == "server1", 15, "the page")
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.quit()
        self.process.terminate()
        self.process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
