"""halab's conntrack zone in Open vSwitch: its size limited, its connections counted by backend,
a dead backend's connections forgotten. Through ovs-appctl: OpenFlow cannot read conntrack. The
zone lives in the switch's datapath, which goes with the lab's last bridge."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from ipaddress import IPv4Address

from controller import ids

#: TCP states of a connection that is over (conntrack keeps it a while to absorb stray packets).
ENDED = {"TIME_WAIT", "CLOSED", "CLOSING", "LAST_ACK"}
_MARK = re.compile(r"\bmark=(\d+)")
_STATE = re.compile(r"\bstate=(\w+)")
APPCTL_TIMEOUT_S = 5.0


class ConntrackError(Exception):
    """ovs-appctl could not do it; the message says why."""


def open_connections(dump: str) -> Counter[ids.BackendKey]:
    """Open connections per backend in a `dpctl/dump-conntrack` listing (ended ones not counted)."""
    counts: Counter[ids.BackendKey] = Counter()
    for line in dump.splitlines():
        mark, state = _MARK.search(line), _STATE.search(line)
        key = ids.BackendKey.of_mark(int(mark.group(1))) if mark else None
        if key is not None and not (state and state.group(1) in ENDED):
            counts[key] += 1
    return counts


def dump() -> str:
    """halab's zone as the switch daemon lists it."""
    return _appctl("dpctl/dump-conntrack", f"zone={ids.CT_ZONE}")


def forget_backend(ip: IPv4Address, port: int, ip_proto: int) -> None:
    """Flush every connection committed to ip:port over IP protocol `ip_proto` (matched on the
    reply side: it comes from there)."""
    _appctl("dpctl/flush-conntrack", f"zone={ids.CT_ZONE}", "",
            f"ct_nw_src={ip},ct_nw_proto={ip_proto},ct_tp_src={port}")


def forget_all() -> None:
    """Flush halab's zone."""
    _appctl("dpctl/flush-conntrack", f"zone={ids.CT_ZONE}")


def limit(connections: int) -> None:
    """At most this many connections in halab's zone: a SYN flood to a VIP cannot grow conntrack
    without bound (a new connection past the limit is dropped)."""
    _appctl("dpctl/ct-set-limits", f"zone={ids.CT_ZONE},limit={connections}")


def unlimit() -> None:
    _appctl("dpctl/ct-del-limits", f"zone={ids.CT_ZONE}")


def _appctl(*args: str) -> str:
    try:
        done = subprocess.run(["ovs-appctl", *args], capture_output=True, text=True, timeout=APPCTL_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConntrackError(f"ovs-appctl {args[0]}: {exc}") from None
    if done.returncode != 0:
        raise ConntrackError(f"ovs-appctl {args[0]}: {done.stderr.strip()[:200]}")
    return done.stdout
