"""Where each IPv4 address is plugged in, as ARP tells it: which switch, which port.

Every ARP broadcast crosses the controller in the L2 app, so the sender's address, switch and
port are noted as they pass ("ARP snooping"). Fencing uses it to find the ports of the node to
isolate; failover assist to know whose port just went down.
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
    dp: object
    port: int
    seen: float  # monotonic, the last ARP from this port


class Locations:
    def __init__(self) -> None:
        self.where: dict[str, Location] = {}  # IPv4 address -> where its ARP comes from
        self.lock = threading.Lock()

    def saw(self, dp, address: str, port: int, now: float | None = None) -> None:
        """An ARP packet from `address` came in on `port` of `dp`."""
        now = time.monotonic() if now is None else now
        with self.lock:
            known = self.where.get(address)
            if known is not None and (known.dp, known.port) != (dp, port) and now - known.seen < LOCATION_AGE_S:
                return  # keep the trusted place; an ARP from elsewhere may be a spoof
            self.where[address] = Location(dp, port, now)
            if len(self.where) > MAX_LOCATIONS:
                oldest = min(self.where, key=lambda a: self.where[a].seen)
                del self.where[oldest]

    def port_down(self, dp, port: int) -> None:
        """A port went down (not by us): what was learned there may move now."""
        with self.lock:
            for address in self.at(dp, port):
                self.where[address].seen = -LOCATION_AGE_S

    def at(self, dp, port: int) -> list[str]:
        """The addresses last seen on `port` of `dp`."""
        return [a for a, loc in list(self.where.items()) if (loc.dp, loc.port) == (dp, port)]

    def get(self, address: str) -> Location | None:
        return self.where.get(address)
