"""The VRRP agent daemon: one event loop around the state machines of its virtual routers.

The loop waits on its raw sockets until the earliest timer of any router, hands each packet
that survives the receive checks to its router, fires due timers, and carries out the actions
the state machines return (send an advert, take or release the addresses, log, notify).
Deadlines are absolute on the monotonic clock, so a late wake-up is never carried forward.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from ha import announce, netlink
from ha.eventlog import EventLog
from ha.vrrp.config import AgentConfig, ConfigError, InstanceConfig
from ha.vrrp.fsm import (
    Action,
    Announce,
    ReleaseAddresses,
    RouterConfig,
    SendAdvert,
    State,
    TakeAddresses,
    Transition,
    VirtualRouter,
)
from ha.vrrp.packet import PROTO_VRRP, Advert, PacketError, decode, encode

MULTICAST_V4 = IPv4Address("224.0.0.18")
TTL = 255
STATUS_EVERY_S = 1.0
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def status_dir() -> Path:
    return Path(os.environ.get("HALAB_STATE_DIR", "/run/halab")) / "vrrp"


@dataclass
class Instance:
    """One configured virtual router with what the loop needs around its state machine."""

    cfg: InstanceConfig
    router: VirtualRouter
    link: netlink.Link
    source: IPv4Address
    drops: Counter = field(default_factory=Counter)
    adverts_sent: int = 0
    garp_due: list[float] = field(default_factory=list)

    @property
    def destinations(self) -> list[IPv4Address]:
        return list(self.cfg.unicast_peer) or [MULTICAST_V4]


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.log = EventLog(config.event_log)
        self.instances: list[Instance] = []
        self.sockets: dict[str, socket.socket] = {}  # one raw socket per interface
        self.sel = selectors.DefaultSelector()
        self.children: list[subprocess.Popen] = []
        self.stopping = False
        self.status_path = status_dir() / f"agent-{os.getpid()}.json"

    # --- set-up -------------------------------------------------------------------------

    def setup(self) -> None:
        for cfg in self.config.instances:
            if cfg.family != 4:
                raise ConfigError(f"vrrp_instance {cfg.name!r}: IPv6 virtual addresses are not supported yet")
            try:
                link = netlink.link(cfg.interface)
                source = netlink.primary_address(link.index, 4)
            except ValueError as exc:
                raise ConfigError(f"vrrp_instance {cfg.name!r}: interface = {cfg.interface!r}: {exc}") from None
            router = VirtualRouter(RouterConfig(cfg.virtual_router_id, cfg.priority, cfg.advert_int, source,
                                                cfg.preempt, cfg.preempt_delay, cfg.accept))
            self.instances.append(Instance(cfg, router, link, source))
            if cfg.interface not in self.sockets:
                self.sockets[cfg.interface] = self._open_socket(link)
                self.sel.register(self.sockets[cfg.interface], selectors.EVENT_READ, cfg.interface)

    @staticmethod
    def _open_socket(link: netlink.Link) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, PROTO_VRRP)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.name.encode())
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        mreqn = struct.pack("4s4si", MULTICAST_V4.packed, b"\0" * 4, link.index)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        s.setblocking(False)
        return s

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        self.sel.register(wake_r, selectors.EVENT_READ, None)
        now = time.monotonic()
        for inst in self.instances:
            self._apply(inst, inst.router.startup(now), now)
        status_due = now
        while not self.stopping:
            now = time.monotonic()
            deadline = min(self._next_deadline() or status_due, status_due)
            timeout = None if deadline is None else max(0.0, deadline - now)
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    wake_r.recv(64)
                else:
                    self._receive(key.data)
            now = time.monotonic()
            for inst in self.instances:
                self._apply(inst, inst.router.on_timer(now), now)
                self._repeat_garps(inst, now)
            self._reap_children()
            if now >= status_due:
                self._write_status()
                status_due = now + STATUS_EVERY_S
        now = time.monotonic()
        for inst in self.instances:
            self._apply(inst, inst.router.shutdown(now), now)
        self.status_path.unlink(missing_ok=True)
        return 0

    def _next_deadline(self) -> float | None:
        times = [t for i in self.instances for t in (i.router.next_deadline(), *i.garp_due[:1]) if t is not None]
        return min(times, default=None)

    # --- receiving ----------------------------------------------------------------------

    def _receive(self, ifname: str) -> None:
        sock = self.sockets[ifname]
        while True:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                return
            self._handle(ifname, data, time.monotonic())

    def _handle(self, ifname: str, data: bytes, now: float) -> None:
        """Apply every receive check of RFC 9568 7.1; a failed check counts a drop and nothing else."""
        candidates = [i for i in self.instances if i.cfg.interface == ifname]
        if len(data) < 20 or data[0] >> 4 != 4:
            candidates[0].drops["bad_ip_header"] += 1
            return
        ihl, ttl = (data[0] & 0x0F) * 4, data[8]
        src, dst = IPv4Address(data[12:16]), IPv4Address(data[16:20])
        if any(src == i.source for i in candidates):
            return  # our own advert
        try:
            adv = decode(data[ihl:], src, dst)
        except PacketError as exc:
            candidates[0].drops[exc.reason] += 1
            return
        inst = next((i for i in candidates if i.cfg.virtual_router_id == adv.vrid), None)
        if inst is None:
            candidates[0].drops["unknown_vrid"] += 1
            return
        if not inst.cfg.unicast_peer and (ttl != TTL or dst != MULTICAST_V4):
            inst.drops["bad_ttl" if ttl != TTL else "bad_destination"] += 1
            return
        if inst.cfg.unicast_peer and src not in inst.cfg.unicast_peer:
            inst.drops["not_a_peer"] += 1
            return
        self._apply(inst, inst.router.on_advert(now, adv, src), now)

    # --- acting -------------------------------------------------------------------------

    def _apply(self, inst: Instance, actions: list[Action], now: float) -> None:
        for action in actions:
            if isinstance(action, SendAdvert):
                self._send(inst, action.priority)
            elif isinstance(action, TakeAddresses):
                netlink.add_addresses(inst.link.index, inst.cfg.virtual_ipaddress)
                self._garp(inst)
                inst.garp_due = [now + inst.cfg.garp_master_delay] if inst.cfg.garp_master_delay > 0 else []
            elif isinstance(action, Announce):
                self._garp(inst)
            elif isinstance(action, ReleaseAddresses):
                inst.garp_due = []
                netlink.remove_addresses(inst.link.index, inst.cfg.virtual_ipaddress)
            elif isinstance(action, Transition):
                self._transition(inst, action)

    def _send(self, inst: Instance, priority: int) -> None:
        adv = Advert(inst.cfg.virtual_router_id, priority, round(inst.cfg.advert_int * 100),
                     tuple(a.ip for a in inst.cfg.virtual_ipaddress))
        pktinfo = struct.pack("=I4s4s", inst.link.index, inst.source.packed, b"\0" * 4)
        for dst in inst.destinations:
            payload = encode(adv, inst.source, dst, inst.cfg.checksum_with_pseudo_header)
            try:
                self.sockets[inst.cfg.interface].sendmsg([payload], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0,
                                                          (str(dst), 0))
                inst.adverts_sent += 1
            except OSError:
                inst.drops["send_failed"] += 1  # link down: FAULT handling is the tracker's job

    def _garp(self, inst: Instance) -> None:
        vips = [a.ip for a in inst.cfg.virtual_ipaddress]
        for _ in range(max(1, inst.cfg.garp_master_repeat)):
            try:
                announce.send_gratuitous_arps(inst.cfg.interface, inst.link.mac, vips)
            except OSError:
                inst.drops["garp_failed"] += 1

    def _repeat_garps(self, inst: Instance, now: float) -> None:
        if inst.garp_due and now >= inst.garp_due[0]:
            inst.garp_due = []
            self._garp(inst)

    def _transition(self, inst: Instance, t: Transition) -> None:
        self.log.write(instance=inst.cfg.name, **{"from": t.old.value, "to": t.new.value}, reason=t.reason,
                       priority=inst.router.priority)
        if inst.cfg.notify:
            state = "STOP" if t.new is State.INIT else t.new.value
            self.children.append(subprocess.Popen([inst.cfg.notify, "INSTANCE", inst.cfg.name, state,
                                                   str(inst.router.priority)], stdin=subprocess.DEVNULL))
        self._write_status()

    def _reap_children(self) -> None:
        self.children = [c for c in self.children if c.poll() is None]

    def _write_status(self) -> None:
        status = {
            "pid": os.getpid(),
            "netns": os.stat("/proc/self/ns/net").st_ino,
            "instances": [{
                "name": i.cfg.name, "interface": i.cfg.interface, "vrid": i.cfg.virtual_router_id,
                "state": i.router.state.value, "priority": i.router.priority,
                "master_adver_interval": i.router.master_adver_interval, "adverts_sent": i.adverts_sent,
                "drops": dict(i.drops), "vips": [str(a) for a in i.cfg.virtual_ipaddress],
            } for i in self.instances],
        }
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, self.status_path)


def read_statuses(all_hosts: bool = False) -> list[dict]:
    """Status of the live agents in this network namespace (every namespace with all_hosts)."""
    here = os.stat("/proc/self/ns/net").st_ino
    found = []
    for path in sorted(status_dir().glob("agent-*.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{status['pid']}").exists() and (all_hosts or status["netns"] == here):
            found.append(status)
    return found

