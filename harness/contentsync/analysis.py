"""What the writer's and the reader's logs say together: pure arithmetic, one clock (monotonic).

- staleness of a write: from the moment it was visible on the primary to the first time the
  standby showed that version or a later one of the file (a later write supersedes it);
- a deletion propagated: the standby no longer showed the file, after it was deleted;
- partial: the reader caught a file half-written (a part of a version), or a file missing for a
  moment that the primary still had (tar replaces a file by unlinking it first);
- lost at a crash: what the standby lacked once the primary was gone, and the RPO: how far back
  the oldest write it lacked goes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

from harness.measure import percentile

#: A file's state: its version, or None once deleted (names are never reused).
State = int | None


@dataclass(frozen=True)
class Op:
    """One operation of the writer on the primary, when it became visible there."""

    t: float
    op: str  # "write" or "delete"
    name: str
    version: int


@dataclass(frozen=True)
class Seen:
    """One observation of the reader on the standby."""

    t: float
    kind: str  # "seen" (a complete version), "partial", "gone"
    name: str
    version: int = 0


def spread(values: list[float]) -> dict:
    """Count, p50, p99 and max of `values` (None where there are none)."""
    return {"count": len(values), "p50": percentile(values, 0.5),
            "p99": percentile(values, 0.99), "max": max(values) if values else None}


def _reflected(op: Op, later_deleted_at: float | None, observed: list[Seen]) -> float | None:
    """When the standby first reflected `op` (that version or newer; gone after the deletion, and
    for good: tar unpacking a file it read before the deletion unlinks it first, and it is back)."""
    last_shown = max((s.t for s in observed if s.kind != "gone"), default=float("-inf"))
    for seen in observed:
        if seen.t < op.t:
            continue
        if seen.kind == "seen" and op.op == "write" and seen.version >= op.version:
            return seen.t
        if seen.kind == "gone" and later_deleted_at is not None and seen.t >= max(later_deleted_at, last_shown):
            return seen.t
    return None


def analyse(ops: list[Op], seen: list[Seen], since: float = float("-inf"), crash_at: float | None = None) -> dict:
    """Staleness of the writes and deletions made from `since` on (earlier ones, the files the
    lab started with, only set the primary's state), partial views, and (with `crash_at`) what a
    crash lost."""
    by_file: dict[str, list[Op]] = defaultdict(list)
    for op in sorted(ops, key=lambda o: o.t):
        by_file[op.name].append(op)
    observed: dict[str, list[Seen]] = defaultdict(list)
    for s in sorted(seen, key=lambda s: s.t):
        observed[s.name].append(s)
    write_lag: list[float] = []
    delete_lag: list[float] = []
    unreflected: list[Op] = []
    deletes = 0
    for name, file_ops in by_file.items():
        deleted_at = next((o.t for o in file_ops if o.op == "delete"), None)
        for op in (o for o in file_ops if o.t >= since):
            at = _reflected(op, deleted_at, observed[name])
            if op.op == "delete":
                deletes += 1
            if at is None:
                unreflected.append(op)
            else:
                (delete_lag if op.op == "delete" else write_lag).append(at - op.t)
    result = {"writes": spread(write_lag), "lags": sorted(round(x, 6) for x in write_lag),
              "deletions": {**spread(delete_lag), "of": deletes},
              "partial_views": sum(s.kind == "partial" for s in seen),
              "missing_for_a_moment": _missing_for_a_moment(by_file, observed),
              "unreflected": len(unreflected)}
    if crash_at is not None:
        result["lost_at_crash"] = lost_at_crash(by_file, observed, crash_at)
    return result


def _missing_for_a_moment(by_file: dict[str, list[Op]], observed: dict[str, list[Seen]]) -> int:
    """Times the standby showed a file gone while the primary had it, and showed it again later."""
    count = 0
    for name, views in observed.items():
        deleted_at = next((o.t for o in by_file.get(name, []) if o.op == "delete"), None)
        for gone, after in pairwise(views):
            if gone.kind == "gone" and after.kind != "gone" and (deleted_at is None or gone.t < deleted_at):
                count += 1
    return count


def final_states(observed: dict[str, list[Seen]]) -> dict[str, State | str]:
    """Each file's last state on the standby: a version, None (gone), or "partial"."""
    last: dict[str, State | str] = {}
    for name, views in observed.items():
        if not views:
            continue
        end = views[-1]
        last[name] = end.version if end.kind == "seen" else None if end.kind == "gone" else "partial"
    return last


def lost_at_crash(by_file: dict[str, list[Op]], observed: dict[str, list[Seen]], crash_at: float) -> dict:
    """What the standby lacked at the end, against the primary's files when it crashed.

    The RPO is how far back the oldest write the standby had not received goes (missing and stale
    files). A file the crash left half-written there ("partial": tar was unpacking it) lost its
    earlier copy too: it is counted, with its writes, but no age says what it lost. A deletion that
    did not arrive leaves a file too many ("not_deleted"): counted, but no data lost."""
    standby = final_states(observed)
    counts = {"missing": 0, "stale": 0, "partial": 0, "not_deleted": 0}
    late: list[Op] = []  # writes the standby had not received
    torn = 0
    for name, file_ops in by_file.items():
        done = [o for o in file_ops if o.t <= crash_at]
        if not done:
            continue
        primary: State = None if done[-1].op == "delete" else done[-1].version
        there = standby.get(name)
        if primary is None:
            counts["not_deleted"] += there is not None
        elif there == "partial":
            counts["partial"] += 1
            torn += len(done)
        elif there is None:
            counts["missing"] += 1
            late += done
        elif isinstance(there, int) and there < primary:
            counts["stale"] += 1
            late += [o for o in done if o.version > there]
    oldest = min((o.t for o in late), default=None)
    return {**counts, "writes_lost": len(late) + torn, "rpo": 0.0 if oldest is None else crash_at - oldest}
