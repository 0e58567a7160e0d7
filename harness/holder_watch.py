"""Who holds an address, sampled on several lab hosts at once from the root namespace.

    python -m harness.holder_watch --address 10.0.0.100 --seconds 600 server1=PID server2=PID

One netlink socket per host, opened inside the host's network namespace (the namespace of the
host's shell, PID) and kept after returning to the root one: the watcher is no process of any
host, so crashing a host (which kills everything in its namespace) does not stop the samples.
Every `--interval` it asks each host whether the address is configured there and prints a line
whenever the set of holders changes: `<monotonic time> <host,host>` (`-` for nobody).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

from pyroute2 import IPRoute

CLONE_NEWNET = 0x40000000


def netlink_in(pid: int) -> IPRoute:
    """A netlink socket in the network namespace of process `pid` (this process stays where it is)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the namespace of {pid}")
        try:
            return IPRoute()
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home")
    finally:
        os.close(home)
        os.close(there)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("hosts", nargs="+", help="HOST=PID of the host's shell")
    args = parser.parse_args()
    sockets = {name: netlink_in(int(pid)) for name, pid in (h.split("=", 1) for h in args.hosts)}
    print(f"{time.monotonic():.6f} watching", flush=True)
    last: str | None = None
    end = time.monotonic() + args.seconds
    next_at = time.monotonic()
    while (now := time.monotonic()) < end:
        holders = ",".join(name for name, ipr in sockets.items() if ipr.get_addr(address=args.address)) or "-"
        if holders != last:
            print(f"{now:.6f} {holders}", flush=True)
            last = holders
        next_at += args.interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
