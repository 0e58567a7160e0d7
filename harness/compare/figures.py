"""Each architecture's figures from its result files (result.json dicts): pure arithmetic."""

from __future__ import annotations

from collections.abc import Sequence

from harness import nines
from harness.measure import median


def _spread(values: Sequence[float | None]) -> dict:
    present = [v for v in values if v is not None]
    return {"median": median(present), "min": min(present, default=None), "max": max(present, default=None),
            "runs": len(values), "not_recovered": len(values) - len(present)}


def shares(result: dict, servers: Sequence[str]) -> dict[str, int]:
    """Requests each server answered before the fault."""
    before = [q["server"] for q in result["timeline"] if q["server"] and q["sent"] <= result["fault"]["at"]]
    return {s: before.count(s) for s in servers}


def _cpu_near(load: dict | None, offered: float) -> dict[str, float] | None:
    """Each server's CPU busy fraction at the sweep's step nearest `offered`."""
    if not load or not load["steps"]:
        return None
    return min(load["steps"], key=lambda s: abs(s["offered"] - offered))["cpu"]


def architecture(crash: Sequence[dict], process: Sequence[dict], servers: Sequence[str]) -> dict:
    """How one architecture did: who served, the spread, each fault's outage and losses, the load curve."""
    counts = shares(crash[0], servers)
    total = sum(counts.values()) or 1
    load = next((r["load"] for r in crash if r.get("load")), None)
    rate = crash[0]["options"]["rate"]
    lost = {kind: median(r["outcome"]["lost_after_fault"] for r in runs)
            for kind, runs in (("crash", crash), ("process", process))}
    equivalent = median(r["outcome"]["lost_after_fault"] / r["options"]["rate"] for r in (*crash, *process))
    serving = sum(c > 0 for c in counts.values())
    mtbf, mttr = nines.MTBF_HOURS * 3600, nines.MTTR_HOURS * 3600
    down = nines.tier(nines.Tier(len(servers), max(1, serving), equivalent or 0.0, mtbf, mttr))
    return {
        "servers": list(servers), "serving": serving, "shares": {s: c / total for s, c in counts.items()},
        "max_over_mean": max(counts.values()) / (total / len(servers)),
        "outage": {"crash": _spread([r["outcome"]["outage"] for r in crash]),
                   "process": _spread([r["outcome"]["outage"] for r in process])},
        "last_failure_after": {"crash": median(r["outcome"]["last_failure_after"] for r in crash),
                               "process": median(r["outcome"]["last_failure_after"] for r in process)},
        "lost": lost, "rate": rate, "equivalent_outage": equivalent,
        "availability": {"yearly_downtime_s": down.total, "availability": down.availability, "nines": down.nines,
                         "mtbf_hours": nines.MTBF_HOURS, "mttr_hours": nines.MTTR_HOURS},
        "load": load, "cpu": _cpu_near(load, load["per_server"]) if load else None,
    }


def sync(results: Sequence[dict]) -> list[dict]:
    """Each content-sync run: method, period, staleness, deletions, partial views, what the crash lost."""
    out = []
    for r in results:
        s = r["sync"]
        out.append({"method": s["method"], "period": s["period"], "writes": s["writes"], "deletions": s["deletions"],
                    "half_written": s["partial_views"] + s["missing_for_a_moment"],
                    "lost_at_crash": s["lost_at_crash"], "bytes_per_transfer": s["bytes_per_transfer"],
                    "cpu_seconds_per_second": s["cpu_seconds_per_second"], "lags": s["lags"]})
    return out
