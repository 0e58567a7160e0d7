"""Who runs the resources: the decisions of one node of a two-node cluster, free of I/O.

The agent feeds a `View` (what it knows now) to `Node.step` and carries out the actions it
gets back; a fencing request's answer comes back through `Node.fenced`. Every change of role
leaves through `_go`, which returns the `Transition` the agent logs (FRR vrrpd's
vrrp_change_state is the model). The rules:

- Both alive: the node that outranks (higher priority; the smaller name on a tie) runs the
  resources, unless the other already runs them and auto_failback is off.
- The peer says FAULT (its monitor failed and it released everything): take over, no fencing.
- The peer is silent on every link: take over only with quorum (the tie-breaker answers) and
  only after the controller confirmed that the peer is fenced. No quorum, no takeover; no
  confirmation, no takeover. Quorum back after it was lost (a partition healed): the peer gets the
  start-up grace to be heard again first.
- A resource may refuse a takeover (a database standby without the primary's lease): then no
  takeover at all, and no fencing either.
- A failed local monitor: release everything (FAULT) for `failure_timeout` seconds; a VIP's
  interface down: FAULT until it has been up again for `failure_timeout`.
- Two actives (a healed partition): the one outranked releases; the one that stays announces
  its addresses again once the other says it let go, since clients may have followed the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ha.heartbeat.packet import State

#: How a node's reason starts while a resource refuses it a takeover.
REFUSED = "not taking over: "


class Role(Enum):
    STANDBY = "STANDBY"
    FENCING = "FENCING"  # the peer is silent: waiting for the controller to isolate it
    ACTIVE = "ACTIVE"
    FAULT = "FAULT"

    @property
    def wire(self) -> State:
        """What the heartbeats say: fencing is not active yet."""
        return {Role.ACTIVE: State.ACTIVE, Role.FAULT: State.FAULT}.get(self, State.STANDBY)


@dataclass(frozen=True)
class View:
    now: float
    peer_alive: bool
    peer_state: State | None  # what the peer last said
    quorum: bool
    healthy: bool  # every monitor of the resources we run passes (meaningful while active)
    links_up: bool = True  # every interface a VIP needs is up: this node could serve
    refusal: str | None = None  # why this node must not take over now (a resource's say), or None


@dataclass(frozen=True)
class _Job:
    """Work for the agent's worker thread, and why."""

    reason: str


class StartResources(_Job):
    pass


class StopResources(_Job):
    pass


class FencePeer(_Job):
    pass


class AnnounceResources(_Job):
    pass


@dataclass(frozen=True)
class Transition:
    old: Role
    new: Role
    reason: str


Action = StartResources | StopResources | FencePeer | AnnounceResources | Transition


@dataclass
class Node:
    name: str
    priority: int
    peer: str
    peer_priority: int
    auto_failback: bool = True
    failure_timeout: float = 10.0
    fence_retry: float = 1.0
    started: float = 0.0
    grace: float = 0.0  # after start, how long a peer never heard may stay silent before it counts as dead
    peer_heard: bool = False
    role: Role = Role.STANDBY
    fault_until: float = 0.0
    fence_not_before: float = 0.0
    reason: str = "startup"   # what the node says now: its last decision, or why it holds back
    decided: str = "startup"  # the reason of its last change of role
    both_active: bool = False  # when the peer was last heard, it was active and so were we
    links_down: bool = False
    cut_off: bool = False  # the tie-breaker did not answer: this node itself may have been the one cut off

    @property
    def outranks_peer(self) -> bool:
        return (self.priority, self.peer) > (self.peer_priority, self.name)

    def step(self, v: View) -> list[Action]:
        self.peer_heard = self.peer_heard or v.peer_alive
        peer_let_go = False
        if v.peer_alive:
            peer_let_go = self.both_active and v.peer_state is not State.ACTIVE
            self.both_active = self.role is Role.ACTIVE and v.peer_state is State.ACTIVE
        if not v.links_up:
            self.links_down = True
            return self._cannot_serve(v)
        if self.links_down or (self.cut_off and v.quorum):
            # Back on the network (a cut mended, a fence lifted, a partition healed: the tie-breaker
            # answers again, a moment before the peer's beats arrive): the peer's silence meanwhile
            # says nothing about it. Give it the start-up grace to be heard before fencing it.
            self.links_down, self.peer_heard, self.started = False, v.peer_alive, v.now
        # Cut off means: the peer is silent and the tie-breaker does not answer either. While the
        # peer is heard, no takeover hangs on the quorum, and a quorum "back" then heals nothing.
        self.cut_off = not v.quorum and not v.peer_alive
        if self.role is Role.ACTIVE:
            actions = self._active(v)
            if not actions and peer_let_go:
                return [AnnounceResources(f"{self.peer} let go after both were active: clients may point at it")]
            return actions
        actions: list[Action] = []
        if self.role is Role.FAULT and v.now >= self.fault_until:
            actions.append(self._go(Role.STANDBY, "failure timeout over"))
        if self.role is Role.STANDBY:
            actions += self._standby(v)
        return actions

    def fenced(self, ok: bool, now: float, detail: str = "") -> list[Action]:
        """The controller's answer to our fencing request."""
        if self.role is not Role.FENCING:
            return []
        if ok:
            return self._take_over(f"{self.peer} fenced{': ' + detail if detail else ''}")
        self.fence_not_before = now + self.fence_retry
        return [self._go(Role.STANDBY, f"fencing {self.peer} failed ({detail}); not taking over")]

    def next_change(self, now: float) -> float | None:
        """When time alone may change a decision: the end of a FAULT, of the grace, of a retry pause."""
        times = [t for t in (self.fault_until, self.started + self.grace, self.fence_not_before) if t > now]
        return min(times, default=None)

    def _active(self, v: View) -> list[Action]:
        if not v.healthy:
            self.fault_until = v.now + self.failure_timeout
            return self._release(Role.FAULT, "a resource monitor failed")
        if v.peer_alive and v.peer_state is State.ACTIVE and not self.outranks_peer:
            return self._release(Role.STANDBY, f"{self.peer} is active too and outranks us")
        if (self.auto_failback and v.peer_alive and v.peer_state is State.STANDBY and not self.outranks_peer):
            return self._release(Role.STANDBY, f"auto_failback to {self.peer}")
        return []

    def _cannot_serve(self, v: View) -> list[Action]:
        """A VIP's interface is down: say so (FAULT) until it has been back for failure_timeout, so
        that the peer serves, no auto_failback hands the resources to a node that cannot serve
        them, and a flapping link does not bounce them back and forth."""
        self.fault_until = v.now + self.failure_timeout
        why = "a VIP's interface is down"
        if self.role is Role.ACTIVE:
            return self._release(Role.FAULT, why)
        return [self._go(Role.FAULT, why)] if self.role is Role.STANDBY else []

    def _standby(self, v: View) -> list[Action]:
        self.reason = self.decided  # why it holds back (below) holds only while the cause lasts
        if v.refusal is not None and not (v.peer_alive and v.peer_state is State.ACTIVE):
            self.reason = f"{REFUSED}{v.refusal}"   # not even fencing the peer
            return []
        if v.peer_alive:
            if v.peer_state is State.FAULT:
                return self._take_over(f"{self.peer} is in FAULT")
            if v.peer_state is State.STANDBY and self.outranks_peer:
                return self._take_over(f"{self.peer} is standby and we outrank it")
            return []
        if (not self.peer_heard and v.now < self.started + self.grace) or v.now < self.fence_not_before:
            return []
        if not v.quorum:
            self.reason = f"{self.peer} is silent but the tie-breaker does not answer: no quorum, no takeover"
            return []
        why = f"{self.peer} is silent on every link"
        return [self._go(Role.FENCING, why), FencePeer(why)]

    def _take_over(self, why: str) -> list[Action]:
        return [self._go(Role.ACTIVE, why), StartResources(why)]

    def _release(self, role: Role, why: str) -> list[Action]:
        return [self._go(role, why), StopResources(why)]

    def _go(self, role: Role, why: str) -> Transition:
        old, self.role, self.reason, self.decided = self.role, role, why, why
        return Transition(old, role, why)
