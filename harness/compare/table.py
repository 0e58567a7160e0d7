"""The course notes' six rows, each with what was measured on both sides and a verdict: right,
roughly right (the claim holds but not as plainly as stated), or wrong. Words from text.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.lang import LANGS

TEXT = tomllib.loads(Path(__file__).with_name("text.toml").read_text(encoding="utf-8"))
AA, AS = "active-active", "active-standby"


@dataclass(frozen=True)
class Row:
    key: str
    name: str
    claim_aa: str
    measured_aa: str
    claim_as: str
    measured_as: str
    verdict: str  # "agrees", "roughly" or "disagrees"
    why: str


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"


def _each(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {_pct(v)}" for name, v in values.items())


def _row(key: str, lang: str, verdict: str, aa: dict, as_: dict, why: dict) -> Row:
    t = TEXT["rows"][key]
    return Row(key, t["name"][lang], t["claim_aa"][lang], t["measured"][lang].format(**aa), t["claim_as"][lang],
               t["measured"][lang].format(**as_), verdict, t[verdict][lang].format(**why))


def _operation(f: dict, lang: str) -> Row:
    a, s = f[AA], f[AS]
    right = a["serving"] == len(a["servers"]) and s["serving"] == 1
    return _row("operation", lang, "agrees" if right else "disagrees",
                {"serving": a["serving"], "shares": _each(a["shares"])},
                {"serving": s["serving"], "shares": _each(s["shares"])}, {})


def _downtime(f: dict, lang: str) -> Row:
    a, s = f[AA], f[AS]

    def measured(x: dict) -> dict:
        return {"crash": ms(x["outage"]["crash"]["median"]), "process": ms(x["outage"]["process"]["median"]),
                "lost_crash": f"{x['lost']['crash']:g}", "lost_process": f"{x['lost']['process']:g}"}

    aa_lost = a["lost"]["crash"] + a["lost"]["process"]
    if aa_lost == 0:
        verdict = "agrees"
    else:
        verdict = "roughly" if a["equivalent_outage"] < s["equivalent_outage"] else "disagrees"
    last = max((v for v in a["last_failure_after"].values() if v is not None), default=None)
    return _row("downtime", lang, verdict, measured(a), measured(s), {"aa_lost": f"{aa_lost:g}", "aa_last": ms(last)})


def _load(f: dict, lang: str) -> Row:
    a, s = f[AA], f[AS]

    def measured(x: dict) -> dict:
        return {"max_over_mean": f"{x['max_over_mean']:.2f}", "cpu": _each(x["cpu"]) if x["cpu"] else "-"}

    right = a["max_over_mean"] < 1.2 and s["max_over_mean"] >= 0.95 * len(s["servers"])
    return _row("load", lang, "agrees" if right else "disagrees", measured(a), measured(s), {})


def _knee(x: dict) -> tuple[float, str]:
    """The knee, or the bound the sweep gives when it did not catch it: its largest load (the
    knee lies above, "> ") or its smallest (below, "< ")."""
    load = x["load"]
    offered = [s["offered"] for s in load["steps"]]
    beyond = load.get("knee_beyond")
    if load["knee"] is not None or beyond is None:
        return load["knee"] if load["knee"] is not None else max(offered), ""
    return (max(offered), "> ") if beyond == "above" else (min(offered), "< ")


def _latency(ms_: float | None) -> str:
    return "-" if ms_ is None else f"{ms_:.0f} ms"


def _response(f: dict, lang: str) -> Row:
    a, s = f[AA], f[AS]

    def measured(x: dict) -> dict:
        light = x["load"]["steps"][0]
        knee, bound = _knee(x)
        return {"light_p50": _latency(light["p50_ms"]), "light_p99": _latency(light["p99_ms"]),
                "knee": f"{bound}{knee:.0f} req/s"}

    ratio = _knee(a)[0] / _knee(s)[0]
    light_a, light_s = a["load"]["steps"][0]["p50_ms"], s["load"]["steps"][0]["p50_ms"]
    faster = light_a is not None and light_s is not None and light_a < 0.8 * light_s
    verdict = "disagrees" if ratio < 1.2 else "agrees" if faster else "roughly"
    return _row("response", lang, verdict, measured(a), measured(s), {"ratio": f"{ratio:.2f}"})


def _sync_side(run: dict) -> dict:
    w, d, lost = run["writes"], run["deletions"], run["lost_at_crash"]
    return {"method": run["method"], "period": f"{run['period']:g} s", "p50": ms(w["p50"]), "p99": ms(w["p99"]),
            "deletions": f"{d['count']}/{d['of']}", "half": run["half_written"], "lost": lost["writes_lost"]}


def sync_pair(runs: list[dict]) -> tuple[dict, dict] | None:
    """The notes' two ways: the rsync way (event-driven lsyncd at its shortest delay, else periodic
    rsync) against the tar way."""
    tar = [r for r in runs if r["method"] == "tar"]
    rsync = sorted((r for r in runs if r["method"] == "lsyncd"), key=lambda r: r["period"]) or \
        [r for r in runs if r["method"] == "rsync"]
    return (rsync[0], tar[0]) if tar and rsync else None


def _sync(f: dict, lang: str) -> Row | None:
    pair = sync_pair(f["sync"])
    if pair is None:
        return None
    aa, tar = pair
    a50, t50 = aa["writes"]["p50"], tar["writes"]["p50"]
    verdict = "disagrees" if a50 is None or t50 is None or t50 <= a50 else "agrees" if a50 < 0.05 else "roughly"
    return _row("sync", lang, verdict, _sync_side(aa), _sync_side(tar), {"aa_p50": ms(a50), "as_p50": ms(t50)})


def _continuity(f: dict, lang: str) -> Row:
    a, s = f[AA], f[AS]

    def measured(x: dict) -> dict:
        av = x["availability"]
        per_failure = (x["lost"]["crash"] + x["lost"]["process"]) / 2
        return {"lost": f"{per_failure:g}", "equivalent": ms(x["equivalent_outage"]),
                "availability": f"{av['availability'] * 100:.5f} %", "nines": f"{av['nines']:.1f}"}

    verdict = "agrees" if a["equivalent_outage"] < s["equivalent_outage"] else "disagrees"
    return _row("continuity", lang, verdict, measured(a), measured(s),
                {"aa_nines": f"{a['availability']['nines']:.1f}", "as_nines": f"{s['availability']['nines']:.1f}"})


def rows(figures: dict, lang: str) -> list[Row]:
    """The six rows in the notes' order (the sync row only when content sync was measured)."""
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: one of {LANGS}")
    built = [_operation(figures, lang), _downtime(figures, lang), _load(figures, lang), _response(figures, lang),
             _sync(figures, lang), _continuity(figures, lang)]
    return [r for r in built if r is not None]
