"""The heartbeat agent's event loop: send heartbeats on every link, listen on every link, decide.

One selector; every `tick` the loop sends a heartbeat on each link, reads the detector (peer
alive on which links), the quorum check and the resource monitors, hands the `View` to the
decision logic (fsm.Node) and carries out what it says: start or stop the resources, or ask
the controller to fence the peer (in a worker thread; the loop keeps beating meanwhile).
"""

from __future__ import annotations

import selectors
import signal
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor

from ha import netlink, statusfile
from ha.eventlog import EventLog
from ha.heartbeat import fencing
from ha.heartbeat.config import HeartbeatConfig
from ha.heartbeat.detector import Detector
from ha.heartbeat.fsm import Action, Node, Role, View
from ha.heartbeat.packet import Heartbeat, PacketError, State, decode, encode
from ha.heartbeat.resources import Resources
from ha.heartbeat.tiebreaker import TieBreaker

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
STATUS_EVERY_S = 0.5


class Agent:
    def __init__(self, config: HeartbeatConfig) -> None:
        self.cfg = config
        self.log = EventLog(config.event_log)
        self.incarnation = time.time_ns()
        self.seq = 0
        self.sel = selectors.DefaultSelector()
        self.sockets: dict[str, socket.socket] = {}
        self.detector = Detector(tuple(link.interface for link in config.links), config.interval, config.deadtime,
                                 config.detector, config.phi_threshold)
        self.peer_incarnation: int | None = None
        self.peer_state: State | None = None
        self.resources = Resources(config.resources)
        self.tiebreaker = (TieBreaker(config.tiebreaker, min(max(config.interval / 2, 0.01), 0.5))
                           if config.tiebreaker else None)
        self.reachable = config.tiebreaker is None  # the tie-breaker answers (for the log and status)
        self.monitor_failed = False
        self.node = Node(config.name, config.priority, config.peer, config.peer_priority, config.auto_failback,
                         config.failure_timeout, started=time.monotonic(), grace=config.initdead)
        self.worker = ThreadPoolExecutor(1)
        self.fencing: Future | None = None
        self.degraded: set[str] = set()
        self.stopping = False
        self.logged: tuple[Role, str] | None = None
        self.status_path = statusfile.own_path("heartbeat")

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
            self.sel.register(s, selectors.EVENT_READ, link)
        if self.tiebreaker is not None:
            self.sel.register(self.tiebreaker, selectors.EVENT_READ, "tiebreaker")

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        self._event(Role.STANDBY, "startup")
        tick = min(self.cfg.interval, 0.05)
        next_beat = status_due = time.monotonic()
        while not self.stopping:
            now = time.monotonic()
            if now >= next_beat:
                self._beat()
                next_beat = now + self.cfg.interval
            for key, _ in self.sel.select(max(0.0, min(next_beat, now + tick) - now)):
                if key.data == "tiebreaker":
                    self.tiebreaker.receive()
                else:
                    self._receive(key.data, key.fileobj)
            now = time.monotonic()
            self._checks(now)
            self._links(now)
            if self.fencing is not None and self.fencing.done():
                answer, self.fencing = self.fencing.result(), None
                detail = answer.get("error", "") if not answer.get("ok") else f"ports {answer.get('ports')}"
                self._carry_out(self.node.fenced(bool(answer.get("ok")), now, detail), now)
            view = View(now, self.detector.peer_alive(now), self.peer_state, self._quorum(now),
                        not self.monitor_failed)
            self._carry_out(self.node.step(view), now)
            if now >= status_due:
                self._write_status()
                status_due = now + STATUS_EVERY_S
        self._shutdown()
        return 0

    def _beat(self) -> None:
        self.seq += 1
        data = encode(Heartbeat(self.cfg.name, self.incarnation, self.seq, self.node.role.wire), self.cfg.secret)
        for link in self.cfg.links:
            try:
                self.sockets[link.interface].sendto(data, (str(link.peer_address), self.cfg.port))
            except OSError:
                pass  # link down: its silence is what the peer will notice

    def _receive(self, link, sock: socket.socket) -> None:
        while True:
            try:
                data, _addr = sock.recvfrom(512)
            except BlockingIOError:
                return
            try:
                beat = decode(data, self.cfg.secret)
            except PacketError:
                continue
            if beat.node != self.cfg.peer:
                continue
            if beat.incarnation != self.peer_incarnation:
                if self.peer_incarnation is not None:
                    self.detector.forget()
                self.peer_incarnation = beat.incarnation
            self.detector.beat(link.interface, time.monotonic())
            self.peer_state = beat.state

    def _quorum(self, now: float) -> bool:
        """May we take over a silent peer: the tie-breaker answered since the peer fell silent."""
        if self.tiebreaker is None:
            return True
        self.tiebreaker.tick(now)
        reachable = self.tiebreaker.reachable(now, max(self.cfg.deadtime, 1.0))
        if reachable != self.reachable:
            self.log.write(node=self.cfg.name, event="quorum" if reachable else "no quorum")
            self.reachable = reachable
        last_heard = max((a.last for a in self.detector.arrivals.values() if a.last is not None), default=-1e18)
        # An echo sent once the next heartbeat was already due: an answer to one sent just before a
        # cut would vouch for a network this node may no longer be part of.
        return self.tiebreaker.answered_since(last_heard + self.cfg.interval)

    def _checks(self, now: float) -> None:
        for name, runner in list(self.resources.monitors.items()):
            if runner.proc is None and now >= runner.next_run:
                runner.start(now)
            verdict = runner.finish(now)
            if verdict is None:
                continue
            if not verdict:
                self.monitor_failed = True
                self.log.write(node=self.cfg.name, event="monitor failed", resource=name)

    def _links(self, now: float) -> None:
        """Report a link that went silent while another still carries the peer's heartbeats."""
        if now < self.node.started + self.cfg.deadtime:
            return  # at start, one link is simply heard first
        alive = set(self.detector.alive_links(now))
        degraded = set(self.detector.links) - alive if alive else set()
        for link in sorted(degraded - self.degraded):
            self.log.write(node=self.cfg.name, event="link degraded", link=link)
        for link in sorted(self.degraded - degraded):
            self.log.write(node=self.cfg.name, event="link restored", link=link)
        self.degraded = degraded

    def _carry_out(self, actions: list[Action], now: float) -> None:
        """Fencing and resource commands run in one worker thread, in order: the loop keeps beating.

        Every change of role or of its reason is logged, with or without actions."""
        for action in actions:
            if action.kind == "fence":
                self.fencing = self.worker.submit(self._fence)
            elif action.kind == "start":
                self.monitor_failed = False
                self.worker.submit(self._start)
            elif action.kind == "stop":
                self.worker.submit(self.resources.stop)
        if (self.node.role, self.node.reason) != self.logged:
            self._event(self.node.role, self.node.reason)

    def _start(self) -> None:
        error = self.resources.start()
        if error is not None:
            self.monitor_failed = True  # cannot run here: FAULT on the next step
            self.log.write(node=self.cfg.name, event="start failed", error=error)

    def _fence(self) -> dict:
        if self.cfg.fence_socket is None:
            return {"ok": False, "error": "no [fencing] socket configured"}
        addresses = [str(link.peer_address) for link in self.cfg.links]
        return fencing.request(self.cfg.fence_socket, self.cfg.secret, "fence", self.cfg.peer, addresses)

    def _event(self, role: Role, reason: str) -> None:
        self.logged = (role, reason)
        self.log.write(node=self.cfg.name, to=role.value, reason=reason)

    def _write_status(self) -> None:
        now = time.monotonic()
        statusfile.write(self.status_path, {
            "node": self.cfg.name, "role": self.node.role.value, "reason": self.node.reason, "peer": self.cfg.peer,
            "peer_state": self.peer_state.name if self.peer_state else None,
            "links": {link: self.detector.link_alive(link, now) for link in self.detector.links},
            "quorum": self.reachable, "resources": [r.name for r in self.resources.running]})

    def _shutdown(self) -> None:
        self.worker.shutdown(wait=True, cancel_futures=True)  # a start in progress ends first
        self.resources.stop()
        for s in self.sockets.values():
            s.close()
        self._event(Role.STANDBY, "shutdown")
        self.status_path.unlink(missing_ok=True)


def read_statuses(all_hosts: bool = False) -> list[dict]:
    return statusfile.read("heartbeat", all_hosts)
