"""report.html: one run on one page that opens offline from a file. The parameters, the result,
a timeline drawn in SVG (hover a mark or a line for its details), the agents' events with their
reasons, and in words why the outage lasted as long as it did. Built from result.json alone, so
`halab report RUN_DIR` can rebuild it; for --runs N, a page with the distribution of outages.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from harness.errors import HalabError
from harness.explain import explain
from harness.measure import median
from harness.report import detection_window, settings, timer_runs_out

PAGE = "report.html"
WIDTH, ROW, LEFT, TOP = 900, 34, 110, 30
STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:20px auto;max-width:1000px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;color:#37474f}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #e0e0e0;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.why{background:#f1f8e9;padding:8px 14px;border-radius:6px}
svg text{font-size:12px}"""


def timeline_svg(result: dict) -> str:
    """Each request at its send time by who answered it (one mark per pixel and row), the outage,
    the window the protocol gives, and every event as a line with its reason on hover."""
    t0, requests = result["fault"]["at"], result["timeline"]
    if not requests:
        return "<p>No requests were recorded.</p>"
    first, last = requests[0]["sent"] - t0, requests[-1]["sent"] - t0
    span = max(last - first, 1e-3)
    x = lambda t: LEFT + (t - first) / span * WIDTH  # noqa: E731
    servers = sorted({r["server"] for r in requests if r["server"]})
    rows = {None: 0, **{s: i + 1 for i, s in enumerate(servers)}}
    height = TOP + ROW * len(rows) + 40
    y = lambda row: TOP + ROW * (len(rows) - 1 - row) + ROW / 2  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {LEFT + WIDTH + 20} {height}" '
             f'width="{LEFT + WIDTH + 20}" role="img" aria-label="timeline">']
    out = result["outcome"]
    if out["outage"] is not None:
        a = out["outage_start"] - t0
        parts.append(_band(x(a), x(a + out["outage"]), height, "#ef9a9a",
                           f"outage {out['outage'] * 1000:.0f} ms"))
    window = detection_window(result["options"])
    if window is not None:
        parts.append(_band(x(window[0]), x(window[1]), height, "#90caf9", f"takeover due: {window[2]}"))
    for server, row in rows.items():
        colour = "#c62828" if server is None else ("#1e88e5", "#43a047", "#8e24aa", "#fb8c00")[(row - 1) % 4]
        parts.append(f'<text x="{LEFT - 8}" y="{y(row) + 4}" text-anchor="end">{escape(server or "no reply")}</text>')
        columns = sorted({int(x(r["sent"] - t0)) for r in requests if r["server"] == server})
        parts += [f'<rect x="{c}" y="{y(row) - 8}" width="2" height="16" fill="{colour}"/>' for c in columns]
    for a in result.get("adverts") or []:
        if a["host"] in rows and first <= a["at"] - t0 <= last:
            parts.append(f'<rect x="{x(a["at"] - t0):.1f}" y="{y(rows[a["host"]]) - 15}" width="1" height="5" '
                         f'fill="#000"><title>advert from {escape(a["host"])}</title></rect>')
    runs_out = timer_runs_out(result["options"], t0, result.get("adverts"), out["server_before"])
    if runs_out is not None:
        parts.append(f'<line x1="{x(runs_out - t0):.1f}" x2="{x(runs_out - t0):.1f}" y1="{TOP - 10}" '
                     f'y2="{height - 30}" stroke="#1565c0" stroke-width="2"><title>the backup\'s Master_Down_Interval '
                     f"runs out, after the last advert it heard: {runs_out - t0:.3f} s</title></line>")
    for e in result["agent_events"]:
        if first - 1 <= e["at"] - t0 <= last + 1:
            ex = min(max(x(e["at"] - t0), LEFT), LEFT + WIDTH)
            tip = f"{e['at'] - t0:+.3f} s {e['host']} {e['subject']}: {e['old'] or '-'} -> {e['state']} ({e['reason']})"
            parts.append(f'<line x1="{ex:.1f}" x2="{ex:.1f}" y1="{TOP - 10}" y2="{height - 30}" stroke="#757575" '
                         f'stroke-dasharray="3 3" stroke-width="2"><title>{escape(tip)}</title></line>')
    parts.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{TOP - 14}" y2="{height - 30}" stroke="#000" '
                 f'stroke-width="2"><title>the fault</title></line>')
    parts.append(f'<text x="{x(0) + 4:.1f}" y="{TOP - 16}">fault</text>')
    for t in _ticks(first, last):
        parts.append(f'<text x="{x(t):.1f}" y="{height - 12}" text-anchor="middle">{t:g} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _band(x1: float, x2: float, height: int, colour: str, label: str) -> str:
    return (f'<rect x="{x1:.1f}" y="{TOP - 6}" width="{max(x2 - x1, 1):.1f}" height="{height - TOP - 30}" '
            f'fill="{colour}" opacity="0.45"><title>{escape(label)}</title></rect>')


def _ticks(first: float, last: float) -> list[float]:
    step = next((s for s in (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300) if (last - first) / s <= 12),
                (last - first) / 10)
    start = int(first / step) * step
    return [round(start + i * step, 6) for i in range(int((last - start) / step) + 1) if start + i * step >= first]


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "-" if value is None else str(value)


def _ms(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds * 1000:.0f} ms"


def _events(result: dict) -> str:
    t0 = result["fault"]["at"]
    rows = "".join(f'<tr><td class="n">{e["at"] - t0:+.3f} s</td><td>{escape(e["host"])}</td>'
                   f'<td>{escape(e["source"])}</td><td>{escape(e["subject"])}</td>'
                   f'<td>{escape(e["old"] or "-")} &rarr; {escape(e["state"])}</td><td>{escape(e["reason"])}</td></tr>'
                   for e in result["agent_events"])
    return ("<table><tr><th>since the fault</th><th>host</th><th>agent</th><th>what</th><th>change</th>"
            f"<th>why</th></tr>{rows}</table>") if rows else "<p>No agent logged a change of state.</p>"


def render(result: dict) -> str:
    fault, out = result["fault"], result["outcome"]
    title = f"{result['scenario']}: {fault['kind']} {fault['target']}"
    outcome = [("outage", _ms(out["outage"])), ("first good reply after the fault", _ms(out["first_good_after"])),
               ("requests unanswered", f"{out['lost']} of {out['requests']}"),
               ("served by", f"{out['server_before']} -> {out['server_after']}"),
               ("last failure after the fault", _ms(out["last_failure_after"]))]
    extra = "".join(f"<h2>{name}</h2>{_table(list(_flat(result[name])))}" for name in ("database", "sync")
                    if result.get(name))
    when = result.get("about", {}).get("fault_utc", "")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1><p>{escape(settings(result['options']))}"
            f"; fault at {escape(when)}</p>"
            f'<h2>Why the outage lasted this long</h2><div class="why">'
            + "".join(f"<p>{escape(line)}</p>" for line in explain(result)) + "</div>"
            f"<h2>Result</h2>{_table(outcome)}<h2>Timeline</h2>{timeline_svg(result)}"
            f"<h2>Events</h2>{_events(result)}{extra}<h2>Parameters</h2>{_table(sorted(result['options'].items()))}"
            f"<h2>Versions</h2>{_table(sorted(result.get('about', {}).get('versions', {}).items()))}"
            "</body></html>")


def _flat(section: dict, prefix: str = "") -> list[tuple[str, object]]:
    """A nested result section as rows (long lists left out: they are in result.json)."""
    rows: list[tuple[str, object]] = []
    for key, value in section.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        elif not (isinstance(value, list) and len(value) > 8):
            rows.append((f"{prefix}{key}", value))
    return rows


def render_runs(results: list[tuple[str, dict]]) -> str:
    """The page of a --runs N directory: the outages' distribution and a link to each run's page."""
    outages = [r["outcome"]["outage"] for _, r in results]
    known = [o for o in outages if o is not None]
    mid = median(known)
    top = max(known, default=1.0) * 1.1 or 1.0
    dots = "".join(f'<circle cx="{LEFT + o / top * WIDTH:.1f}" cy="{40 + (i % 5) * 8}" r="5" fill="#1e88e5">'
                   f"<title>{escape(name)}: {o * 1000:.0f} ms</title></circle>"
                   for i, ((name, _), o) in enumerate(zip(results, outages, strict=True)) if o is not None)
    marker = (f'<line x1="{LEFT + mid / top * WIDTH:.1f}" x2="{LEFT + mid / top * WIDTH:.1f}" y1="20" y2="90" '
              f'stroke="#c62828" stroke-width="2"><title>median {mid * 1000:.0f} ms</title></line>') if mid else ""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {LEFT + WIDTH + 20} 110" width="{LEFT + WIDTH + 20}">'
           f'<text x="{LEFT}" y="105">0</text><text x="{LEFT + WIDTH}" y="105" text-anchor="end">'
           f"{top * 1000:.0f} ms</text>{dots}{marker}</svg>")
    rows = "".join(f'<tr><td><a href="{escape(name)}/{PAGE}">{escape(name)}</a></td><td class="n">'
                   f'{_ms(r["outcome"]["outage"])}</td><td class="n">{r["outcome"]["lost"]}</td></tr>'
                   for name, r in results)
    first = results[0][1]
    title = f"{first['scenario']}: {len(results)} runs of {first['fault']['kind']} {first['fault']['target']}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1><p>{escape(settings(first['options']))}</p>"
            f"<h2>Outages</h2><p>median {_ms(mid)}, from {_ms(min(known, default=None))} to "
            f"{_ms(max(known, default=None))}; {len(outages) - len(known)} run(s) never recovered.</p>{svg}"
            f"<table><tr><th>run</th><th>outage</th><th>unanswered</th></tr>{rows}</table></body></html>")


def write(run_dir: Path) -> Path:
    """report.html of a run directory (one run), or of a --runs N directory and each of its runs."""
    single = run_dir / "result.json"
    if single.exists():
        (run_dir / PAGE).write_text(render(_load(single)))
        return run_dir / PAGE
    runs = sorted((p.parent for p in run_dir.glob("run-*/result.json") if p.parent.name[4:].isdigit()),
                  key=lambda p: int(p.name[4:]))
    if not runs:
        raise HalabError(f"{run_dir} has no result.json (nor run-N/result.json).",
                         "Give a run directory that `halab run` made, such as runs/20261128-101500-active-standby.")
    results = [(d.name, _load(d / "result.json")) for d in runs]
    for d, (_, result) in zip(runs, results, strict=True):
        (d / PAGE).write_text(render(result))
    (run_dir / PAGE).write_text(render_runs(results))
    return run_dir / PAGE


def _load(path: Path) -> dict:
    try:
        result = json.loads(path.read_text())
        result["fault"]["at"], result["outcome"]["outage"]  # the keys every page needs
        return result
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HalabError(f"{path}: not a result of a halab run ({type(exc).__name__}: {exc}).",
                         "Give the run directory of a finished `halab run`, or run the scenario again for a new one."
                         ) from None
