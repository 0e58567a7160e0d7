"""What the scenarios need of a VRRP daemon on a lab host, whichever it is (keepalived or halab's).

Both take the same instance description, in keepalived's vocabulary, and both report their
state changes on the monotonic clock, so a scenario can run either, or both side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from harness.faults import Signalable
from harness.lab import LabProcess


@dataclass(frozen=True)
class VrrpInstance:
    """One VRRP instance, named as keepalived names its keys."""

    interface: str
    priority: int
    virtual_ipaddress: str
    virtual_router_id: int = 51
    advert_int: float = 1.0
    name: str = "VI_1"
    preempt: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.priority <= 255:
            raise ValueError(f"priority={self.priority}: VRRP allows 1 to 255")
        if not 1 <= self.virtual_router_id <= 255:
            raise ValueError(f"virtual_router_id={self.virtual_router_id}: VRRP allows 1 to 255")
        if not 0.01 <= self.advert_int <= 40.95:
            raise ValueError(f"advert_int={self.advert_int}: VRRPv3 allows 0.01 to 40.95 seconds")


@dataclass(frozen=True)
class StateEvent:
    """An agent's state change, on the monotonic clock."""

    at: float
    host: str
    instance: str
    state: str


class VrrpDaemon(Protocol):
    host: str
    process: LabProcess

    @property
    def name(self) -> str: ...

    def events(self) -> list[StateEvent]:
        """State changes so far, oldest first."""
        ...

    def advertiser(self) -> Signalable:
        """The process that sends the adverts (keepalived: its VRRP child), for SIGSTOP and friends."""
        ...

    def crash(self) -> float:
        """Die as in a crash (no goodbye advert); return when the advertiser died."""
        ...
