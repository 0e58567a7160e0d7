"""`halab compare`: run the plan, print the table (Korean or English), write compare.json, the
plots and compare.html (both languages) into one run directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import about, nines, preflight
from harness.compare import page, plan, runner
from harness.compare.table import TEXT, rows
from harness.errors import HalabError
from harness.lang import LANGS, default_lang
from harness.loadcurve import check_loads

MAX_RUNS = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="the course notes' comparison table, measured: Active-Active against "
                                       "Active-Standby, row by row, with a verdict")
    p.add_argument("--quick", action="store_true", help="one run of each, a short sweep (about 90 s; for a class)")
    p.add_argument("--runs", type=int, help=f"fresh labs per architecture and fault, 1 to {MAX_RUNS} "
                                            f"(default: {plan.DEFAULT.runs}, with --quick {plan.QUICK.runs})")
    p.add_argument("--lang", choices=LANGS, default=default_lang(), help="the table's language (default: the locale's)")
    p.add_argument("--agent", choices=("halab", "keepalived"), default="halab", help="Active-Standby's VRRP daemon")
    p.add_argument("--lb", choices=("sdn", "haproxy"), default="sdn", help="Active-Active's balancer")
    p.add_argument("--loads", type=_loads, metavar="L1,L2,...",
                   help=f"the sweep's offered loads, requests/s (one server serves {plan.PER_SERVER:g}/s; default: "
                        f"{','.join(f'{x:g}' for x in plan.DEFAULT.loads)})")
    p.add_argument("--json", action="store_true", help="compare.json on stdout (the progress and table on stderr)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="where the run directory goes (default: runs/)")


def _loads(text: str) -> tuple[float, ...]:
    try:
        loads = tuple(sorted(float(x) for x in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers like 100,200,300") from None
    if len(loads) < 2:
        raise argparse.ArgumentTypeError("give at least two loads, like 100,200,300")
    return loads


def main(args: argparse.Namespace) -> int:
    chosen = plan.QUICK if args.quick else plan.DEFAULT
    if args.runs is not None and not 1 <= args.runs <= MAX_RUNS:
        raise HalabError(f"--runs {args.runs} is out of range.", f"Choose 1 to {MAX_RUNS}.")
    if args.loads is not None:
        check_loads(args.loads)
    chosen = replace(chosen, runs=args.runs or chosen.runs, loads=args.loads or chosen.loads)
    preflight.check_all()
    console = Console(stderr=args.json, highlight=False)
    out = args.out / f"{time.strftime('%Y%m%d-%H%M%S')}-compare"
    started = time.monotonic()
    with console.status("starting") as status:
        figures, dirs = runner.run(chosen, args.agent, args.lb, out, lambda m: status.update(m))
    table = {lang: rows(figures, lang) for lang in LANGS}
    notes = [f"{plan.WORKERS} requests at a time, {plan.SERVICE_S * 1000:g} ms each: {plan.PER_SERVER:g} requests/s "
             f"per server; probe TCP at {plan.PROBE_RATE:g} requests/s; {chosen.runs} run(s) of each fault; agent "
             f"{args.agent}, balancer {args.lb}; availability assumes an MTBF of {nines.MTBF_HOURS:g} h per server "
             f"and an MTTR of {nines.MTTR_HOURS:g} h",
             f"took {time.monotonic() - started:.0f} s"]
    images = page.plots(figures, out)
    result = {"schema_version": about.SCHEMA_VERSION, "about": {"versions": about.tool_versions()},
              "plan": asdict(chosen), "agent": args.agent, "lb": args.lb, "figures": figures,
              "rows": {lang: [asdict(r) for r in table[lang]] for lang in LANGS}, "notes": notes}
    (out / "compare.json").write_text(json.dumps(result, indent=1, default=str))
    html_path = page.write_html(table, images, dirs, notes, out)
    _print(table[args.lang], args.lang, console)
    console.print(f"{notes[0]}; {notes[1]}.\nPlots and the page (both languages): {html_path}")
    about.give_to_sudo_user(out)
    if args.json:
        print(json.dumps(result, default=str), file=sys.stdout)
    return 0


def _print(table: list, lang: str, console: Console) -> None:
    t = Table(title=TEXT["title"][lang], show_lines=True)
    for col in TEXT["columns"][lang]:
        t.add_column(col)
    for r in table:
        t.add_row(r.name, r.claim_aa, r.measured_aa, r.claim_as, r.measured_as,
                  f"[bold]{TEXT['verdicts'][lang][r.verdict]}[/]: {r.why}")
    console.print(t)
