"""The comparison's plots and its HTML page: one file that opens offline (the plots inside it)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from harness.compare.table import AA, AS, TEXT, Row
from harness.lang import LANGS
from harness.loadcurve import KNEE_FACTOR
from harness.report import plot_staleness

COLOURS = {AA: "tab:blue", AS: "tab:orange"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_load(figures: dict, path: Path) -> Path:
    """Latency (p50, p99) against offered load for both architectures, with each knee."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    service_ms = None
    for arch in (AS, AA):
        load = figures[arch]["load"]
        if not load:
            continue
        service_ms = load["service_ms"]
        steps = [s for s in load["steps"] if s["p99_ms"] is not None]
        xs = [s["offered"] for s in steps]
        ax.plot(xs, [s["p99_ms"] for s in steps], "o-", color=COLOURS[arch], label=f"{arch} p99")
        ax.plot(xs, [s["p50_ms"] for s in steps], "o--", color=COLOURS[arch], alpha=0.6, label=f"{arch} p50")
        if load["knee"] is not None:
            ax.axvline(load["knee"], color=COLOURS[arch], linestyle=":", linewidth=1)
            ax.annotate(f"knee {load['knee']:.0f}/s", (load["knee"], 1), textcoords="offset points", xytext=(3, 3),
                        color=COLOURS[arch], fontsize=8, xycoords=("data", "axes fraction"), va="top")
    if service_ms is not None:
        ax.axhline(KNEE_FACTOR * service_ms, color="gray", linewidth=0.8)
        ax.annotate(f"{KNEE_FACTOR:g} x service time", (0, KNEE_FACTOR * service_ms), fontsize=7, color="gray",
                    xycoords=("axes fraction", "data"), xytext=(3, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (requests/s, TCP, a new connection each)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Response time as load grows: two servers of the same capacity each", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_shares(figures: dict, path: Path) -> Path:
    """Requests per server before the fault, both architectures side by side."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for i, arch in enumerate((AA, AS)):
        shares = figures[arch]["shares"]
        xs = [i * 3 + j for j in range(len(shares))]
        ax.bar(xs, [v * 100 for v in shares.values()], color=COLOURS[arch], label=arch)
        for x, name in zip(xs, shares, strict=True):
            ax.annotate(name, (x, 1), ha="center", fontsize=7, rotation=90, va="bottom", color="white")
    ax.axhline(50, color="gray", linewidth=0.8, linestyle=":")
    ax.set_xticks([])
    ax.set_ylabel("share of requests (%)")
    ax.set_title("Who served the requests before the fault", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plots(figures: dict, out: Path) -> list[Path]:
    made = [plot_load(figures, out / "latency-vs-load.png"), plot_shares(figures, out / "requests-per-server.png")]
    if figures["sync"]:
        made.append(plot_staleness(figures["sync"], out / "sync-staleness.png"))
    return made


def _table(rows: list[Row], lang: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in TEXT["columns"][lang])
    body = "".join(
        f"<tr><th>{html.escape(r.name)}</th><td>{html.escape(r.claim_aa)}</td><td>{html.escape(r.measured_aa)}</td>"
        f"<td>{html.escape(r.claim_as)}</td><td>{html.escape(r.measured_as)}</td>"
        f"<td class='{r.verdict}'><b>{html.escape(TEXT['verdicts'][lang][r.verdict])}</b><br>{html.escape(r.why)}</td>"
        "</tr>" for r in rows)
    title = html.escape(TEXT["title"][lang])
    return f"<h2 lang='{lang}'>{title}</h2><table lang='{lang}'><tr>{head}</tr>{body}</table>"


def write_html(rows: dict[str, list[Row]], images: list[Path], runs: list[Path], notes: list[str], out: Path) -> Path:
    """compare.html: the table in both languages, the plots inlined, links to every run's directory."""
    pictures = "".join(f"<figure><img alt='{html.escape(p.stem)}' src='data:image/png;base64,"
                       f"{base64.b64encode(p.read_bytes()).decode()}'></figure>" for p in images)
    links = "".join(f"<li><a href='{html.escape(p.name)}/result.json'>{html.escape(p.name)}</a></li>" for p in runs)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>halab compare</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}"
            ".agrees{background:#e8f5e9}.roughly{background:#fff8e1}.disagrees{background:#ffebee}"
            "img{max-width:100%}</style></head><body>"
            + "".join(_table(rows[lang], lang) for lang in LANGS)
            + "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
            + pictures + f"<h3>Runs</h3><ul>{links}</ul></body></html>")
    path = out / "compare.html"
    path.write_text(page, encoding="utf-8")
    return path
