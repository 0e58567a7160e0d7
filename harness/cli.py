"""The `halab` command: demo, run a scenario, clean up after a crashed run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

from rich.console import Console

from ha.heartbeat import fencing
from harness import active_active, cleanup, preflight
from harness.errors import HalabError
from harness.measure import median
from harness.report import RunRecord, print_summary
from harness.runstate import LabLock, RunState, leftover_states
from harness.scenarios import FAULTS, ActiveStandbyOptions, run_active_standby

SCENARIOS = {"active-standby": "two servers share a VIP through VRRPv3 (keepalived, or halab's agent); "
                                "one fault on the master",
             "active-active": "the SDN switch balances three backends; one fails under client load"}
Runner = Callable[[Path, Callable[[str], None]], RunRecord]

console = Console(stderr=False, highlight=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halab", description="A network emulation lab for high availability.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="the default Active-Standby failover, measured and plotted")
    demo.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default: runs/)")
    run = sub.add_parser("run", help="run a scenario: bring up, probe, inject the fault, report")
    run.add_argument("scenario", help=f"one of: {', '.join(SCENARIOS)}")
    run.add_argument("--fault", help=f"active-standby: {', '.join(FAULTS)} (default: link-cut); "
                                     f"active-active: {', '.join(active_active.FAULTS)} (default: backend-crash)")
    run.add_argument("--agent", default="halab", help="VRRP agent on the servers: halab (default) or keepalived")
    run.add_argument("--advert-int", type=float, default=1.0, help="VRRP advertisement interval, seconds")
    run.add_argument("--algorithm", default="consistent",
                     help=f"active-active: {', '.join(active_active.ALGORITHMS)} (default: consistent)")
    run.add_argument("--check-interval", type=float, default=0.1, help="active-active: health check interval, s")
    run.add_argument("--rate", type=float, default=100.0, help="probe requests per second (10 to 1000)")
    run.add_argument("--proto", help="probe protocol: udp or tcp (default: udp; tcp for active-active)")
    run.add_argument("--before", type=float, default=2.0, help="seconds of probing before the fault")
    run.add_argument("--after", type=float, default=None, help="seconds of probing after the fault")
    run.add_argument("--runs", type=int, default=1, help="repeat on a fresh lab and report medians")
    run.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default: runs/)")
    sub.add_parser("clean", help="remove what an interrupted or killed halab run left behind")
    for action in ("fence", "unfence"):
        f = sub.add_parser(action, help=f"{action} a host of the running lab through its controller "
                                        "(its switch ports down / up)")
        f.add_argument("host")
    sub.add_parser("scenarios", help="list the scenarios")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "scenarios":
            for name, text in SCENARIOS.items():
                console.print(f"[bold]{name}[/]: {text}")
            return 0
        if args.command == "clean":
            return _clean()
        if args.command in ("fence", "unfence"):
            return _fence(args.command, args.host)
        if args.command == "demo":
            opts = ActiveStandbyOptions()
            return _run("active-standby", opts, partial(run_active_standby, opts), runs=1, out=args.out)
        if args.scenario not in SCENARIOS:
            raise HalabError(f"There is no scenario {args.scenario!r}.",
                             f"Choose one of: {', '.join(SCENARIOS)} (`halab scenarios` lists them).")
        if not 1 <= args.runs <= 50:
            raise HalabError(f"--runs {args.runs} is out of range.", "Choose 1 to 50 runs.")
        opts, runner = _scenario(args)
        return _run(args.scenario, opts, runner, runs=args.runs, out=args.out)
    except HalabError as exc:
        console.print(f"[bold red]halab:[/] {exc.problem}\n[bold]Fix:[/] {exc.fix}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]halab: interrupted; the lab was torn down.[/]")
        return 130


def _scenario(args: argparse.Namespace) -> tuple[object, Runner]:
    """The scenario's options from the command line, and the function that runs it once."""
    if args.scenario == "active-active":
        opts = active_active.ActiveActiveOptions(
            fault=args.fault or "backend-crash", algorithm=args.algorithm, check_interval=args.check_interval,
            rate=args.rate, proto=args.proto or "tcp", before=args.before,
            after=args.after if args.after is not None else 3.0)
        return opts, partial(active_active.run_active_active, opts)
    opts = ActiveStandbyOptions(fault=args.fault or "link-cut", agent=args.agent, advert_int=args.advert_int,
                                rate=args.rate, proto=args.proto or "udp", before=args.before, after=args.after)
    return opts, partial(run_active_standby, opts)


def _run(scenario: str, opts: object, runner: Runner, runs: int, out: Path) -> int:
    preflight.check_all()
    base = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}"
    records: list[RunRecord] = []
    for i in range(1, runs + 1):
        run_dir = base if runs == 1 else base / f"run-{i}"
        label = f"run {i}/{runs}: " if runs > 1 else ""
        with console.status(f"{label}starting") as status:
            record = runner(run_dir, lambda m, s=status, lbl=label: s.update(lbl + m))
        records.append(record)
        o = record.outcome
        console.print(f"{label}outage {_fmt(o.outage)}, {o.lost} of {o.requests} requests lost "
                      f"({o.server_before} -> {o.server_after}), last failure {_fmt(o.last_failure_after, 'none')} "
                      f"after the fault; plot: {run_dir / 'timeline.png'}")
    print_summary(records, console)
    if runs > 1:
        summary = {"scenario": scenario, "options": asdict(opts),
                   "median_outage": median(r.outcome.outage for r in records),
                   "median_first_good_after": median(r.outcome.first_good_after for r in records),
                   "median_last_failure_after": median(r.outcome.last_failure_after for r in records),
                   "outages": [r.outcome.outage for r in records]}
        (base / "summary.json").write_text(json.dumps(summary, indent=1))
    console.print(f"Results in {base}/ (result.json, timeline.png, logs).")
    return 0 if all(r.outcome.recovered for r in records) else 1


def _fmt(seconds: float | None, missing: str = "not recovered") -> str:
    return missing if seconds is None else f"{seconds * 1000:.0f} ms"


def _fence(action: str, host: str) -> int:
    """Fence or unfence a host of the running lab, signed with the lab cluster's secret."""
    preflight.require_root()
    states = [RunState.load(p) for p in leftover_states()]
    running = [s for s in states if s.fence_socket]
    if not running:
        raise HalabError("No running halab lab serves fencing.",
                         "Start a lab with a cluster (the heartbeat tests or scenarios do), then fence its hosts.")
    state = running[-1]
    if host not in state.hosts:
        raise HalabError(f"The running lab has no host {host!r}.", f"Choose one of: {', '.join(sorted(state.hosts))}.")
    secret = Path(state.fence_secret_file).read_bytes().strip()
    answer = fencing.request(Path(state.fence_socket), secret, action, host, state.hosts[host])
    if not answer.get("ok"):
        raise HalabError(f"The controller did not {action} {host}: {answer.get('error')}.",
                         f"See the controller's log in the run directory; `halab {action} {host}` can be retried.")
    console.print(f"{action}d {host}: switch ports {answer['ports']}")
    return 0


def _clean() -> int:
    preflight.require_root()
    with LabLock():
        removed = cleanup.clean_leftovers()
    for line in removed:
        console.print(f"removed {line}")
    console.print("nothing to clean" if not removed else f"cleaned {len(removed)} leftover(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
