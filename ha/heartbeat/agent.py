"""The heartbeat agent's event loop: send heartbeats on every link, listen on every link, decide.

The loop (ha.daemon) sleeps until the next thing that can change a decision: the next
heartbeat to send, the moment a link would fall silent, the next tie-breaker echo, a monitor's
run, the end of a FAULT or a retry pause, or a worker's result. Then it hands the `View` (what
it knows now) to the decision logic (fsm.Node) and carries out what comes back: start or stop
the resources, or ask the controller to fence the peer. Those run in one worker thread, in
order, so heartbeats never stop; their results come back as futures, read on the loop.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ha import assist, daemon, netlink
from ha.assist import HEARTBEAT_GROUP, AssistLink, Watch
from ha.checks import CheckRunner
from ha.heartbeat import fencing
from ha.heartbeat.config import HeartbeatConfig, Link
from ha.heartbeat.detector import Detector
from ha.heartbeat.freshness import Freshness, window_for
from ha.heartbeat.fsm import (
    REFUSED,
    Action,
    AnnounceResources,
    FencePeer,
    Node,
    Role,
    StartResources,
    StopResources,
    Transition,
    View,
)
from ha.heartbeat.packet import Heartbeat, PacketError, State, decode, encode
from ha.heartbeat.postgresql import REJOIN_TIMEOUT_S
from ha.heartbeat.resources import Resources, run_command, run_for_output
from ha.heartbeat.syncrep import GONE, SyncLease
from ha.heartbeat.tiebreaker import TieBreaker

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
#: Checks in a row that find the local database down (or a primary) before the standby rejoins it.
FOLLOW_FAILURES = 3


@dataclass(frozen=True)
class SyncChange:
    """The agent's job: make commits wait for the standby (on) or stop waiting (off)."""

    on: bool

    @property
    def mode(self) -> str:
        return "synchronous" if self.on else "asynchronous"


@dataclass(frozen=True)
class Rejoin:
    """The agent's job: make the local database a standby of the peer's again (pgrejoin)."""

    resource: str


class Agent(daemon.Agent):
    kind = "heartbeat"
    source = "halab-heartbeat"

    def __init__(self, config: HeartbeatConfig) -> None:
        super().__init__(config.event_log)
        self.cfg = config
        self.incarnation = time.time_ns()
        self.seq = 0
        self.sockets: dict[str, socket.socket] = {}
        self.detector = Detector(tuple(link.interface for link in config.links), config.interval, config.deadtime,
                                 config.detector, config.phi_threshold)
        self.freshness = Freshness(window=window_for(config.deadtime, config.interval))
        self.peer_state: State | None = None
        self.resources = Resources(config.resources)
        self.tiebreaker = (TieBreaker(config.tiebreaker, min(max(config.interval / 2, 0.01), 0.5))
                           if config.tiebreaker else None)
        self.reachable = config.tiebreaker is None  # the tie-breaker answers (for the log and status)
        self.monitor_failed = False
        self.node = Node(config.name, config.priority, config.peer, config.peer_priority, config.auto_failback,
                         config.failure_timeout, started=time.monotonic(), grace=config.initdead)
        self.worker = ThreadPoolExecutor(1)
        self.pending: list[tuple[Action | SyncChange | Rejoin, Future]] = []
        self.degraded: set[str] = set()
        self.monitors: dict[str, CheckRunner] = {}  # of the running services, on the loop's thread only
        self.heard_since: float | None = None  # since when the peer has been alive on some link
        self.next_beat = 0.0
        self.link_changes = netlink.LinkMonitor()
        self.vip_interfaces: set[str] = set()
        # Interfaces of VIPs that are down: the node cannot serve (as keepalived tracks interfaces).
        self.vip_links_down: set[str] = set()
        # A database replicating synchronously to the peer: the lease its beats carry (syncrep).
        self.sync_server = next((r.server for r in config.resources if r.server and r.server.synchronous_standby),
                                None)
        self.sync = (SyncLease(self.sync_server.synchronous_fallback_timeout, self.freshness.window,  # margin
                               self.sync_server.synchronous_mode_strict) if self.sync_server else None)
        self.sync_check: CheckRunner | None = None
        # A database that follows the peer's while this node is the standby (primary_conninfo set).
        self.follow = next((r for r in config.resources if r.server and r.server.primary_conninfo), None)
        self.follow_check: CheckRunner | None = None
        self.follow_failures = 0
        self.rejoining = False
        self.follow_after = 0.0   # after a failed rejoin: not before this
        self.refused: str | None = None   # the takeover refusal last logged
        self.assist = (AssistLink(config.assist_socket, lambda s: self.watch(s, "assist"), self.unwatch)
                       if config.assist_socket else None)

    def setup(self) -> None:
        netlink.warm_up()
        for link in self.cfg.links:
            netlink.link(link.interface)  # ValueError naming it if it does not exist
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, link.interface.encode())
            s.bind(("0.0.0.0", self.cfg.port))
            s.setblocking(False)
            self.sockets[link.interface] = s
            self.watch(s, link)
        if self.tiebreaker is not None:
            self.watch(self.tiebreaker, "tiebreaker")
        self.resources.prepare()
        if self.assist is not None:  # we stand in for the peer on every link; our address ranks us
            self.assist.watch(frozenset(
                Watch(str(link.peer_address), HEARTBEAT_GROUP, self.cfg.priority,
                      str(netlink.primary_address(netlink.link(link.interface).index, 4)))
                for link in self.cfg.links), time.monotonic())
        self.vip_interfaces = {r.interface for r in self.cfg.resources if r.kind == "vip"}
        self.vip_links_down = {name for name in self.vip_interfaces if not netlink.link(name).up}
        self.watch(self.link_changes, "netlink")

    # --- the loop (see ha.daemon.Agent) ---------------------------------------------------

    def start(self, now: float) -> None:
        errors = self.resources.stop_leftovers()
        reason = f"startup (leftovers not stopped: {'; '.join(errors)})" if errors else "startup"
        self.events.write(self.cfg.name, None, self.node.role.value, reason)

    def deadlines(self) -> list[float]:
        now = time.monotonic()
        checks = [*self.monitors.values(), *(c for c in (self.sync_check, self.follow_check) if c is not None)]
        times = [self.next_beat, *(r.deadline() for r in checks)]
        if self.assist is not None:
            times.append(self.assist.due())
        times += [t for t in (self.detector.next_change(now), self.node.next_change(now)) if t is not None]
        if self.tiebreaker is not None:
            times.append(self.tiebreaker.next_send)
        return times

    def ready(self, data: object, now: float) -> None:
        if data == "tiebreaker":
            self.tiebreaker.receive()
        elif data == "netlink":
            self._vip_links()
        elif data == "assist":
            self._assist_notices()
        elif data != "check":  # a monitor that ended is collected by tick()
            self._receive(data, self.sockets[data.interface])

    def tick(self, now: float) -> None:
        self._assist_step(now)
        if now >= self.next_beat:
            self._beat(now)
            self.next_beat = now + self.cfg.interval
        self._monitors(now)
        self._check_sync(now)
        self._follow(now)
        self._links(now)
        self._results(now)
        view = View(now, self.detector.peer_alive(now), self.peer_state, self._quorum(now), not self.monitor_failed,
                    links_up=not self.vip_links_down, refusal=self.sync.refusal(now) if self.sync else None)
        self._carry_out(self.node.step(view), now)
        self._log_refusal()

    def _log_refusal(self) -> None:
        """A takeover a resource refused changes no role: say so in the log, once each time."""
        refused = self.node.reason if self.node.reason.startswith(REFUSED) else None
        if refused is not None and refused != self.refused:
            self.events.write("takeover", None, "refused", refused.removeprefix(REFUSED))
        self.refused = refused

    def shutdown(self, now: float) -> None:
        self._stop_monitors()
        self._stop_check(self.follow_check)
        self.worker.shutdown(wait=True, cancel_futures=True)  # a start in progress ends first
        for error in self.resources.stop():
            self.events.write("resources", "running", "stop failed", error)
        for s in self.sockets.values():
            s.close()
        self.link_changes.close()
        self.events.write(self.cfg.name, self.node.role.value, "STOPPED", "shutdown")

    def status(self) -> dict:
        now = time.monotonic()
        return {"node": self.cfg.name, "role": self.node.role.value, "reason": self.node.reason,
                "peer": self.cfg.peer, "peer_state": self.peer_state.name if self.peer_state else None,
                "links": {link: self.detector.link_alive(link, now) for link in self.detector.links},
                "quorum": self.reachable, "resources": [r.name for r in self.resources.running],
                "dropped": dict(self.freshness.dropped),
                "replication": self.sync.status(now) if self.sync else None,
                "rejoining": self.rejoining}

    # --- failover assist ------------------------------------------------------------------

    def _assist_step(self, now: float) -> None:
        """Connect to the controller when due; once connected, say where we are (a gratuitous ARP
        of each of our link addresses: it locates nodes by ARP)."""
        if self.assist is None:
            return
        if self.assist.step(now):
            try:
                assist.announce_self([netlink.link(link.interface) for link in self.cfg.links])
            except ValueError:
                pass  # an interface gone: its link is dead anyway

    def _assist_notices(self) -> None:
        assert self.assist is not None
        for address, group in self.assist.read():
            for link in self.cfg.links:
                if group == HEARTBEAT_GROUP and str(link.peer_address) == address:
                    self.detector.unplug(link.interface)

    # --- heartbeats -------------------------------------------------------------------------

    def _beat(self, now: float) -> None:
        self.seq += 1
        flags = self.sync.flag() if self.sync and self.sync_check else 0
        beat = Heartbeat(self.cfg.name, self.incarnation, self.seq, self.node.role.wire,
                         nonce=self.freshness.next_nonce(now), echo=self.freshness.heard, flags=flags)
        if self.sync:
            self.sync.sent(flags, now)
        data = encode(beat, self.cfg.secret)
        for link in self.cfg.links:
            try:
                self.sockets[link.interface].sendto(data, (str(link.peer_address), self.cfg.port))
            except OSError:
                pass  # link down: its silence is what the peer will notice

    def _receive(self, link: Link, sock: socket.socket) -> None:
        """Take what arrived on `link`, at most a bounded batch (a flood must not starve the timers)."""
        for _ in range(daemon.RECEIVE_BATCH):
            try:
                data, (source, _port) = sock.recvfrom(512)
            except BlockingIOError:
                return
            now = time.monotonic()
            if source != str(link.peer_address):
                self.freshness.drop("not from the peer's address on that link")
                continue
            try:
                beat = decode(data, self.cfg.secret)
            except PacketError as exc:
                self.freshness.drop(str(exc))
                continue
            if beat.node != self.cfg.peer:
                self.freshness.drop("from another node")
                continue
            life = self.freshness.life
            if not self.freshness.accept(link.interface, beat, now):
                continue
            if life is not None and life != beat.incarnation:
                self.detector.forget()  # a new life of the peer: its old rhythm says nothing
            self.detector.beat(link.interface, now)
            self.peer_state = beat.state
            if self.sync:
                self.sync.heard(beat.state is State.ACTIVE, beat.flags, self.freshness.sent.get(beat.echo))

    def _links(self, now: float) -> None:
        """Report a link that went silent while another still carries the peer's heartbeats."""
        alive = set(self.detector.alive_links(now))
        if not alive:
            self.heard_since = None
        elif self.heard_since is None:
            self.heard_since = now
        if self.heard_since is None or now < self.heard_since + self.cfg.deadtime:
            return  # when the peer (re)appears, one link is simply heard first
        degraded = set(self.detector.links) - alive if alive else set()
        for link in sorted(degraded - self.degraded):
            heard = ", ".join(sorted(alive))
            self.events.write(link, "alive", "silent", f"link degraded: the peer is still heard on {heard}")
        for link in sorted(self.degraded - degraded):
            self.events.write(link, "silent", "alive", "link restored")
        self.degraded = degraded

    def _quorum(self, now: float) -> bool:
        """May we take over a silent peer: the tie-breaker answered since the peer fell silent."""
        if self.tiebreaker is None:
            return True
        self.tiebreaker.tick(now)
        reachable = self.tiebreaker.reachable(now, max(self.cfg.deadtime, 1.0))
        if reachable != self.reachable:
            where = f"tie-breaker {self.cfg.tiebreaker}"
            self.events.write("quorum", "no quorum" if reachable else "quorum", "quorum" if reachable else "no quorum",
                              f"{where} answers" if reachable else f"{where} does not answer")
            self.reachable = reachable
        last_heard = max((a.last for a in self.detector.arrivals.values() if a.last is not None), default=-1e18)
        # An echo sent once the next heartbeat was already due: an answer to one sent just before a
        # cut would vouch for a network this node may no longer be part of. A peer whose ports the
        # switch saw go down (assist) fell silent just now: an answer within the deadtime will do.
        return reachable and self.tiebreaker.answered_since(last_heard + self.cfg.interval)

    def _vip_links(self) -> None:
        """A VIP's interface went down or came back: the node cannot serve it there meanwhile."""
        for name, up in self.link_changes.changes():
            if name in self.vip_interfaces and up == (name in self.vip_links_down):
                self.vip_links_down.symmetric_difference_update({name})
                self.events.write(name, "down" if up else "up", "up" if up else "down",
                                  "a VIP's interface" + ("" if up else ": the node cannot serve it"))

    def _monitors(self, now: float) -> None:
        """Run the monitors of the running services; they live on this thread only (start, step, stop)."""
        for name, runner in self.monitors.items():
            if False in runner.step(now, self.watch, self.unwatch) and not self.monitor_failed:
                self.monitor_failed = True
                self.events.write(f"resource {name}", "running", "failed", "its monitor failed")

    def _check_sync(self, now: float) -> None:
        """While this node's database is the primary: is the synchronous standby replicating?
        Turn waiting for it on or off as the lease allows (in the worker, in order)."""
        if self.sync is None or self.sync_check is None or self.sync_server is None:
            return
        for ok in self.sync_check.step(now, self.watch, self.unwatch):
            on = self.sync.checked(self.sync_check.output if ok else GONE, now)
            if on is not None:
                argv = self.sync_server.synchronous_on() if on else self.sync_server.synchronous_off()
                future = self.worker.submit(run_command, argv)
                future.add_done_callback(lambda _f: self.wake())
                self.pending.append((SyncChange(on), future))

    def _follow(self, now: float) -> None:
        """While the peer is active and this node the standby: is the local database a running
        standby? After FOLLOW_FAILURES checks that say no (down, or a primary: the old one, back),
        rejoin it as a standby of the peer's, in the worker."""
        if self.follow is None or self.follow.server is None:
            return
        wanted = (self.node.role is Role.STANDBY and self.peer_state is State.ACTIVE and not self.rejoining
                  and self.detector.peer_alive(now) and now >= self.follow_after)
        if not wanted:
            self._stop_check(self.follow_check)
            self.follow_check, self.follow_failures = None, 0
            return
        if self.follow_check is None:
            self.follow_check = CheckRunner(self.follow.server.is_standby(), self.follow.monitor_interval,
                                            self.follow.monitor_timeout)
        for ok in self.follow_check.step(now, self.watch, self.unwatch):
            self.follow_failures = 0 if ok else self.follow_failures + 1
        if self.follow_failures >= FOLLOW_FAILURES:
            self._stop_check(self.follow_check)
            self.follow_check, self.follow_failures, self.rejoining = None, 0, True
            self.events.write(f"resource {self.follow.name}", "down", "rejoining",
                              f"{self.cfg.peer} is active and the local server is not a standby")
            future = self.worker.submit(run_for_output, self.follow.server.rejoin(), REJOIN_TIMEOUT_S + 30)
            future.add_done_callback(lambda _f: self.wake())
            self.pending.append((Rejoin(self.follow.name), future))

    # --- acting -----------------------------------------------------------------------------

    def _carry_out(self, actions: list[Action], now: float) -> None:
        """The jobs go to the worker, in order; then what happened is logged, in order, and role
        changes only here (a takeover's fencing and start need not wait for the log's writes)."""
        entries: list[tuple[str, str | None, str, str]] = []
        for action in actions:
            if isinstance(action, Transition):
                entries.append((self.cfg.name, action.old.value, action.new.value, action.reason))
                continue
            if isinstance(action, StartResources):
                # Checked before fencing too (View.refusal); the lease may have run out since.
                refusal = self.sync.refusal(now) if self.sync else None
                if refusal is not None:  # promoting would lose what the primary acknowledged alone
                    self.monitor_failed = True
                    entries.append(("resources", "starting", "promotion refused", refusal))
                    continue
                self.monitor_failed = False
                job = self.resources.start
            elif isinstance(action, StopResources):
                self._stop_monitors()
                if self.sync:
                    self.sync.demoted()
                job = self.resources.stop
            elif isinstance(action, AnnounceResources):
                entries.append(("resources", "running", "announced", action.reason))
                job = self.resources.announce
            else:
                job = self._fence
            future = self.worker.submit(job)
            future.add_done_callback(lambda _f: self.wake())
            self.pending.append((action, future))
        for entry in entries:
            self.events.write(*entry)
        if any(isinstance(action, Transition) for action in actions):
            self.write_status()

    def _results(self, now: float) -> None:
        """Read what the worker finished, in order: a failed start is a FAULT, a fencing answer decides."""
        while self.pending and self.pending[0][1].done():
            action, future = self.pending.pop(0)
            try:
                result = future.result()
            except Exception as exc:  # a bug in an action must not stop the loop: count it as a failure
                result = f"{type(exc).__name__}: {exc}"
            if isinstance(action, Rejoin):
                ok, said = result if isinstance(result, tuple) else (False, str(result))
                self.rejoining = False
                if not ok:
                    self.follow_after = now + self.cfg.failure_timeout
                self.events.write(f"resource {action.resource}", "rejoining", "standby" if ok else "rejoin failed",
                                  said.splitlines()[-1] if said else "")
            elif isinstance(action, SyncChange):
                assert self.sync is not None
                self.sync.changed(action.on, result is None)
                why = ("the standby replicates and has caught up" if action.on
                       else "the standby stopped replying and its lease has run out")
                self.events.write("replication", None, action.mode if result is None else "change failed",
                                  why if result is None else f"{why}; {result}")
            elif isinstance(action, FencePeer):
                answer = result if isinstance(result, dict) else {"ok": False, "error": str(result)}
                detail = answer.get("error", "") if not answer.get("ok") else f"ports {answer.get('ports')}"
                self._carry_out(self.node.fenced(bool(answer.get("ok")), now, str(detail)), now)
            elif isinstance(action, StartResources) and result is not None:
                self.monitor_failed = True  # cannot run here: FAULT on this step
                self.events.write("resources", "starting", "start failed", str(result))
            elif isinstance(action, StartResources) and self.node.role is Role.ACTIVE:
                self.monitors = {r.name: CheckRunner(r.monitor, r.monitor_interval, r.monitor_timeout)
                                 for r in self.cfg.resources if r.kind != "vip"}
                if self.sync and self.sync_server:
                    self.sync.promoted()
                    db = next(r for r in self.cfg.resources if r.server is self.sync_server)
                    self.sync_check = CheckRunner(self.sync_server.replication_state(), db.monitor_interval,
                                                  db.monitor_timeout, capture=True)
            elif isinstance(action, StopResources | AnnounceResources) and result:
                failed = "stop failed" if isinstance(action, StopResources) else "announce failed"
                for error in result if isinstance(result, list) else [result]:
                    self.events.write("resources", "running", failed, str(error))

    def _stop_monitors(self) -> None:
        for runner in [*self.monitors.values(), self.sync_check]:
            self._stop_check(runner)
        self.monitors = {}
        self.sync_check = None

    def _stop_check(self, runner: CheckRunner | None) -> None:
        if runner is None:
            return
        if runner.pidfd is not None:
            self.unwatch(runner.pidfd)
        runner.stop()

    def _fence(self) -> dict:
        if self.cfg.fence_socket is None:
            return {"ok": False, "error": "no [fencing] socket configured"}
        addresses = [str(link.peer_address) for link in self.cfg.links]
        return fencing.request(self.cfg.fence_socket, self.cfg.secret, "fence", self.cfg.peer, addresses)
