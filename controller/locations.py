"""Where each IPv4 address is plugged in, as ARP tells it: which switch (by datapath id), which port.

The switch sends the controller a copy of every ARP packet (controller/l2_switch.py), so the
sender's address, switch and port are noted as they pass ("ARP snooping"). Fencing uses it to
find the ports of the node to isolate; failover assist to know whose port just went down.
Switches are named by id, not by their connection: a switch that reconnects is the same switch.
The labs link hosts to switches only; a link between two switches would need its ports left out
(an ARP copy from there names the far switch's host).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

#: Where an address is plugged in is trusted for this long after its last ARP from that port;
#: meanwhile an ARP from another port does not move it (a third host could spoof one).
LOCATION_AGE_S = 300.0
#: Addresses remembered at the most (a flood of ARP with new addresses must not grow the map forever).
MAX_LOCATIONS = 4096


@dataclass
class Location:
    dpid: int
    port: int
    seen: float  # monotonic, the last ARP from this port


class Locations:
    def __init__(self) -> None:
        self.where: dict[str, Location] = {}  # IPv4 address -> where its ARP comes from
        self.lock = threading.Lock()

    def saw(self, dpid: int, address: str, port: int, now: float | None = None) -> None:
        """An ARP packet from `address` came in on `port` of switch `dpid`."""
        now = time.monotonic() if now is None else now
        with self.lock:
            known = self.where.get(address)
            if known is not None and (known.dpid, known.port) != (dpid, port) and now - known.seen < LOCATION_AGE_S:
                return  # keep the trusted place; an ARP from elsewhere may be a spoof
            self.where[address] = Location(dpid, port, now)
            if len(self.where) > MAX_LOCATIONS:
                oldest = min(self.where, key=lambda a: self.where[a].seen)
                del self.where[oldest]

    def port_down(self, dpid: int, port: int) -> None:
        """A port went down (a cable, a crash, or fencing): what was learned there may move now."""
        with self.lock:
            for loc in self.where.values():
                if (loc.dpid, loc.port) == (dpid, port):
                    loc.seen = -LOCATION_AGE_S

    def at(self, dpid: int, port: int) -> list[str]:
        """The addresses last seen on `port` of switch `dpid`."""
        with self.lock:
            return [a for a, loc in self.where.items() if (loc.dpid, loc.port) == (dpid, port)]

    def get(self, address: str) -> Location | None:
        with self.lock:
            return self.where.get(address)
