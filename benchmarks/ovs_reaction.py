"""Benchmark: how soon Open vSwitch itself reacts to a link cut, the floor under any assisted failover.

    sudo .venv/bin/python benchmarks/ovs_reaction.py [--runs 10]

A bridge of this machine's datapath (userspace here), no controller, three hosts. h3 sends a
frame every 0.2 ms to a virtual MAC whose flow points at an OpenFlow fast-failover group: h1's
port first, h2's if h1's is down. Each run cuts the switch's end of h1's link (one netlink
call, as `halab fault link-cut` does) and reads, relative to the moment that call returned:

- when Open vSwitch sent its PORT_STATUS saying LINK_DOWN (`ovs-ofctl --timestamp monitor`, to
  the millisecond): what a controller such as halab's assist learns first;
- when the first frame reached h2: when the switch's own fast-failover group had turned to the
  second bucket, with no controller at all.

If the group turned sooner than the port status arrives, a design that moves the VIP's traffic
in the switch itself (a fast-failover group, the backup holding the VIP beforehand) would beat
the controller's hint. Everything goes to runs/benchmark-ovs-reaction-<date>/summary.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ETHERTYPE = 0x88B5  # IEEE's local experimental ethertype: nothing else on the hosts sends it
VMAC = "00:00:5e:00:01:01"
SPACING_S = 0.0002


def receive(interface: str) -> None:
    """In a host: print the monotonic times of the first and last frame heard, once SIGTERM comes."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    sock.bind((interface, 0))
    sock.settimeout(0.1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    first = last = None
    while not stop.is_set():
        try:
            sock.recv(2048)
        except OSError:  # a timeout, or the link cut under us
            continue
        last = time.monotonic()
        first = first or last
    print(json.dumps({"first": first, "last": last}), flush=True)


def send(interface: str, mac: str) -> None:
    """In a host: a frame to `mac` every SPACING_S until killed."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((interface, 0))
    frame = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex("020000000003") + ETHERTYPE.to_bytes(2, "big")
    frame += bytes(46)
    while True:
        try:
            sock.send(frame)
        except OSError:
            pass
        time.sleep(SPACING_S)


def _ofctl(*argv: str) -> None:
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *argv], check=True, capture_output=True)


def _link_down_at(monitor_output: str, cut_wall: float, cut_mono: float) -> float | None:
    """The monotonic time of the first PORT_STATUS after the cut whose state is LINK_DOWN."""
    stamp = None
    for line in monitor_output.splitlines():
        found = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+):", line)
        if found:
            stamp = datetime.datetime.fromisoformat(found.group(1)).astimezone().timestamp()
        elif "LINK_DOWN" in line and stamp is not None and stamp >= cut_wall - 0.001:
            return cut_mono + (stamp - cut_wall)
    return None


def one_run(net) -> dict[str, float | None]:
    from pyroute2 import IPRoute

    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-groups", "s1"], capture_output=True, check=False)
    _ofctl("del-flows", "s1")
    _ofctl("add-group", "s1", "group_id=1,type=ff,bucket=watch_port:1,actions=output:1,"
                              "bucket=watch_port:2,actions=output:2")
    _ofctl("add-flow", "s1", f"priority=100,dl_dst={VMAC},actions=group:1")
    me = [sys.executable, os.path.abspath(__file__)]
    receivers = {h: net[h].popen([*me, "rx", f"{h}-eth0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True) for h in ("h1", "h2")}
    monitor = subprocess.Popen(["ovs-ofctl", "--timestamp", "-O", "OpenFlow13", "monitor", "s1", "65535"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(monitor.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    time.sleep(0.3)
    sender = net["h3"].popen([*me, "tx", "h3-eth0", VMAC])
    try:
        time.sleep(0.5)
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname="s1-eth1")[0]
            ipr.link("set", index=index, state="down")
            cut_wall, cut = time.time(), time.monotonic()
        net["h1"].cmd("ip link set h1-eth0 down")
        time.sleep(0.5)
    finally:
        sender.kill()
        sender.wait()
        heard = {}
        for host, proc in receivers.items():
            proc.send_signal(signal.SIGTERM)
            heard[host] = json.loads(proc.communicate(timeout=5)[0] or "{}")
        monitor.terminate()
        monitor.wait()
        reader.join(2)
    net["h1"].cmd("ip link set h1-eth0 up")
    with IPRoute() as ipr:
        ipr.link("set", index=index, state="up")
    port_status = _link_down_at("".join(chunks), cut_wall, cut)
    rerouted = heard["h2"].get("first")
    return {"port_status_ms": None if port_status is None else (port_status - cut) * 1000,
            "fast_failover_ms": None if rerouted is None else (rerouted - cut) * 1000,
            "last_at_h1_ms": None if heard["h1"].get("last") is None else (heard["h1"]["last"] - cut) * 1000}


def main() -> int:
    from mininet.net import Mininet
    from mininet.node import OVSSwitch
    from mininet.topo import Topo
    from rich.console import Console
    from rich.table import Table

    from harness.measure import median

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, choices=range(1, 101), metavar="1..100")
    args = parser.parse_args()

    class Three(Topo):
        def build(self) -> None:
            s1 = self.addSwitch("s1", protocols="OpenFlow13", failMode="secure", datapath="user")
            for i in (1, 2, 3):
                self.addLink(self.addHost(f"h{i}"), s1, port2=i)

    net = Mininet(topo=Three(), switch=OVSSwitch, controller=None)
    net.start()
    try:
        runs = [one_run(net) for _ in range(args.runs)]
    finally:
        net.stop()
    table = Table(title=f"Open vSwitch's reaction to a cut link, ms after the cut ({args.runs} runs)")
    for col in ("what", "median", "min", "max", "runs seen"):
        table.add_column(col)
    for key, what in (("port_status_ms", "PORT_STATUS LINK_DOWN sent (1 ms resolution)"),
                      ("fast_failover_ms", "first frame through the fast-failover group's second bucket")):
        seen = [r[key] for r in runs if r[key] is not None]
        table.add_row(what, *(f"{f(seen):.1f}" if seen else "-" for f in (median, min, max)), str(len(seen)))
    Console().print(table)
    out = Path("runs") / f"benchmark-ovs-reaction-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(["ovs-vsctl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    (out / "summary.json").write_text(json.dumps({
        "runs": runs, "machine": {"cpus": os.cpu_count(), "kernel": platform.release()}, "openvswitch": version},
        indent=1))
    print(f"summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["rx"]:
        receive(sys.argv[2])
    elif sys.argv[1:2] == ["tx"]:
        send(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
