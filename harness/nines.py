"""Availability arithmetic: from a measured outage and a failure rate to a yearly downtime and its nines.

Pure functions, no I/O (`harness/ninescli.py` reads the result files). Why a separate model rather
than MTBF/(MTBF+MTTR) alone: with a standby, a server's failure costs clients the failover (seconds,
measured), not its repair (hours, assumed); the service is down for the repair only while every
server is down at once. A year is 365 days, as the usual budget tables count it (99.999 % = 5 m 15 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from harness.probe import Request

YEAR_S = 365 * 86400
MONTH_S = YEAR_S / 12
#: Illustrative classroom defaults, not field data: one failure per server a year, four hours to repair.
MTBF_HOURS, MTTR_HOURS = 8760.0, 4.0


def budget(percent: float) -> tuple[float, float]:
    """The downtime a target allows: (seconds a year, seconds a month)."""
    if not 0 < percent < 100:
        raise ValueError(f"availability {percent!r} % is not between 0 and 100")
    yearly = YEAR_S * (100 - percent) / 100
    return yearly, yearly / 12


def nines(availability: float) -> float:
    """-log10(1 - A): 0.999 is 3 nines, 0.9995 is 3.3; a service never down has infinitely many."""
    if not 0 <= availability <= 1:
        raise ValueError(f"availability {availability!r} is not a fraction between 0 and 1")
    if availability == 1:
        return math.inf
    return math.log10(1 / (1 - availability))  # not -log10(1 - A): no "-0.00 nines" for A = 0


def availability(mtbf_s: float, mttr_s: float) -> float:
    """The share of time a component that fails every MTBF and is repaired in MTTR is up."""
    if mtbf_s <= 0 or mttr_s < 0:
        raise ValueError(f"MTBF {mtbf_s!r} s must be positive and MTTR {mttr_s!r} s not negative")
    return mtbf_s / (mtbf_s + mttr_s)


def series(*fractions: float) -> float:
    """Every part needed (a web tier in front of a DB tier): the availabilities multiply."""
    return math.prod(fractions)


def parallel(*fractions: float) -> float:
    """Any one part enough: down only when every part is down at once."""
    return 1 - math.prod(1 - a for a in fractions)


def duration(seconds: float) -> str:
    """'8 h 45 m 36 s', '52 m 34 s', '26 s', '0.36 s': whole seconds from a minute up (a budget in
    minutes has no use for milliseconds), two significant digits below (a failover's size)."""
    if seconds < 60:
        return f"{seconds:.2g} s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} m {secs} s"
    if minutes:
        return f"{minutes} m {secs} s"
    return f"{secs} s"


# --- a tier of servers, measured failover and assumed failure rate ---------------------------------------


@dataclass(frozen=True)
class Tier:
    """A tier of `servers` that can carry the service, `serving` of which take traffic at once
    (1: Active-Standby; all: Active-Active). Each server fails every `mtbf` seconds and is repaired in
    `mttr`; each failure of a serving server costs clients `equivalent_outage` seconds."""

    servers: int
    serving: int
    equivalent_outage: float
    mtbf: float
    mttr: float

    def __post_init__(self) -> None:
        if not 1 <= self.serving <= self.servers:
            raise ValueError(f"{self.serving} serving of {self.servers} servers")
        if self.equivalent_outage < 0:
            raise ValueError(f"equivalent outage {self.equivalent_outage!r} s is negative")
        availability(self.mtbf, self.mttr)  # the same checks


@dataclass(frozen=True)
class Downtime:
    """Seconds a year without service, its parts, and what that makes of availability."""

    failover: float   # every failure of a serving server, each costing its equivalent outage
    all_down: float   # every server down at once: nothing to fail over to until a repair
    total: float
    availability: float
    nines: float


def equivalent_outage(lost_after_fault: int, rate: float) -> float:
    """Requests lost after the fault, as seconds of a full outage at the probe's rate. With Active-
    Standby every request fails during the failover, so this is the outage; with Active-Active only
    the dead server's share fails, and this counts only what clients really lost."""
    if rate <= 0 or lost_after_fault < 0:
        raise ValueError(f"{lost_after_fault!r} lost at {rate!r} requests/s")
    return lost_after_fault / rate


def serving(requests: Iterable[Request], fault_at: float) -> int:
    """How many servers answered before the fault: those taking traffic when it struck."""
    return len({r.server for r in requests if r.ok and r.server and r.sent < fault_at})


def servers(requests: Iterable[Request]) -> int:
    """How many servers answered at all: the standby shows itself once it takes over."""
    return len({r.server for r in requests if r.ok and r.server})


def _downtime(failover: float, all_down: float) -> Downtime:
    # Beyond a whole year the model no longer means anything: each part, and their sum, at most a year.
    failover, all_down = min(YEAR_S, failover), min(YEAR_S, all_down)
    total = min(YEAR_S, failover + all_down)
    up = 1 - total / YEAR_S
    return Downtime(failover, all_down, total, up, nines(up))


def tier(t: Tier) -> Downtime:
    """Yearly downtime of a tier: serving x failures a year x equivalent outage, plus the share of the
    year every server is down at once, (MTTR/(MTBF+MTTR))^N: the tier as N servers in parallel."""
    failover = t.serving * (YEAR_S / t.mtbf) * t.equivalent_outage
    return _downtime(failover, YEAR_S * (1 - availability(t.mtbf, t.mttr)) ** t.servers)


def spof(mtbf_s: float, mttr_s: float) -> Downtime:
    """One server and no failover (the baseline): every failure lasts until it is repaired."""
    availability(mtbf_s, mttr_s)  # the same checks
    return _downtime((YEAR_S / mtbf_s) * mttr_s, 0.0)


# --- RPO: how much acknowledged data a failure can take with it -------------------------------------------


@dataclass(frozen=True)
class Rpo:
    """What a failure lost: `seconds` back from the fault (0: nothing acknowledged was lost)."""

    source: str                      # "database" or "content sync (<method>)"
    seconds: float
    writes_lost: int | None = None   # database: acknowledged writes the failover lost
    worst: float | None = None       # content sync: the largest staleness seen
    detail: Mapping = field(default_factory=dict)


def rpo_from_database(lost_sent: Iterable[float], fault_at: float) -> Rpo:
    """From the write checker's acknowledged-and-lost writes (their send times): how far before the
    fault the oldest of them was written. None lost: RPO 0, measured."""
    sent = list(lost_sent)
    back = max(0.0, fault_at - min(sent)) if sent else 0.0
    return Rpo("database", back, writes_lost=len(sent))


def rpo_from_sync(method: str, lost_at_crash: float, writes_lost: int, worst_staleness: float | None) -> Rpo:
    """Content sync (files copied to the standby): at the measured crash the standby lacked
    `writes_lost` writes, the oldest `lost_at_crash` seconds old; a crash at a worse moment loses
    up to the largest staleness measured (`worst`)."""
    if lost_at_crash < 0 or writes_lost < 0 or (worst_staleness is not None and worst_staleness < 0):
        raise ValueError("content sync: RPO, writes lost and staleness are never negative")
    return Rpo(f"content sync ({method})", lost_at_crash, writes_lost=writes_lost, worst=worst_staleness)
