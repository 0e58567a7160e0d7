"""The `halab` command: demo, run a scenario, compare the architectures, clean up after a crashed run, fence a
host, count the nines."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ha.heartbeat import fencing
from harness import about, cleanup, daemons, labfile, ninescli, preflight, runpage, servers, session, verbclient
from harness.compare import command as compare
from harness.errors import HalabError
from harness.lessons import command as lessons
from harness.measure import median
from harness.report import RunRecord, print_summary
from harness.runstate import LabLock, RunState, leftover_states
from harness.scenarios import SCENARIOS
from harness.scenarios.common import add_arguments, options_from
from harness.servers import ServerPlan
from harness.verbgrammar import VERBS
from harness.web import command as webcommand
from topologies import TOPOLOGIES

MAX_RUNS = 50
Runner = Callable[[Path, Callable[[str], None]], RunRecord]

console = Console(stderr=False, highlight=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="halab", description="A network emulation lab for high availability.",
                                     epilog="Exit status: 0 done (for `run`: every run recovered), 1 a run did not "
                                            "recover, 2 a problem you can fix (the message says how).")
    parser.add_argument("--version", action="version", version=f"halab {about.version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="the default Active-Standby failover, measured and plotted")
    demo.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default: runs/)")
    run = sub.add_parser("run", help="run a scenario: bring up, probe, inject the fault, report")
    scenarios = run.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    for name, scenario in SCENARIOS.items():
        one = scenarios.add_parser(name, help=scenario.summary, description=scenario.summary)
        add_arguments(one, scenario.options)
        if "servers" in {f.name for f in fields(scenario.options)}:
            servers.add_arguments(one)
        one.add_argument("--runs", type=int, default=1, help=f"repeat on a fresh lab, 1 to {MAX_RUNS}, and report "
                                                               "medians (default: 1)")
        one.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default: runs/)")
        one.add_argument("--json", action="store_true", help="the result object on stdout (the table on stderr)")
    clean = sub.add_parser("clean", help="remove what an interrupted or killed halab run left behind")
    clean.add_argument("--forget", metavar="SERVER", action="append", default=[],
                       help="give up on what earlier runs left on SERVER (a machine gone for good); repeatable")
    for action in ("fence", "unfence"):
        f = sub.add_parser(action, help=f"{action} a host of the running lab through its controller "
                                        "(its switch ports down / up)")
        f.add_argument("host")
    sub.add_parser("scenarios", help="list the scenarios")
    report = sub.add_parser("report", help="rebuild report.html of a run directory from its result.json")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ninescli.add_parser(sub)
    compare.add_parser(sub)
    webcommand.add_parser(sub)
    lessons.add_parser(sub)
    _lab_commands(sub)
    return parser


def _lab_commands(sub: argparse._SubParsersAction) -> None:
    """up, ls, exec, cli, the verbs, down: a lab that stays up."""
    up = sub.add_parser("up", help="bring a lab up and enter its prompt (--detach: leave it in the background)")
    up.add_argument("topology", nargs="?", choices=list(TOPOLOGIES), help="a built-in lab (labs/TOPOLOGY.toml)")
    up.add_argument("-f", "--file", type=Path, help="a lab file instead of a built-in topology")
    up.add_argument("--agent", choices=("halab", "keepalived"), help="the VRRP daemon (active-standby, reference)")
    up.add_argument("--assist", action="store_true",
                    help="halab's VRRP and heartbeat agents take over as soon as the switch sees their peer's port "
                         "go down")
    up.add_argument("--lb", choices=("sdn", "haproxy"), help="who balances the VIP (active-active)")
    up.add_argument("--bw", type=float, help="Mbit/s on every link")
    up.add_argument("--delay", type=float, help="ms of delay on every host link (needs netem)")
    for count in ("backends", "clients", "web_servers"):
        up.add_argument(f"--{count.replace('_', '-')}", type=int, help="how many (where the topology has them)")
    servers.add_arguments(up)
    up.add_argument("--detach", action="store_true", help="leave the lab running in the background")
    up.add_argument("--web", action="store_true", help="serve a live view of the lab (see `halab web`)")
    webcommand.add_options(up, prefix="web-")
    up.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default: runs/)")
    up.add_argument("--hold", action="store_true", help=argparse.SUPPRESS)  # the background lab itself
    ls = sub.add_parser("ls", help="the running lab: topology, hosts, agents, since when")
    ls.add_argument("--json", action="store_true")
    sub.add_parser("exec", help="run a command in a host of the running lab: halab exec HOST -- CMD ...")
    sub.add_parser("cli", help="enter the prompt of the lab running in the background")
    sub.add_parser("down", help="stop the running lab; nothing of it is left")
    for verb in VERBS:  # parsed by harness.verbclient, as at the prompt
        sub.add_parser(verb, add_help=False, help=f"`{verb}` on the running lab, as at its prompt (`{verb} --help`)")


def expand(argv: list[str]) -> list[str]:
    """`halab run -f lab.toml --fault ...` is the lab-file scenario's short form."""
    if argv[:1] == ["run"] and argv[1:2] in (["-f"], ["--file"]):
        return ["run", "lab-file", "-f", *argv[2:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    raw = expand(sys.argv[1:] if argv is None else argv)
    if raw[:1] and raw[0] in VERBS:
        return verbclient.main(raw)
    args = _parser().parse_args(raw)
    args.raw = raw
    try:
        if args.command == "scenarios":
            for name, scenario in SCENARIOS.items():
                console.print(f"[bold]{name}[/]: {escape(scenario.summary)}")
            return 0
        if args.command == "clean":
            return _clean(args.forget)
        if args.command == "report":
            console.print(f"wrote {runpage.write(args.run_dir)}")
            return 0
        if args.command == "nines":
            return ninescli.main(args)
        if args.command == "compare":
            return compare.main(args)
        if args.command == "web":
            return webcommand.main(args)
        if args.command == "lesson":
            return lessons.main(args)
        if args.command in ("fence", "unfence"):
            return _fence(args.command, args.host)
        if args.command in LAB_COMMANDS:
            return _lab(args)
        scenario = SCENARIOS["active-standby" if args.command == "demo" else args.scenario]
        opts = scenario.options() if args.command == "demo" else options_from(args, scenario.options)
        if getattr(args, "servers", None) or getattr(args, "place", None):
            opts = replace(opts, servers=servers.override(ServerPlan(), args.servers, args.place, scenario.nodes(opts)))
        runs = 1 if args.command == "demo" else args.runs
        if not 1 <= runs <= MAX_RUNS:
            raise HalabError(f"--runs {runs} is out of range.", f"Choose 1 to {MAX_RUNS} runs.")
        return _run(scenario.name, opts, partial(scenario.run, opts), runs=runs, out=args.out,
                    as_json=getattr(args, "json", False))
    except HalabError as exc:
        print(f"halab: {exc.problem}\nFix: {exc.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("halab: interrupted; the lab was torn down.", file=sys.stderr)
        return 130


def _run(scenario: str, opts: object, runner: Runner, runs: int, out: Path, as_json: bool = False) -> int:
    """Run the scenario `runs` times. Exit status: 0 every run recovered, 1 one did not (2: a user error).
    `as_json`: the result objects on stdout, the human output on stderr."""
    out_console = Console(stderr=True, highlight=False) if as_json else console
    preflight.check_all()
    base = out / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}"
    records: list[RunRecord] = []
    for i in range(1, runs + 1):
        run_dir = base if runs == 1 else base / f"run-{i}"
        label = f"run {i}/{runs}: " if runs > 1 else ""
        with out_console.status(f"{label}starting") as status:
            record = runner(run_dir, lambda m, s=status, lbl=label: s.update(lbl + m))
        records.append(record)
        o = record.outcome
        out_console.print(f"{label}outage {_fmt(o.outage)}, {o.lost} of {o.requests} requests lost "
                      f"({o.server_before} -> {o.server_after}), last failure {_fmt(o.last_failure_after, 'none')} "
                      f"after the fault; plot: {run_dir / 'timeline.png'}")
    print_summary(records, out_console)
    if runs > 1:
        summary = {"scenario": scenario, "options": asdict(opts),
                   "median_outage": median(r.outcome.outage for r in records),
                   "median_first_good_after": median(r.outcome.first_good_after for r in records),
                   "median_last_failure_after": median(r.outcome.last_failure_after for r in records),
                   "outages": [r.outcome.outage for r in records]}
        (base / "summary.json").write_text(json.dumps(summary, indent=1))
        runpage.write(base)
    out_console.print(f"Results in {base}/ (report.html, result.json, timeline.png, logs).")
    about.give_to_sudo_user(base)
    if as_json:
        results = [json.loads((r.run_dir / "result.json").read_text()) for r in records]
        print(json.dumps(results[0] if runs == 1 else {"scenario": scenario, "runs": results}))
    return 0 if all(r.outcome.recovered for r in records) else 1


LAB_COMMANDS = ("up", "ls", "cli", "down")


def _lab(args: argparse.Namespace) -> int:
    if args.command == "up":
        return _up(args)
    if args.command == "ls":
        return session.ls(args.json)
    if args.command == "cli":
        preflight.require_root()
        return session.attach()
    return session.down()


def _up(args: argparse.Namespace) -> int:
    if (args.topology is None) == (args.file is None):
        raise HalabError("`halab up` needs a topology or a lab file (-f), not both.",
                         f"For example `sudo halab up active-standby`; built-in: {', '.join(TOPOLOGIES)}.")
    spec = labfile.with_overrides(labfile.load(args.file or labfile.builtin(args.topology)), agent=args.agent,
                                  assist=args.assist, lb=args.lb, bw=args.bw, delay=args.delay, backends=args.backends,
                                  clients=args.clients, web_servers=args.web_servers, servers=args.servers,
                                  place=args.place)
    if args.allow_faults and not args.web:
        raise HalabError("--allow-faults gives the live view its fault buttons, but there is no live view.",
                         "Add --web.")
    view = webcommand.ViewOptions(args.web_address, args.web_port, args.allow_faults) if args.web else None
    if args.detach:
        return session.up_detached([a for a in args.raw[1:] if a != "--detach"], view)
    run_dir = args.out / f"{time.strftime('%Y%m%d-%H%M%S')}-up-{spec.topology}"
    return session.up(spec, run_dir, hold=args.hold, view=view)


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


def _clean(forget: list[str]) -> int:
    preflight.require_root()
    with LabLock():
        for server in forget:
            dropped = cleanup.forget_server(server)
            console.print(escape(f"forgot {', '.join(dropped)}" if dropped else f"no run's record names {server}"))
        removed = cleanup.clean_leftovers()
        strays = daemons.running()  # with the lock held, no lab is running: these outlived theirs
    for line in removed:
        console.print(f"removed {escape(line)}")
    console.print("nothing to clean" if not removed else f"cleaned {len(removed)} leftover(s)")
    # What no run recorded is not halab's to kill; say where it is.
    for line in strays:
        console.print(f"still running, started by no recorded halab run: {escape(line)} (stop it with "
                      f"`kill {line.split()[0]}` if it is yours)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
