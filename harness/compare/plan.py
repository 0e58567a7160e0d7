"""What `halab compare` runs: the same client load and the same two faults on each architecture.

Both have two servers of the same finite capacity (harness.probe.capacity): 4 requests at a
time, 20 ms each, so 200 requests/s per server. The probe is TCP at 100 requests/s (a new
connection each, so the balancer spreads them); the load sweep goes past one server's capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKERS, SERVICE_S = 4, 0.020
CAPACITY = (WORKERS, SERVICE_S)
PER_SERVER = WORKERS / SERVICE_S
PROBE_RATE = 100.0
SERVERS = {"active-active": ("backend1", "backend2"), "active-standby": ("server1", "server2")}
#: (kind of fault, the scenario's name for it) per architecture: the server dies, or only its service.
FAULTS = {"active-active": (("crash", "backend-crash"), ("process", "process-kill")),
          "active-standby": (("crash", "host-crash"), ("process", "service-kill"))}


@dataclass(frozen=True)
class Plan:
    runs: int                             # fresh labs per architecture and fault
    loads: tuple[float, ...]              # offered loads of the sweep, requests/s
    step_s: float                         # seconds per load
    sync: tuple[tuple[str, float], ...]   # (method, period) of each content-sync run
    sync_before: float                    # seconds of writing before the primary crashes


QUICK = Plan(runs=1, loads=(100.0, 200.0, 300.0, 400.0, 500.0), step_s=1.0,
             sync=(("tar", 1.0), ("lsyncd", 0.1)), sync_before=3.0)
DEFAULT = Plan(runs=3, loads=(50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 375.0, 400.0, 450.0, 500.0),
               step_s=1.5, sync=(("tar", 1.0), ("rsync", 1.0), ("lsyncd", 0.1)), sync_before=5.0)
