"""`halab nines`: the result files of earlier runs turned into a yearly downtime and its nines.

Every figure printed is either measured (and the file it comes from is named) or an input (a flag or
its default, named as such). The arithmetic is harness/nines.py; this reads, checks and prints.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import nines
from harness.about import SCHEMA_VERSION
from harness.errors import HalabError
from harness.measure import median
from harness.probe import Request

MAX_RESULT_BYTES = 64 * 2**20
STANDARD = (99.9, 99.99, 99.999)
#: Options that only set how the probe looked, not what was measured: runs differing in them group together.
PROBE_ONLY = ("rate", "before", "after", "master")
#: Options that name the architecture: always shown in a group's name.
NAMED = ("file", "agent", "manager", "replication", "algorithm", "detector", "fault")
HOW = ("Give a run directory of `halab run` (runs/<date>-<scenario>/), its result.json, or a `--runs N` "
       "directory (summary.json and run-*/result.json).")
_MISSING = object()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("nines", help="yearly downtime and nines from measured outages; availability budgets",
                       description="Measured failovers (the result.json of earlier runs) and a failure rate "
                                   "turned into yearly downtime, availability and nines. With no argument: "
                                   "the budgets of 99.9, 99.99 and 99.999 %.")
    p.add_argument("results", nargs="*", type=Path, metavar="RESULT",
                   help="a run directory, a result.json, or a --runs directory")
    p.add_argument("--availability", type=float, action="append", metavar="PERCENT",
                   help="print the yearly and monthly budget of this target (repeatable)")
    p.add_argument("--mtbf", type=float, metavar="HOURS",
                   help=f"mean time between failures of one server (default: {nines.MTBF_HOURS:g} h, one a year; "
                        "illustrative)")
    p.add_argument("--mttr", type=float, metavar="HOURS",
                   help=f"mean time to repair one server (default: {nines.MTTR_HOURS:g} h; illustrative)")
    p.add_argument("--series", action="store_true", help="every group given needed at once (web tier x DB tier)")
    p.add_argument("--json", action="store_true", help="the same as JSON on stdout")


# --- reading result files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What one result.json measured, as much as the availability model needs."""

    file: Path
    scenario: str
    options: dict            # the options that set what was measured (not the probe's rate or length)
    outage: float | None     # None: not recovered before the probe ended
    equivalent: float
    serving: int
    servers: int
    rpo: nines.Rpo | None    # a database tier's verdict


def result_files(path: Path) -> list[Path]:
    """A result.json, a run directory, or a `--runs N` directory's run-*/result.json."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise HalabError(f"{path}: no such file or directory.", HOW)
    if (path / "result.json").is_file():
        return [path / "result.json"]
    runs = sorted(path.glob("run-*/result.json"), key=lambda p: (len(p.parent.name), p.parent.name))
    if runs:
        return runs
    inside = sorted(path.glob("*/result.json"))
    if inside:
        raise HalabError(f"{path}: no result.json in it; {len(inside)} of its folders hold one.",
                         f"Name them: `halab nines {path}/*/`.")
    raise HalabError(f"{path}: no result.json in it, nor run-*/result.json.", HOW)


def read_json(file: Path) -> dict:
    """The file's JSON object, its size bounded."""
    try:
        with file.open("rb") as f:
            raw = f.read(MAX_RESULT_BYTES + 1)
    except OSError as exc:
        raise HalabError(f"{file}: cannot be read ({exc.strerror}).", HOW) from None
    if len(raw) > MAX_RESULT_BYTES:
        raise HalabError(f"{file}: more than {MAX_RESULT_BYTES // 2**20} MiB, too large for a result file.",
                         f"Give the result.json that `halab run` wrote. {HOW}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 and huge numbers too; nesting past the stack
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise HalabError(f"{file}: not JSON{where}.", f"Give the result.json that `halab run` wrote. {HOW}") from None
    if not isinstance(data, dict):
        raise HalabError(f"{file}: a JSON {type(data).__name__}, not the object of a result file.", HOW)
    return data


def _get(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data.get(part, _MISSING) if isinstance(data, dict) else _MISSING
    return data


#: No probe sends more than this many requests in a run (1000/s for well over a day).
MAX_COUNT = 10**8


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Checked:
    """A result file's fields, each refused with the file, the key and the value when it is not what
    this halab writes."""

    def __init__(self, file: Path, data: dict) -> None:
        self.file, self.data = file, data
        self.scenario = data.get("scenario")

    def bad(self, key: str, value: Any, expected: str) -> HalabError:
        shown = "missing" if value is _MISSING else f"{value!r}"[:60]
        again = f"`halab run {self.scenario}`" if isinstance(self.scenario, str) else "the scenario"
        return HalabError(f"{self.file}: {key} is {shown}, not {expected}.",
                          f"The file was changed or cut short: run {again} again and give its result.")

    def get(self, key: str, expected: str, ok: Callable[[Any], object], within: tuple[str, dict] | None = None) -> Any:
        """The value at `key` (dotted), or the error naming it; `within`: (its name, the object) for a
        key inside a list item."""
        value = _get(self.data if within is None else within[1], key)
        if value is _MISSING or not ok(value):
            raise self.bad(key if within is None else f"{within[0]}.{key}", value, expected)
        return value


def load(file: Path) -> Run:
    """One result.json, checked: its schema version first, then every field the model reads."""
    data = read_json(file)
    version = data.get("schema_version", _MISSING)
    if version != SCHEMA_VERSION:
        shown = "missing" if version is _MISSING else repr(version)
        wrote = _get(data, "about.versions.halab")
        by = f" (the halab {wrote} that wrote it)" if isinstance(wrote, str) else ""
        raise HalabError(f"{file}: schema_version is {shown}; this halab reads result files of version "
                         f"{SCHEMA_VERSION}.",
                         f"Run the scenario again with this halab, or read the file with the halab that wrote it{by}.")
    c = _Checked(file, data)
    scenario = c.get("scenario", "a scenario name", lambda v: isinstance(v, str) and v)
    options = c.get("options", "an object", lambda v: isinstance(v, dict))
    rate = c.get("options.rate", "a rate above 0", lambda v: _number(v) and v > 0)
    fault_at = c.get("fault.at", "a time", _number)
    outage = c.get("outcome.outage", "seconds or null", lambda v: v is None or (_number(v) and v >= 0))
    lost = c.get("outcome.lost_after_fault", "a count", _count)
    timeline = c.get("timeline", "a list of requests", lambda v: isinstance(v, list))
    requests = [_request(c, i, r) for i, r in enumerate(timeline)]
    by_seq = {r.seq: r for r in requests}
    rpo = None
    if "database" in data:
        ids = c.get("database.verdict.acknowledged_lost", "a list of write ids",
                    lambda v: isinstance(v, list) and all(isinstance(i, int) and i in by_seq for i in v))
        rpo = nines.rpo_from_database((by_seq[i].sent for i in ids), fault_at)
    elif "sync" in data:
        seconds = ("seconds", lambda v: _number(v) and v >= 0)
        rpo = nines.rpo_from_sync(c.get("sync.method", "a method", lambda v: isinstance(v, str)),
                                  c.get("sync.lost_at_crash.rpo", *seconds),
                                  c.get("sync.lost_at_crash.writes_lost", "a count", _count),
                                  c.get("sync.writes.max", "seconds or null", lambda v: v is None or seconds[1](v)))
    return Run(file, scenario, {k: v for k, v in options.items() if k not in PROBE_ONLY}, outage,
               nines.equivalent_outage(lost, rate), nines.serving(requests, fault_at), nines.servers(requests), rpo)


def _request(c: _Checked, i: int, r: Any) -> Request:
    key = f"timeline[{i}]"
    if not isinstance(r, dict):
        raise c.bad(key, r, "a request")
    item = (key, r)
    return Request(c.get("seq", "a number", lambda v: isinstance(v, int) and not isinstance(v, bool), item),
                   c.get("sent", "a time", _number, item),
                   c.get("replied", "a time or null", lambda v: v is None or _number(v), item),
                   c.get("server", "a name or null", lambda v: v is None or isinstance(v, str), item))


# --- the figures ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    mtbf_hours: float
    mttr_hours: float
    mtbf_given: bool
    mttr_given: bool

    def source(self, flag: str) -> str:
        return f"input: {flag}" if getattr(self, f"{flag[2:]}_given") else f"input: the default; {flag} HOURS to change"

    @property
    def tier(self) -> tuple[float, float]:
        return self.mtbf_hours * 3600, self.mttr_hours * 3600


def _percent_arg(value: float) -> float:
    if not 0 < value < 100:
        raise HalabError(f"--availability {value:g} is out of range.",
                         "Give a percentage above 0 and below 100, e.g. --availability 99.99.")
    return value


def _hours_arg(flag: str, value: float | None, default: float) -> float:
    if value is None:
        return default
    if not 1 <= value * 3600 < math.inf:  # in seconds, as the model counts: at least one
        raise HalabError(f"{flag} {value:g} is out of range.",
                         f"Give hours of at least one second (1/3600), e.g. {flag} {default:g}.")
    return value


def budgets(percents: Sequence[float]) -> list[dict]:
    return [{"availability_percent": p, "yearly_s": y, "monthly_s": m}
            for p in percents for y, m in [nines.budget(p)]]


def _downtime(d: nines.Downtime) -> dict:
    return {"failover_s": d.failover, "all_down_s": d.all_down, "yearly_s": d.total,
            "availability": d.availability, "nines": None if math.isinf(d.nines) else d.nines}


def group_key(run: Run) -> str:
    return json.dumps([run.scenario, run.options], sort_keys=True, default=str)


def groups(runs: Sequence[Run]) -> list[list[Run]]:
    """Runs of the same scenario with the same options (the probe's aside), in the order given."""
    found: dict[str, list[Run]] = {}
    for run in runs:
        found.setdefault(group_key(run), []).append(run)
    return list(found.values())


def names(all_groups: Sequence[Sequence[Run]]) -> list[str]:
    """Each group's name: its scenario, the options that name an architecture, and any other option in
    which it differs from another group of the same scenario."""
    out = []
    for g in all_groups:
        first = g[0]
        peers = [h[0].options for h in all_groups if h[0].scenario == first.scenario]
        shown = [k for k in first.options if k in NAMED or any(p.get(k) != first.options[k] for p in peers)]
        out.append(" ".join([first.scenario, *(f"{k}={first.options[k]}" for k in shown)]))
    return out


def summarise(name: str, runs: Sequence[Run], inputs: Inputs) -> dict:
    """One group's figures, each with where it comes from."""
    files = [str(r.file) for r in runs]
    outages = [r.outage for r in runs]
    equivalent = median(r.equivalent for r in runs) or 0.0
    serving, servers = max(r.serving for r in runs), max(r.servers for r in runs)
    out: dict[str, Any] = {
        "name": name, "scenario": runs[0].scenario, "options": runs[0].options, "runs": len(runs), "files": files,
        "outage_s": {"median": median(outages), "min": min((o for o in outages if o is not None), default=None),
                     "max": max((o for o in outages if o is not None), default=None),
                     "not_recovered": sum(o is None for o in outages), "source": "measured: outcome.outage"},
        "equivalent_outage_s": {"median": equivalent,
                                "source": "measured: outcome.lost_after_fault / options.rate"},
        "serving": serving, "servers": servers, "servers_source": "measured: timeline[].server",
        "downtime": None, "rpo": _rpo(runs),
    }
    if any(o is None for o in outages):
        out["note"] = "a run did not recover: no finite outage, so no availability"
    elif serving >= 1:
        mtbf, mttr = inputs.tier
        out["downtime"] = _downtime(nines.tier(nines.Tier(servers, serving, equivalent, mtbf, mttr)))
    else:
        out["note"] = "no server answered before the fault: nothing to fail over from"
    return out


def _rpo(runs: Sequence[Run]) -> dict | None:
    rpos = [r.rpo for r in runs if r.rpo is not None]
    if not rpos:
        return None
    synced = rpos[0].source != "database"
    return {"writes_lost": sum(r.writes_lost or 0 for r in rpos),
            "runs_with_loss": sum(bool(r.writes_lost) for r in rpos), "runs": len(rpos),
            "worst_s": max(r.seconds for r in rpos), "kind": "file writes" if synced else "acknowledged writes",
            "source": "measured: sync.lost_at_crash" if synced else "measured: database.verdict.acknowledged_lost"}


def report(args: argparse.Namespace) -> dict:
    """Everything `halab nines` prints, checked and computed before a line is printed."""
    percents = [_percent_arg(p) for p in args.availability or []]
    inputs = Inputs(_hours_arg("--mtbf", args.mtbf, nines.MTBF_HOURS),
                    _hours_arg("--mttr", args.mttr, nines.MTTR_HOURS), args.mtbf is not None, args.mttr is not None)
    files = {f.resolve(): f for path in args.results for f in result_files(path)}  # each file once
    runs = [load(f) for f in files.values()]
    if not runs and not percents:
        if args.series or args.mtbf is not None or args.mttr is not None:
            raise HalabError("--series, --mtbf and --mttr apply to measured results; none was given.", HOW)
        percents = list(STANDARD)
    grouped = groups(runs)
    summaries = [summarise(n, g, inputs) for n, g in zip(names(grouped), grouped, strict=True)]
    out: dict[str, Any] = {"year_s": nines.YEAR_S, "budgets": budgets(percents), "groups": summaries}
    if runs:
        out["inputs"] = {"mtbf_hours": inputs.mtbf_hours, "mtbf_source": inputs.source("--mtbf"),
                         "mttr_hours": inputs.mttr_hours, "mttr_source": inputs.source("--mttr")}
        out["spof"] = _downtime(nines.spof(*inputs.tier))
    if args.series:
        if len(summaries) < 2:
            raise HalabError(f"--series combines tiers; the results given make {len(summaries)} group.",
                             "Give the results of each tier, e.g. an active-active run and a three-tier run.")
        out["series"] = _series(summaries)
    return out


def _series(summaries: Sequence[dict]) -> dict | None:
    if any(s["downtime"] is None for s in summaries):
        return None
    a = nines.series(*(s["downtime"]["availability"] for s in summaries))
    n = nines.nines(a)
    return {"groups": [s["name"] for s in summaries], "availability": a, "nines": None if math.isinf(n) else n,
            "yearly_s": nines.YEAR_S * (1 - a)}


# --- printing ---------------------------------------------------------------------------------------------

COLUMN = 22


def percent(a: float, n: float | None) -> str:
    """As many decimals as the nines need to show: 99.954 %, 99.999978 %."""
    if n is None:
        return "100 %"
    return f"{a * 100:.{max(1, min(12, math.floor(n + 1e-9)))}f} %"


def _nines(n: float | None) -> str:
    return "infinitely many nines" if n is None else f"{n:.2f} nines"


def _row(what: str, value: str, source: str = "") -> str:
    return (f"  {what:<{COLUMN}}{value:<36}" + (f" [{source}]" if source else "")).rstrip()


def _seconds(value: float) -> str:
    """A measured outage: three significant digits (0.421 s, 35.3 s)."""
    return f"{value:.3g} s"


def lines(out: dict) -> list[str]:
    """The human form of `report`'s dictionary."""
    text = []
    if out["budgets"]:
        text.append(f"{'availability':<15}{'downtime a year':<18}a month   (a 365-day year)")
        text += [f"{b['availability_percent']:g} %".ljust(15) + nines.duration(b["yearly_s"]).ljust(18)
                 + nines.duration(b["monthly_s"]) for b in out["budgets"]]
    if not out["groups"]:
        return text
    i = out["inputs"]
    if text:
        text.append("")
    text += [_row("MTBF", f"{i['mtbf_hours']:g} h per server", i["mtbf_source"]).lstrip(),
             _row("MTTR", f"{i['mttr_hours']:g} h per server", i["mttr_source"]).lstrip()]
    failures = nines.YEAR_S / (i["mtbf_hours"] * 3600)
    for g in out["groups"]:
        text += ["", *_group_lines(g, failures)]
    s = out["spof"]
    text += ["", f"single server, no failover (the baseline, from the inputs only): {nines.duration(s['yearly_s'])} "
                 f"a year, {percent(s['availability'], s['nines'])}, {_nines(s['nines'])}"]
    if "series" in out:
        sr = out["series"]
        text.append("in series (every group needed at once): " + (
            "none computed (a group has no availability)" if sr is None else
            f"{nines.duration(sr['yearly_s'])} a year, {percent(sr['availability'], sr['nines'])}, "
            f"{_nines(sr['nines'])}"))
    return text


def _group_lines(g: dict, failures: float) -> list[str]:
    o, e, runs = g["outage_s"], g["equivalent_outage_s"], g["runs"]
    if o["median"] is None:
        outage = "not recovered"
    else:
        spread = f" ({_seconds(o['min'])} to {_seconds(o['max'])})" if runs > 1 else ""
        outage = f"{_seconds(o['median'])}{' median' if runs > 1 else ''}{spread}"
    if o["not_recovered"]:
        outage += f", {o['not_recovered']} run(s) not recovered"
    text = [f"{g['name']}: {runs} run{'s' if runs > 1 else ''}",
            *(f"  measured in {f}" for f in g["files"]),
            _row("outage", outage, o["source"]),
            _row("equivalent outage", f"{_seconds(e['median'])}{' median' if runs > 1 else ''}", e["source"]),
            _row("servers", f"{g['serving']} serving of {g['servers']}", g["servers_source"])]
    d = g["downtime"]
    if d is None:
        text.append(_row("yearly downtime", f"none computed: {g['note']}"))
    else:
        text += [_row("failovers", f"{nines.duration(d['failover_s'])} a year",
                      f"{failures:g} failure(s) a year x {g['serving']} serving x {_seconds(e['median'])}"),
                 _row("every server down", f"{nines.duration(d['all_down_s'])} a year",
                      f"(MTTR / (MTBF + MTTR))^{g['servers']} of a year"),
                 _row("yearly downtime", f"{nines.duration(d['yearly_s'])}: {percent(d['availability'], d['nines'])}, "
                                         f"{_nines(d['nines'])}")]
    r = g["rpo"]
    if r is not None:
        rpo = (f"0: no {r['kind'][:-1]} lost, {r['runs']} run(s)" if not r["writes_lost"] else
               f"{_seconds(r['worst_s'])}: {r['writes_lost']} {r['kind']} lost in {r['runs_with_loss']} "
               f"of {r['runs']} run(s); the oldest written that long before the fault")
        text.append(_row("RPO", rpo, r["source"]))
    return text


def main(args: argparse.Namespace) -> int:
    """`halab nines`; bad input raises HalabError before anything is printed."""
    out = report(args)
    print(json.dumps(out, indent=1, default=str) if args.json else "\n".join(lines(out)))
    return 0
