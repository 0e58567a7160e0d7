"""The VRRP agent daemon: one event loop around the state machines of its virtual routers.

The loop (ha.daemon) waits for VRRP packets, link events from netlink and the end of
health-check scripts, until the earliest timer of any router. This agent hands each packet that
passes the receive checks (RFC 9568 7.1) to its router, feeds tracking changes in as FAULT or
priority changes, fires due timers, and carries out the actions the state machines return.
Deadlines are absolute on the monotonic clock, so a late wake-up is never carried forward.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import ip_address

from ha import announce, assist, daemon, netlink, vmac
from ha.assist import AssistLink, Watch
from ha.checks import CheckRunner
from ha.track import Health, ScriptHealth, effect
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
from ha.vrrp.packet import Address, Advert, PacketError, decode, encode
from ha.vrrp.transport import MULTICAST, TTL, Received, Transport

NFT_TIMEOUT_S = 5.0
NOTIFY_TIMEOUT_S = 10.0

#: Linux ignores an ARP update within this long of an entry's last update (neigh locktime, 1 s).
NEIGH_LOCKTIME_S = 1.1

@dataclass
class Instance:
    """One configured virtual router with what the loop needs around its state machine."""

    cfg: InstanceConfig
    router: VirtualRouter
    link: netlink.Link  # where adverts go and come from
    vip_link: netlink.Link  # where the VIPs live: the link itself, or its virtual-MAC macvlan
    source: Address
    transport: Transport
    health: list[Health]
    checks: list[tuple[CheckRunner, ScriptHealth]]
    announcer: announce.Announcer
    drops: Counter = field(default_factory=Counter)
    adverts_sent: int = 0
    garp_due: float | None = None

    @property
    def destinations(self) -> list[Address]:
        return list(self.cfg.unicast_peer) or [MULTICAST[self.cfg.family]]


@dataclass(frozen=True)
class OnTransport:
    """One socket (an interface and address family) and the instances that share it, looked up
    by what each received packet carries."""

    transport: Transport
    instances: list[Instance]
    sources: set[Address]
    by_vrid: dict[int, Instance]


class Agent(daemon.Agent):
    kind = "vrrp"
    source = "halab-vrrp"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config.event_log)
        self.config = config
        self.instances: list[Instance] = []
        self.transports: dict[tuple[str, int], Transport] = {}
        self.links = netlink.LinkMonitor()
        self.watch(self.links, "netlink")
        self.notifiers: list[tuple[subprocess.Popen, float]] = []  # with when each was started
        self._following: list[tuple] = []  # what _follow_masters last acted on
        self.on_transport: dict[tuple[str, int], OnTransport] = {}  # by the key of self.transports
        self.assist = (AssistLink(config.assist_socket, lambda s: self.watch(s, "assist"), self.unwatch)
                       if any(i.assist for i in config.instances) else None)

    # --- set-up -------------------------------------------------------------------------

    def setup(self) -> None:
        netlink.warm_up()
        if any(not cfg.accept for cfg in self.config.instances) and shutil.which("nft") is None:
            raise ConfigError("accept = false needs nftables (the nft command); install the nftables package")
        for cfg in self.config.instances:
            try:
                link = netlink.link(cfg.interface)
                source = netlink.primary_address(link.index, cfg.family)
                health = [Health(cfg.interface, 0, not link.up)]
                health += [Health(t.interface, t.weight, not netlink.link(t.interface).up)
                           for t in cfg.track_interface]
            except ValueError as exc:
                raise ConfigError(f"vrrp_instance {cfg.name!r}: {exc}") from None
            checks = [(CheckRunner(s.argv, s.interval, s.timeout),
                       ScriptHealth(" ".join(s.argv), s.weight, fall=s.fall, rise=s.rise)) for s in cfg.track_script]
            health += [h for _runner, h in checks]
            key = (cfg.interface, cfg.family)
            if key not in self.transports:
                self.transports[key] = Transport(cfg.interface, link.index, cfg.family)
                self.watch(self.transports[key], key)
            vip_link = link
            if cfg.use_vmac:
                try:
                    vmac.create(link.index, link.name, cfg.use_vmac, cfg.virtual_router_id, cfg.family)
                except ValueError as exc:
                    raise ConfigError(f"vrrp_instance {cfg.name!r}: {exc}") from None
                vip_link = netlink.link(cfg.use_vmac)
            router = VirtualRouter(RouterConfig(cfg.virtual_router_id, cfg.priority, cfg.advert_int, source,
                                                cfg.preempt, cfg.preempt_delay, cfg.garp_lower_prio_delay))
            announcer = announce.Announcer(vip_link.name, vip_link.index, vip_link.mac)
            if cfg.family == 4:
                announcer.open()
            self.instances.append(Instance(cfg, router, link, vip_link, source, self.transports[key], health,
                                           checks, announcer))
            for peer in cfg.unicast_peer:
                _resolve_neighbour(peer)
        for key, transport in self.transports.items():
            sharing = [i for i in self.instances if i.transport is transport]
            self.on_transport[key] = OnTransport(transport, sharing, {i.source for i in sharing},
                                                 {i.cfg.virtual_router_id: i for i in sharing})

    # --- the loop -----------------------------------------------------------------------

    def start(self, now: float) -> None:
        for inst in self.instances:
            self._apply(inst, inst.router.startup(now), now)
            self._track(inst, now, "tracking at startup")
        self._assist_step(now)

    def ready(self, data: object, now: float) -> None:
        if data == "netlink":
            self._link_changes(now)
        elif data == "assist":
            self._assist_notices(now)
        elif data != "check":  # a check that ended is collected by tick()
            self._receive(self.on_transport[data])

    def tick(self, now: float) -> None:
        for inst in self.instances:
            self._run_checks(inst, now)
            self._apply(inst, inst.router.on_timer(now), now)
            if inst.garp_due is not None and now >= inst.garp_due:
                inst.garp_due = None
                self._announce(inst)
        self.notifiers = [(n, t) for n, t in self.notifiers if n.poll() is None and not _overdue(n, now - t)]
        self._assist_step(now)
        self._follow_masters()

    def _follow_masters(self) -> None:
        """Each interface queues the adverts of the masters its backups follow apart from the rest;
        with assist, the controller hears whose ports to watch. Runs after every wake-up: it does
        nothing unless a router's state, master or priority changed."""
        following = [(i.router.state, i.router.followed, i.router.priority) for i in self.instances]
        if following == self._following:
            return
        self._following = following
        for here in self.on_transport.values():
            here.transport.follow(frozenset(i.router.followed for i in here.instances
                                            if i.router.state is State.BACKUP and i.router.followed is not None))
        if self.assist is not None:
            self.assist.watch(frozenset(Watch(str(i.router.followed), i.cfg.virtual_router_id, i.router.priority,
                                              str(i.source))
                                        for i in self.instances if i.cfg.assist and i.router.state is State.BACKUP
                                        and i.router.followed is not None), time.monotonic())

    # --- failover assist ----------------------------------------------------------------

    def _assist_step(self, now: float) -> None:
        """Connect to the controller when due; once connected, say where we are (a gratuitous ARP
        of our own address: the controller locates masters by ARP)."""
        if self.assist is None:
            return
        if self.assist.step(now):
            assist.announce_self([i.link for i in self.instances if i.cfg.assist])

    def _assist_notices(self, now: float) -> None:
        assert self.assist is not None
        for address, group in self.assist.read():
            try:
                master = ip_address(address)
            except ValueError:
                continue  # not an address: nobody follows it
            for inst in self.instances:
                if inst.cfg.assist and inst.cfg.virtual_router_id == group:
                    self._apply(inst, inst.router.master_unplugged(now, master), now)

    def deadlines(self) -> list[float]:
        times = []
        for inst in self.instances:
            times += [t for t in (inst.router.next_deadline(), inst.garp_due) if t is not None]
            times += [runner.deadline() for runner, _h in inst.checks]
        if self.assist is not None:
            times.append(self.assist.due())
        return times

    def shutdown(self, now: float) -> None:
        for inst in self.instances:
            for runner, _h in inst.checks:
                runner.stop()
            try:
                self._apply(inst, inst.router.shutdown(now), now)
                if inst.cfg.use_vmac:
                    vmac.delete(inst.cfg.use_vmac)
            except Exception as exc:  # the interface may be gone already: nothing left to release there
                print(f"halab-vrrp: {inst.cfg.name}: shutdown: {exc}", file=sys.stderr, flush=True)
        for n, _started in self.notifiers:
            try:
                n.wait(2)
            except subprocess.TimeoutExpired:
                n.kill()
                n.wait()

    # --- tracking -----------------------------------------------------------------------

    def _link_changes(self, now: float) -> None:
        for ifname, up in self.links.changes():
            for inst in self.instances:
                touched = [h for h in inst.health if h.name == ifname and not isinstance(h, ScriptHealth)]
                for h in touched:
                    h.failed = not up
                if touched:
                    self._track(inst, now, f"{ifname} {'up' if up else 'down'}")

    def _run_checks(self, inst: Instance, now: float) -> None:
        for runner, health in inst.checks:
            for verdict in runner.step(now, self.watch, self.unwatch):
                if health.result(verdict):
                    self._track(inst, now, f"track_script {health.name} {'failed' if health.failed else 'recovered'}")

    def _track(self, inst: Instance, now: float, reason: str) -> None:
        """Turn the health of everything tracked into FAULT, recovery or a new priority."""
        fault, priority = effect(inst.cfg.priority, inst.health)
        if fault:
            self._apply(inst, inst.router.fault(now, reason), now)
            return
        if priority != inst.router.priority:
            self._apply(inst, inst.router.set_priority(now, priority), now)
        if inst.router.state is State.FAULT:
            self._apply(inst, inst.router.recover(now, reason), now)

    # --- receiving ----------------------------------------------------------------------

    def _receive(self, here: OnTransport) -> None:
        """A bounded batch per wake-up: a flood must not starve the timers (the rest waits in the socket)."""
        for _ in range(daemon.RECEIVE_BATCH):
            packet = here.transport.receive()
            if packet is None:
                return
            self._handle(here, packet, time.monotonic())

    def _handle(self, here: OnTransport, pkt: Received, now: float) -> None:
        """Every receive check of RFC 9568 7.1; a failed check counts a drop and does nothing else."""
        if pkt.ttl is None:
            here.instances[0].drops["bad_ip_header"] += 1
            return
        if pkt.src in here.sources:
            return  # our own advert
        try:
            adv = decode(pkt.payload, pkt.src, pkt.dst)
        except PacketError as exc:
            here.instances[0].drops[exc.reason] += 1
            return
        inst = here.by_vrid.get(adv.vrid)
        if inst is None:
            here.instances[0].drops["unknown_vrid"] += 1
        elif not inst.cfg.unicast_peer and pkt.ttl != TTL:
            inst.drops["bad_ttl"] += 1
        elif not inst.cfg.unicast_peer and pkt.dst != MULTICAST[inst.cfg.family]:
            inst.drops["bad_destination"] += 1
        elif inst.cfg.unicast_peer and pkt.src not in inst.cfg.unicast_peer:
            inst.drops["not_a_peer"] += 1
        elif inst.router.state is State.FAULT:
            inst.drops["in_fault"] += 1
        else:
            self._apply(inst, inst.router.on_advert(now, adv, pkt.src), now)

    # --- acting -------------------------------------------------------------------------

    def _apply(self, inst: Instance, actions: list[Action], now: float) -> None:
        for action in actions:
            if isinstance(action, SendAdvert):
                self._send(inst, action.priority)
            elif isinstance(action, TakeAddresses):
                netlink.add_addresses(inst.vip_link.index, inst.cfg.virtual_ipaddress)
                if not inst.cfg.accept:
                    self._refuse_traffic(inst, True)
                self._announce(inst)
                inst.garp_due = now + inst.cfg.garp_master_delay if inst.cfg.garp_master_delay > 0 else None
            elif isinstance(action, Announce):
                # A client that refreshed its ARP entry for the VIP in the last second (Linux's
                # neigh locktime) ignores this burst: send one more once that second has passed.
                self._announce(inst)
                again = now + NEIGH_LOCKTIME_S
                inst.garp_due = again if inst.garp_due is None else min(inst.garp_due, again)
            elif isinstance(action, ReleaseAddresses):
                inst.garp_due = None
                netlink.remove_addresses(inst.vip_link.index, inst.cfg.virtual_ipaddress)
                if not inst.cfg.accept:
                    self._refuse_traffic(inst, False)
            elif isinstance(action, Transition):
                self._transition(inst, action)

    def _send(self, inst: Instance, priority: int) -> None:
        adv = Advert(inst.cfg.virtual_router_id, priority, round(inst.cfg.advert_int * 100),
                     tuple(a.ip for a in inst.cfg.virtual_ipaddress))
        for dst in inst.destinations:
            try:
                inst.transport.send(encode(adv, inst.source, dst, inst.cfg.checksum_with_pseudo_header),
                                    inst.source, dst)
                inst.adverts_sent += 1
            except OSError:
                inst.drops["send_failed"] += 1  # link down: tracking turns that into FAULT

    def _announce(self, inst: Instance) -> None:
        vips = [a.ip for a in inst.cfg.virtual_ipaddress]
        try:
            inst.announcer.announce(vips, max(1, inst.cfg.garp_master_repeat))
        except OSError:
            inst.drops["announce_failed"] += 1

    def _refuse_traffic(self, inst: Instance, refuse: bool) -> None:
        """accept = false (RFC 9568 Accept_Mode False): a master does not accept packets for the VIPs."""
        table = f"halab_vrrp_{inst.cfg.virtual_router_id}_{inst.cfg.family}"
        if refuse:
            fam = "ip" if inst.cfg.family == 4 else "ip6"
            vips = ", ".join(str(a.ip) for a in inst.cfg.virtual_ipaddress)
            rules = (f"table inet {table} {{\n  chain input {{\n    type filter hook input priority 0;\n"
                     f"    {fam} daddr {{ {vips} }} drop;\n  }}\n}}\n")
        else:  # added first, so that deleting it succeeds when it was not there
            rules = f"add table inet {table}\ndelete table inet {table}\n"
        try:
            done = subprocess.run(["nft", "-f", "-"], input=rules, capture_output=True, text=True, check=False,
                                  timeout=NFT_TIMEOUT_S)
            failed = done.returncode != 0
        except (OSError, subprocess.TimeoutExpired):
            failed = True
        if failed:
            inst.drops["accept_rule_failed"] += 1

    def _transition(self, inst: Instance, t: Transition) -> None:
        self.events.write(inst.cfg.name, t.old.value, t.new.value, t.reason, priority=inst.router.priority)
        if inst.cfg.notify:
            state = "STOP" if t.new is State.INIT else t.new.value
            try:
                self.notifiers.append((subprocess.Popen(
                    [inst.cfg.notify, "INSTANCE", inst.cfg.name, state, str(inst.router.priority)],
                    stdin=subprocess.DEVNULL), time.monotonic()))
            except OSError:
                inst.drops["notify_failed"] += 1
        self.write_status()

    def status(self) -> dict:
        return {
            "instances": [{
                "name": i.cfg.name, "interface": i.cfg.interface, "vrid": i.cfg.virtual_router_id,
                "state": i.router.state.value, "priority": i.router.priority,
                "master_adver_interval": i.router.master_adver_interval, "adverts_sent": i.adverts_sent,
                "drops": dict(i.drops), "vips": [str(a) for a in i.cfg.virtual_ipaddress],
                "failed": [h.name for h in i.health if h.failed],
            } for i in self.instances],
            **({"assist": "connected" if self.assist.connected else "not connected"} if self.assist else {}),
        }


def _overdue(proc: subprocess.Popen, age: float) -> bool:
    """A notify script still running after NOTIFY_TIMEOUT_S is killed (and reaped)."""
    if age < NOTIFY_TIMEOUT_S:
        return False
    proc.kill()
    proc.wait()
    return True


def _resolve_neighbour(peer: Address) -> None:
    """Make the kernel resolve a unicast peer's MAC now (one datagram to the discard port), so the
    first advert as master does not wait for ARP or ND while the peer's master-down timer runs."""
    family = socket.AF_INET6 if peer.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"", (str(peer), 9))
        except OSError:
            pass  # no route yet: the adverts will resolve it
