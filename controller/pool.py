"""One switch's pools as pure state: where each backend is, whether it is healthy, linked and
in service, and when the switch must be told. No OpenFlow and no clock of its own: every call
that depends on time takes `now`, so every rule is tested on a fake clock (tests/unit).

A backend is in its service's pool when it is located (its ARP reply told the switch port),
healthy (HAProxy's fall/rise), its link is up and it is not drained. After the controller
(re)connects, the pools the switch kept are taken over as they are, and nothing is pushed until
every backend is located or ARP_RETRY_S has passed, so a restarted controller does not shrink a
pool the switch still serves from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from controller import ids
from controller.lb_config import Backend, LbConfig

ARP_RETRY_S = 0.5


@dataclass
class HealthState:
    """Up after `rise` good checks in a row, down after `fall` bad ones."""

    fall: int
    rise: int
    up: bool = True
    streak: int = 0  # consecutive results that disagree with `up`

    def record(self, ok: bool) -> bool:
        """Count one result; True when it flips the state."""
        if ok == self.up:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (self.rise if ok else self.fall):
            self.up, self.streak = ok, 0
            return True
        return False


@dataclass(frozen=True)
class Member:
    """A backend in a pool: where it is (learned from its ARP reply) and how much it weighs."""

    index: int
    backend: Backend
    mac: str
    port: int


@dataclass
class BackendState:
    """What the controller knows of one backend of one service on one switch."""

    key: ids.BackendKey
    health: HealthState
    drained: bool = False
    link_up: bool = True
    reason: str = "not yet located (no ARP reply)"
    next_check: float = 0.0
    check: object | None = None  # the health check in flight (controller.health.Check)
    connections: int = 0
    packets: int = 0
    bytes: int = 0

    def start_check(self, now: float, interval: float) -> None:
        """A check starts now; the next is due one interval after this one's turn, so a tick that
        came a little late does not push every later check back by as much."""
        turn = self.next_check if now - self.next_check < interval else now
        self.next_check = turn + interval

    def reset_seen(self, now: float) -> bool:
        """The backend reset a client's connection (the switch sent a copy): its check is due now,
        not at its turn, so a dead process is found up to one interval sooner. Only while it is up
        and no bad check is counted yet: from the first bad check on, checks keep their interval,
        so `fall` bad checks still span fall - 1 intervals. True when a check is now due."""
        if self.check is not None or not self.health.up or self.health.streak or self.next_check <= now:
            return False
        self.next_check = now
        return True


@dataclass(frozen=True)
class Change:
    """A backend changed state: what the event log says."""

    key: ids.BackendKey
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class Push:
    """What the switch must be told about one service: its pool (None: round robin, the entry only)."""

    service: int
    members: list[Member] | None
    buckets: list[int]
    first: bool  # the service entry flow goes in with the first push (it names the group)


@dataclass
class Pools:
    config: LbConfig
    located: dict[IPv4Address, tuple[str, int]] = field(default_factory=dict)  # ip -> (mac, port)
    backends: dict[ids.BackendKey, BackendState] = field(default_factory=dict)
    pushed: dict[int, list] = field(default_factory=dict)  # service -> what the switch has of its pool
    synced: bool = False
    synced_at: float = 0.0
    kept_pools: int = 0

    def __post_init__(self) -> None:
        for si, service in enumerate(self.config.services):
            check = service.health_check
            for bi in range(len(service.backends)):
                key = ids.BackendKey(si, bi)
                self.backends[key] = BackendState(key, HealthState(check.fall, check.rise))

    def backend(self, key: ids.BackendKey) -> Backend:
        return self.config.services[key.service].backends[key.backend]

    # --- what the switch tells ---------------------------------------------------------------

    def locate(self, ip: IPv4Address, mac: str, port: int) -> bool:
        """An ARP reply said where `ip` is; True when that is news (first seen, or moved). Only
        configured backends are kept: any host can send an ARP reply to the VIP."""
        if self.located.get(ip) == (mac, port) or not any(
                b.ip == ip for s in self.config.services for b in s.backends):
            return False
        self.located[ip] = (mac, port)
        return True

    def keep(self, service: int, kept: set[int]) -> None:
        """The switch still has this service's pool (a former controller's): take it over as it is.
        A backend that was in it stays up; one that was not must pass `rise` checks first."""
        if not 0 <= service < len(self.config.services):
            return
        self.kept_pools += 1
        for key, state in self.backends.items():
            if key.service != service:
                continue
            if key.backend in kept:
                state.reason = "up (in the pool the switch kept)"
            else:
                state.health.up, state.reason = False, "not in the pool the switch kept"

    def sync(self, now: float) -> None:
        """Every kept pool is read: from now on, pool changes go to the switch."""
        self.synced, self.synced_at = True, now

    def link(self, port: int, up: bool) -> list[Change]:
        """A switch port went down or up: the backends located there."""
        changes = []
        for key, state in self.backends.items():
            if self.located.get(self.backend(key).ip, (None, None))[1] == port and state.link_up != up:
                state.link_up = up
                changes.append(Change(key, "link down" if up else "link up", "link up" if up else "link down",
                                      f"port {port}"))
        return changes

    def result(self, key: ids.BackendKey, ok: bool, why: str) -> Change | None:
        """A health check's verdict; a Change when it flips the backend's health."""
        state = self.backends[key]
        if not state.health.record(ok):
            return None
        state.reason = why
        return Change(key, "down" if ok else "up", "up" if ok else "down", why)

    def drain(self, key: ids.BackendKey, drained: bool) -> Change:
        self.backends[key].drained = drained
        return Change(key, "in service" if drained else "drained", "drained" if drained else "in service",
                      "by request")

    # --- what the switch is told --------------------------------------------------------------

    def members(self, service: int) -> list[Member]:
        out = []
        for bi, b in enumerate(self.config.services[service].backends):
            state = self.backends[ids.BackendKey(service, bi)]
            if b.ip in self.located and state.health.up and state.link_up and not state.drained:
                mac, port = self.located[b.ip]
                out.append(Member(bi, b, mac, port))
        return out

    def may_check(self, key: ids.BackendKey, now: float) -> bool:
        """A backend is checked once it is located, or once ARP_RETRY_S has passed since the sync
        (not located then counts as a bad check): its first check would otherwise fail in the very
        tick that asks where it is, and with `fall = 1` every backend would start out down."""
        return self.backend(key).ip in self.located or now - self.synced_at >= ARP_RETRY_S

    def due(self, now: float) -> list[Push]:
        """The services whose pool the switch does not have yet; each is then counted as pushed."""
        if not self.synced:
            return []
        unlocated = any(b.ip not in self.located for s in self.config.services for b in s.backends)
        if unlocated and now - self.synced_at < ARP_RETRY_S:
            return []
        pushes = []
        for si, service in enumerate(self.config.services):
            first = si not in self.pushed
            if not service.in_switch:
                if first:
                    self.pushed[si] = []
                    pushes.append(Push(si, None, [], first))
                continue
            members = self.members(si)
            buckets = bucket_ids({m.index: m.backend.weight for m in members})
            signature = [*buckets, *((m.index, m.mac, m.port) for m in members)]
            if self.pushed.get(si) != signature:
                self.pushed[si] = signature
                pushes.append(Push(si, members, buckets, first))
        return pushes


def bucket_ids(weights: dict[int, int]) -> list[int]:
    """Buckets for the backends in the pool, `weights` mapping config index -> weight."""
    return [ids.bucket_id(index, r) for index, weight in sorted(weights.items()) for r in range(weight)]
