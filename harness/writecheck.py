"""The write checker, in the Jepsen way: what every client write became, judged against the table
read back after the run.

A client logs each write it invokes (a unique id) with what it saw: `ok` (the commit was
acknowledged), `failed` (refused before anything could commit: no connection, a read-only
server) or `timeout` (no answer in time, or the connection broke during the commit:
indeterminate). An acknowledged write also records the server that acknowledged it and that
server's timeline. After the run the ids in the final table decide:

- acknowledged and present: good;  **acknowledged and lost**: the failover lost a committed write;
- failed but present: the client was told no, yet the write happened (a bug in the client or server);
- indeterminate: present or not, both are allowed, and counted;
- present but never written: the table holds something nobody wrote;
- **stale**: acknowledged by a server on an older timeline after a newer timeline had already
  acknowledged a write: two servers accepted writes at the same time (a split brain).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

OUTCOMES = ("ok", "failed", "timeout")


@dataclass(frozen=True)
class Write:
    id: int
    invoked: float            # the client's monotonic clock
    completed: float          # when the answer came (or the client gave up)
    outcome: str              # one of OUTCOMES
    node: str | None = None   # who acknowledged it (ok only)
    timeline: int | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"write {self.id}: outcome {self.outcome!r} is not one of {OUTCOMES}")


@dataclass(frozen=True)
class Verdict:
    invoked: int
    acknowledged: int
    acknowledged_lost: tuple[int, ...]
    failed: int
    failed_present: tuple[int, ...]
    indeterminate: int
    indeterminate_present: int
    never_written: tuple[int, ...]
    stale: tuple[int, ...]

    @property
    def valid(self) -> bool:
        """Nothing acknowledged was lost, nothing refused or unwritten appeared, never two writers."""
        return not (self.acknowledged_lost or self.failed_present or self.never_written or self.stale)


def check(writes: Iterable[Write], final_ids: Iterable[int]) -> Verdict:
    writes = sorted(writes, key=lambda w: w.invoked)
    present = set(final_ids)
    ids = [w.id for w in writes]
    if len(set(ids)) != len(ids):
        raise ValueError("two writes share an id: the checker needs unique ids")
    ok = [w for w in writes if w.outcome == "ok"]
    failed = [w for w in writes if w.outcome == "failed"]
    unsure = [w for w in writes if w.outcome == "timeout"]
    return Verdict(
        invoked=len(writes),
        acknowledged=len(ok),
        acknowledged_lost=tuple(w.id for w in ok if w.id not in present),
        failed=len(failed),
        failed_present=tuple(w.id for w in failed if w.id in present),
        indeterminate=len(unsure),
        indeterminate_present=sum(w.id in present for w in unsure),
        never_written=tuple(sorted(present - set(ids))),
        stale=stale_writes(ok),
    )


def stale_writes(acknowledged: list[Write]) -> tuple[int, ...]:
    """Writes acknowledged on an older timeline, invoked after a newer timeline's first
    acknowledgement had come back (at that moment two servers took writes), and writes on a
    timeline acknowledged by a server other than the one that first wrote on it (a promotion
    always starts a new timeline, so one timeline has one writer)."""
    newest: list[tuple[float, int]] = []   # (when a timeline first acknowledged, timeline), by time
    owner: dict[int, str | None] = {}
    for w in sorted(acknowledged, key=lambda w: w.completed):
        if w.timeline is None:
            continue
        owner.setdefault(w.timeline, w.node)
        if not newest or w.timeline > newest[-1][1]:
            newest.append((w.completed, w.timeline))
    stale = []
    for w in acknowledged:
        if w.timeline is None:
            continue
        seen_newer = [tl for at, tl in newest if at < w.invoked]
        if (seen_newer and w.timeline < max(seen_newer)) or owner[w.timeline] != w.node:
            stale.append(w.id)
    return tuple(sorted(stale))


def write_outage(writes: Iterable[Write], fault_at: float) -> float | None:
    """From the last write acknowledged before the fault to the first write invoked after the
    fault that was acknowledged (None: none was). A write in flight at the fault does not end the
    outage: the old primary may have answered it before the fault took effect."""
    ok = [w for w in writes if w.outcome == "ok"]
    before = [w.completed for w in ok if w.completed <= fault_at]
    after = [w.completed for w in ok if w.invoked >= fault_at]
    if not after:
        return None
    return min(after) - (max(before) if before else fault_at)
