"""halab's verbs on a running lab, one grammar for the prompt and for `halab fault|vip|status|probe|capture`.

    fault link-cut HOST [SWITCH] [--for S]     fault restore [HOST [SWITCH]]   (no host: mend everything)
    fault partition A[,A..] B[,B..] [--for S]  fault heal
    fault kill|term|stop|cont HOST PROGRAM [--for S]
    fault loss HOST PERCENT [SWITCH] [--for S] fault flap HOST [SWITCH] [--period S] [--count N]
    fault crash HOST [--for S]
    vip [--json]      status [--json]      probe start|stop      capture HOST [SWITCH] | capture stop
    diagnose [--json]   why it did not fail over (harness/diagnose.py)

`execute(live, argv)` returns (exit code, text): 0 done, 2 refused (the text says why and what to type).
"""

from __future__ import annotations

import argparse
import io
import json
import traceback
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from harness import diagnose, labfacts
from harness.errors import HalabError
from harness.livelab import SIGNALS, LiveLab

VERBS = ("fault", "vip", "status", "probe", "capture", "diagnose")
FAULTS = ("link-cut", "restore", "partition", "heal", *SIGNALS, "loss", "flap", "crash")
MAX_FOR_S = 3600.0


class VerbError(Exception):
    """A verb line that does not parse: the message is argparse's, usage included."""


class VerbHelp(VerbError):  # noqa: N818 (asking for help is no error)
    """`--help`: the message is the help, and asking for it is no error."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise VerbError(f"{self.prog}: {message}\nusage: {self.format_usage().removeprefix('usage: ').strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise VerbHelp(message or self.format_help())


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_FOR_S:
        raise argparse.ArgumentTypeError(f"{text}: choose more than 0 and at most {MAX_FOR_S:g} seconds")
    return value


def _percent(text: str) -> float:
    value = float(text.removesuffix("%"))
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text}: choose 0 to 100 %")
    return value


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="halab", add_help=False)
    verbs = top.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    fault = verbs.add_parser("fault", help="break something, or mend it")
    kinds = fault.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    for name, help_ in (("link-cut", "take a host's link down"), ("crash", "a host loses power")):
        k = kinds.add_parser(name, help=help_)
        k.add_argument("host")
        if name == "link-cut":
            k.add_argument("switch", nargs="?")
        k.add_argument("--for", dest="duration", type=_seconds, help="mend it after this many seconds")
    r = kinds.add_parser("restore", help="mend a link, or with no host every standing fault")
    r.add_argument("host", nargs="?")
    r.add_argument("switch", nargs="?")
    p = kinds.add_parser("partition", help="two groups of hosts stop hearing each other")
    p.add_argument("side_a", help="hosts, comma-separated")
    p.add_argument("side_b", help="hosts, comma-separated")
    p.add_argument("--for", dest="duration", type=_seconds)
    kinds.add_parser("heal", help="end the partition")
    for action in SIGNALS:
        s = kinds.add_parser(action, help=f"SIG{SIGNALS[action].name[3:]} to an agent")
        s.add_argument("host")
        s.add_argument("program")
        s.add_argument("--for", dest="duration", type=_seconds)
    loss = kinds.add_parser("loss", help="drop a share of the frames on a host's link, each way (0: none)")
    loss.add_argument("host")
    loss.add_argument("percent", type=_percent)
    loss.add_argument("switch", nargs="?")
    loss.add_argument("--for", dest="duration", type=_seconds)
    flap = kinds.add_parser("flap", help="cut and restore a link again and again")
    flap.add_argument("host")
    flap.add_argument("switch", nargs="?")
    flap.add_argument("--period", type=float, default=0.5)
    flap.add_argument("--count", type=int, default=10)
    for name in ("vip", "status"):
        v = verbs.add_parser(name, help=f"the {name} report")
        v.add_argument("--json", action="store_true")
    d = verbs.add_parser("diagnose", help="why it did not fail over: configurations, counters, ARP, the pool")
    d.add_argument("--json", action="store_true", help="the facts read and the findings")
    pr = verbs.add_parser("probe", help="the probe `watch` follows")
    pr.add_argument("action", choices=("start", "stop"))
    cap = verbs.add_parser("capture", help="tcpdump a host's link to a pcap file in the run directory")
    cap.add_argument("host", help="a host, or `stop`")
    cap.add_argument("switch", nargs="?")
    return top


def execute(live: LiveLab, argv: list[str]) -> tuple[int, str]:
    try:
        args = parser().parse_args(argv)
        done = _run(live, args)
        if args.verb == "fault":  # the event feed of the live view shows it, whoever did it
            live.actions.write("lab", None, " ".join(argv), done.splitlines()[0])
        return 0, done
    except VerbHelp as exc:
        return 0, str(exc).strip()
    except VerbError as exc:
        return 2, str(exc).strip()
    except HalabError as exc:
        return 2, f"{exc.problem}\nFix: {exc.fix}"
    except Exception:  # a bug of halab's: say so and keep the lab, with the traceback in its run directory
        with (live.run_dir / "halab-errors.log").open("a") as log:
            log.write(f"--- {' '.join(argv)}\n{traceback.format_exc()}")
        return 1, (f"halab failed on `{' '.join(argv)}` (a bug: please report it with "
                   f"{live.run_dir / 'halab-errors.log'}); the lab is still up.")


def _run(live: LiveLab, args: argparse.Namespace) -> str:
    if args.verb == "vip":
        report = live.vip_report()
        return json.dumps(report) if args.json else vip_text(report)
    if args.verb == "status":
        report = live.status()
        return json.dumps(report, indent=1) if args.json else status_text(report)
    if args.verb == "diagnose":
        facts = labfacts.gather(live)
        if args.json:
            return json.dumps({"facts": facts, "findings": [asdict(f) for f in diagnose.findings(facts)]}, indent=1)
        return diagnose.text(facts)
    if args.verb == "probe":
        if args.action == "start":
            proc = live.start_probe()
            return f"probing {live.probe_target()} from {live.spec.probe.source}; `watch` shows it ({proc.log_path})"
        live.stop_probe()
        return "probe stopped"
    if args.verb == "capture":
        return live.stop_captures() if args.host == "stop" else live.capture(args.host, args.switch)
    return _fault(live, args)


def _fault(live: LiveLab, args: argparse.Namespace) -> str:
    kind, duration = args.kind, getattr(args, "duration", None)
    if kind == "link-cut":
        done = live.cut(args.host, args.switch)
        undo = lambda: live.restore_link(args.host, args.switch)  # noqa: E731
    elif kind == "crash":
        done = live.crash(args.host)
        undo = live.restore
    elif kind == "restore":
        return live.restore_link(args.host, args.switch) if args.host else "\n".join(live.restore())
    elif kind == "partition":
        done = live.partition(args.side_a.split(","), args.side_b.split(","))
        undo = live.heal
    elif kind == "heal":
        return live.heal()
    elif kind == "loss":
        done = live.loss(args.host, args.percent, args.switch)
        undo = lambda: live.loss(args.host, 0, args.switch)  # noqa: E731
    elif kind == "flap":
        return live.flap(args.host, args.switch, args.period, args.count)
    else:  # a signal
        done = live.signal(kind, args.host, args.program)
        undo = (lambda: live.signal("cont", args.host, args.program)) if kind == "stop" else live.restore
        if kind == "cont":
            duration = None
    if duration:
        live.later(duration, undo)
        done += f"; mended in {duration:g} s"
    return done


def vip_text(r: dict) -> str:
    holders = ", ".join(r["holders"]) or "no host (the switch answers for it)"
    answer = r["answers"] or "nobody"
    return f"{r['address']}: held by {holders}; answers {r['proto']} from {r['from']}: {answer}"


def status_text(r: dict) -> str:
    table = Table(title=f"{r['topology']} lab ({r['lab_file']})", title_justify="left")
    for col in ("host", "program", "pid", "running", "state"):
        table.add_column(col)
    for a in r["agents"]:
        table.add_row(a["host"], a["program"], str(a["pid"] or "-"), "yes" if a["running"] else "NO",
                      a.get("state", ""))
    out = io.StringIO()
    Console(file=out, width=110, force_terminal=False, color_system=None).print(table)
    f = r["faults"]
    standing = [*(f"cut {c}" for c in f["cut"]), *(f"loss {c}" for c in f["loss"]),
                *(["partition"] if f["partitioned"] else []), *(f"frozen {d}" for d in f["frozen"]),
                *(f"crashed {h}" for h in f["crashed"])]
    out.write(f"standing faults: {', '.join(standing) or 'none'}\n")
    out.write(f"probe: {'running' if r['probe']['running'] else 'stopped'}; run directory: {r['run_dir']}\n")
    return out.getvalue().rstrip()
