"""Reports of a run: the JSON record, the timeline plot, and the table printed in the terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.about import SCHEMA_VERSION
from harness.events import Event
from harness.faults import FaultEvent
from harness.measure import Outcome, median
from harness.probe import Request


@dataclass
class RunRecord:
    """Everything one scenario run produced, on one monotonic clock."""

    scenario: str
    options: dict
    fault: FaultEvent
    outcome: Outcome
    events: list[Event]
    requests: list[Request]
    run_dir: Path
    notes: list[str] = field(default_factory=list)
    about: dict = field(default_factory=dict)  # harness.about: versions, datapath, wall-clock time
    database: dict | None = None  # the write checker's verdict and the replication lag (a database tier)
    sync: dict | None = None  # content sync: staleness, partial views, what the crash lost
    load: dict | None = None  # latency as the offered load grew (harness.loadcurve), before the fault
    adverts: list[dict] | None = None  # VRRP adverts as the client heard them: {"at", "host"}

    def to_json(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "about": self.about,
            "scenario": self.scenario,
            "options": self.options,
            "fault": asdict(self.fault),
            "outcome": asdict(self.outcome),
            "agent_events": [asdict(e) for e in self.events],
            "timeline": [asdict(r) for r in self.requests],
            "notes": self.notes,
            **({"database": self.database} if self.database is not None else {}),
            **({"sync": self.sync} if self.sync is not None else {}),
            **({"load": self.load} if self.load is not None else {}),
            **({"adverts": self.adverts} if self.adverts is not None else {}),
        }


def write_json(record: RunRecord) -> Path:
    path = record.run_dir / "result.json"
    path.write_text(json.dumps(record.to_json(), indent=1))
    return path


#: Faults after which the backup hears no more adverts and must wait out its Master_Down_Interval.
SILENT_MASTER = ("link-cut", "host-crash", "agent-freeze", "agent-kill", "partition")
BACKUP_PRIORITY = 100  # server2's in the active-standby scenario


def settings(options: dict) -> str:
    """What set the failover's pace, for a plot's title: the agent and its interval, or the checks."""
    if "advert_int" in options:
        return f"{options.get('agent', 'halab')} VRRP, advert_int {options['advert_int']:g} s"
    if "check_interval" in options:
        return (f"{options.get('lb', 'sdn')} balancer, checks every {options['check_interval']:g} s, "
                f"out after {options.get('fall', 3)}")
    if "interval" in options:
        return f"heartbeat every {options['interval']:g} s, {options.get('detector', 'deadtime')}"
    return ", ".join(f"{k} {options[k]}" for k in ("agent", "manager", "method") if k in options)


def master_down(advert_int: float, priority: int) -> float:
    """RFC 9568's Master_Down_Interval of a backup of this priority: 3 x advert_int + Skew_Time."""
    return 3 * advert_int + (256 - priority) / 256 * advert_int


def detection_window(options: dict) -> tuple[float, float, str] | None:
    """When, counted from the fault, the protocol says the takeover comes: (from, to, why); None
    where no timer bounds it (a goodbye, a port the switch sees go down, a fault that heals).

    VRRP: the backup takes over Master_Down_Interval = 3 x advert_int + skew after the last advert
    it heard, which left at most one advert_int before the fault. The heartbeat agent: deadtime
    (3 intervals) after the last beat, then it fences the peer before it serves. The balancer: a process that
    dies behind a live link is out after `fall` failed checks, the first of them up to one
    interval after the fault."""
    fault = options.get("fault")
    if "advert_int" in options and fault in SILENT_MASTER:
        adv = options["advert_int"]
        down = master_down(adv, BACKUP_PRIORITY)
        return down - adv, down, f"Master_Down_Interval 3 x {adv:g} s + skew {down - 3 * adv:.2f} s = {down:.2f} s"
    if options.get("detector") == "deadtime" and fault == "node-crash":
        every = options["interval"]
        return 2 * every, 3 * every, f"deadtime (3 x {every:g} s) without a heartbeat; fencing the peer comes after"
    if "check_interval" in options and fault == "process-kill":
        every, fall = options["check_interval"], options.get("fall", 3)
        return (fall - 1) * every, fall * every, f"{fall} failed checks, every {every:g} s"
    return None


def timer_runs_out(options: dict, fault_at: float, adverts: list[dict] | None, master: str | None) -> float | None:
    """When the backup's Master_Down_Interval ran out: that long after the master's last advert
    before the fault (as the client heard it); None without adverts or a silent master."""
    window = detection_window(options)
    heard = [a["at"] for a in adverts or [] if a["host"] == master and a["at"] <= fault_at]
    if window is None or "advert_int" not in options or not heard:
        return None
    return heard[-1] + window[1]


def plot_timeline(record: RunRecord) -> Path:
    """PNG: each request at its send time (relative to the fault), by the server that answered."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = record.fault.at
    servers = sorted({r.server for r in record.requests if r.server})
    rows = {name: i + 1 for i, name in enumerate(servers)}
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    for name, y in rows.items():
        xs = [r.sent - t0 for r in record.requests if r.server == name]
        ax.scatter(xs, [y] * len(xs), s=6, label=f"answered by {name}")
    lost = [r.sent - t0 for r in record.requests if not r.ok]
    ax.scatter(lost, [0] * len(lost), s=6, color="crimson", marker="x", label="no reply")
    out = record.outcome
    if out.outage is not None and out.outage_start is not None:
        ax.axvspan(out.outage_start - t0, out.outage_start - t0 + out.outage, color="crimson", alpha=0.12,
                   label=f"outage {out.outage * 1000:.0f} ms")
    window = detection_window(record.options)
    if window is not None:
        start, end, why = window
        ax.axvspan(start, end, color="steelblue", alpha=0.15, label=f"takeover due: {why}")
    for host, y in rows.items():
        ticks = [a["at"] - t0 for a in record.adverts or [] if a["host"] == host]
        if ticks:
            ax.scatter(ticks, [y + 0.3] * len(ticks), s=14, marker="|", color="black", linewidths=0.8,
                       label=f"{host}'s adverts" if y == 1 else None)
    runs_out = timer_runs_out(record.options, t0, record.adverts, record.outcome.server_before)
    if runs_out is not None:
        ax.axvline(runs_out - t0, color="steelblue", linewidth=1.2,
                   label=f"Master_Down_Interval after the last advert: {runs_out - t0:.2f} s")
    ax.axvline(0, color="black", linewidth=1.2)
    ax.annotate(f"fault: {record.fault.kind} {record.fault.target}", (0, len(rows) + 0.45), fontsize=8,
                xytext=(3, 0), textcoords="offset points")
    for i, ev in enumerate(e for e in record.events if record.requests and
                           record.requests[0].sent - 1 <= e.at <= record.requests[-1].sent + 1):
        ax.axvline(ev.at - t0, color="gray", linestyle="--", linewidth=0.8)
        why = ev.reason if len(ev.reason) <= 32 else ev.reason[:31] + "…"
        subject = "" if ev.subject == ev.host else f" {ev.subject}"
        ax.annotate(f"{ev.host}{subject} {ev.state}: {why}", (ev.at - t0, -0.5 + (i % 3) * 0.15), fontsize=6,
                    rotation=90, xytext=(2, 0), textcoords="offset points", color="dimgray", annotation_clip=True,
                    clip_on=True, va="bottom")
    ax.set_yticks([0, *rows.values()], ["no reply", *rows])
    ax.set_ylim(-0.6, max(len(rows), 2) + 0.8)
    ax.set_xlabel("seconds since the fault (CLOCK_MONOTONIC)")
    what = "writes" if record.database is not None else "requests"
    how = record.options.get("proto") or record.options.get("writes", "?")
    ax.set_title(f"{record.scenario}: {record.fault.kind} {record.fault.target}; {settings(record.options)}\n"
                 f"what the client saw ({record.options.get('rate', '?'):g} {what}/s, {how})", fontsize=10)
    ax.legend(loc="lower right", fontsize=7, ncol=2)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = record.run_dir / "timeline.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _ms(value: float | None) -> str:
    return "never" if value is None else f"{value * 1000:.0f} ms"


def print_summary(records: Sequence[RunRecord], console: Console | None = None) -> None:
    """One row per run and, for several runs, the medians."""
    console = console or Console()
    table = Table(title=f"{records[0].scenario}: client-visible failover")
    for col in ("run", "fault", "outage", "first good reply", "lost", "before -> after"):
        table.add_column(col, justify="right" if col in ("outage", "first good reply", "lost") else "left")
    for i, rec in enumerate(records, 1):
        o = rec.outcome
        table.add_row(str(i), f"{rec.fault.kind} {rec.fault.target}", _ms(o.outage), _ms(o.first_good_after),
                      f"{o.lost}/{o.requests}", f"{o.server_before} -> {o.server_after}")
    if len(records) > 1:
        table.add_row("median", "", _ms(median(r.outcome.outage for r in records)),
                      _ms(median(r.outcome.first_good_after for r in records)),
                      f"{median(r.outcome.lost for r in records):g}", "", style="bold")
    console.print(table)
    if all(r.database for r in records):
        _print_writes(records, console)
    if all(r.sync for r in records):
        _print_sync(records, console)


def _print_writes(records: Sequence[RunRecord], console: Console) -> None:
    """The write checker's verdict per run: what a database tier's failover did to the writes."""
    table = Table(title=f"{records[0].scenario}: every write, checked against the final table")
    for col in ("run", "write outage", "acknowledged", "acknowledged lost", "indeterminate", "failed",
                "never two primaries", "primary after"):
        table.add_column(col, justify="left" if col in ("run", "primary after") else "right")
    for i, rec in enumerate(records, 1):
        db = rec.database or {}
        v = db["verdict"]
        table.add_row(str(i), _ms(db["write_outage"]), str(v["acknowledged"]),
                      str(len(v["acknowledged_lost"])), str(v["indeterminate"]), str(v["failed"]),
                      "yes" if not (v["stale"] or db["two_primaries"]) else "NO", str(db["primary_after"]))
    console.print(table)


def _print_sync(records: Sequence[RunRecord], console: Console) -> None:
    """Content sync per run: how stale the standby's copy was, and what the crash lost."""
    first = records[0].sync or {}
    table = Table(title=f"{records[0].scenario}: the standby's copy ({first['method']}, period {first['period']:g} s)")
    for col in ("run", "stale p50", "p99", "deletions", "half-written", "writes lost", "RPO", "left over"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for i, rec in enumerate(records, 1):
        s = rec.sync or {}
        w, d, lost = s["writes"], s["deletions"], s["lost_at_crash"]
        table.add_row(str(i), _ms(w["p50"]), _ms(w["p99"]), f"{d['count']}/{d['of']}",
                      str(s["partial_views"] + s["missing_for_a_moment"]), str(lost["writes_lost"]), _ms(lost["rpo"]),
                      str(lost["not_deleted"]))
    console.print(table)
    console.print("stale: write on the primary -> visible on the standby; deletions: those that reached it; "
                  "half-written: a file seen in part or missing for a moment; writes lost and RPO: what the "
                  "standby lacked after the crash, and how far back; left over: files it kept that were deleted.")


def plot_staleness(syncs: Sequence[dict], path: Path) -> Path:
    """PNG: the distribution (CDF) of write-to-visible staleness, one line per run's `sync` section."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for sync in syncs:
        lags = sorted(sync["lags"])
        if lags:
            ax.step([x * 1000 for x in lags], [(i + 1) / len(lags) for i in range(len(lags))], where="post",
                    label=f"{sync['method']} (period {sync['period']:g} s)")
    ax.set_xlabel("write on the primary -> visible on the standby (ms)")
    ax.set_ylabel("share of writes")
    ax.set_title("Content sync: how stale the standby's copy is", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
