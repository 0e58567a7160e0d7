"""halab's verbs run on the lab (their grammar: harness.verbgrammar).

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
from harness.livelab import LiveLab
from harness.verbgrammar import VerbError, VerbHelp, parser


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
