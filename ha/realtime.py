"""Real-time scheduling for an agent's loop: its adverts and heartbeats leave on time on a busy CPU.

    realtime_priority = 10      # in either agent's TOML; absent: ordinary scheduling

keepalived calls this `vrrp_rt_priority` and corosync runs real-time by default. Measured in halab's
heartbeat flood test (2 cores, both busy; 5 runs each): without it a 100 ms heartbeat left up to
143 ms after the one before (152 ms seen once before); with it, at most 103 ms. The loop thread
alone runs SCHED_RR: with SCHED_RESET_ON_FORK the programs it starts (notify and track scripts,
`nft`, `ip`) and its worker threads run as ordinary processes. The kernel's real-time throttling
(sched_rt_runtime_us, 95 % of each second by default) still leaves time to the rest of the
machine if the loop ever spins.
"""

from __future__ import annotations

import os
import sys

from ha.configcheck import get

PRIORITY_MIN, PRIORITY_MAX = 1, 99
KEY = "realtime_priority"


def parse(raw: dict, source: str) -> int | None:
    """The optional top-level key, checked like every other."""
    return get(raw, KEY, int, source, default=None, check=lambda v: PRIORITY_MIN <= v <= PRIORITY_MAX,
               allowed=f"a SCHED_RR priority from {PRIORITY_MIN} to {PRIORITY_MAX} (or leave it out)")


def apply(priority: int | None, prog: str) -> int | None:
    """Make the calling thread SCHED_RR at `priority`; returns the priority in force (None: ordinary).

    A kernel or container that refuses (EPERM: no CAP_SYS_NICE, or no real-time budget in the
    cgroup) costs punctuality, not the agent: one warning line, and the agent runs on."""
    if priority is None:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
    except OSError as exc:
        print(f"{prog}: {KEY} = {priority} refused by the kernel ({exc.strerror or exc}); running with "
              "ordinary scheduling", file=sys.stderr, flush=True)
        return None
    return priority
