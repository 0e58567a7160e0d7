"""Print the moment each VRRP advert arrives on a host, so a fault can be placed at a known phase.

    python -m harness.advert_watch --interface client1-eth0 --seconds 20

One line per advert, `<time.monotonic()> <source address> <virtual router id>`, for `--seconds`
seconds. The failover benchmark cuts the master's link right after one of its adverts, which
pins the backup's Master_Down_Interval to a known start, so two agents are compared on equal
terms instead of on the luck of where the cut fell between two adverts; the instances benchmark
times each virtual router's adverts.
"""

from __future__ import annotations

import argparse
import select
import socket
import sys
import time

PROTO_VRRP = 112


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.advert_watch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interface", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO_VRRP) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.interface.encode())
        mreqn = socket.inet_aton("224.0.0.18") + bytes(4) + socket.if_nametoindex(args.interface).to_bytes(4, "little")
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        print("watching", flush=True)
        end = time.monotonic() + args.seconds
        while (left := end - time.monotonic()) > 0:
            if select.select([s], [], [], left)[0]:
                data = s.recv(2048)
                header = (data[0] & 0x0F) * 4 if data else 0
                if len(data) < max(header, 20) + 2:
                    continue  # too short to be an advert
                vrid = data[header + 1]  # after the IP header: version/type, then VRID
                print(f"{time.monotonic():.6f} {socket.inet_ntoa(data[12:16])} {vrid}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
