"""The VRRPv3 state machine of one virtual router (RFC 9568 section 6.4), as pure logic.

No sockets and no clock: every entry point takes `now` (seconds, monotonic) and returns the
actions the agent must carry out, in order. That keeps every transition testable on a fake
clock with fake packets, and keeps the agent's event loop a thin shell around it.

Beyond the RFC, in keepalived's vocabulary: preempt_delay (a higher-priority backup waits this
long after start-up before it preempts) and FAULT (a tracked interface or script says this
router must not serve; it neither advertises nor holds the addresses).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ha.vrrp.packet import Address, Advert

OWNER_PRIORITY = 255
#: A backup that preempts a live lower-priority master waits at most this long (and at most one
#: advert interval) for that master to say it let go of the addresses before it takes them.
HANDOVER_WAIT_S = 0.05


class State(enum.Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


# --- actions the agent carries out ------------------------------------------------------------


@dataclass(frozen=True)
class SendAdvert:
    priority: int


@dataclass(frozen=True)
class TakeAddresses:
    """Add the virtual addresses and announce them (gratuitous ARP / unsolicited NA)."""


@dataclass(frozen=True)
class ReleaseAddresses:
    pass


@dataclass(frozen=True)
class Announce:
    """Gratuitous ARP / unsolicited NA again for addresses already held (split brain healing)."""


@dataclass(frozen=True)
class Transition:
    old: State
    new: State
    reason: str


Action = SendAdvert | TakeAddresses | ReleaseAddresses | Announce | Transition


@dataclass(frozen=True)
class RouterConfig:
    """What the state machine needs to know of one vrrp_instance."""

    vrid: int
    priority: int
    advert_int: float
    primary_address: Address
    preempt: bool = True
    preempt_delay: float = 0.0
    #: After re-announcing on a lower master's advert, ignore further ones this long (keepalived's
    #: garp_lower_prio_delay): a flood of lower adverts must not become a flood of ARP bursts.
    lower_prio_holdoff: float = 5.0

    @property
    def owner(self) -> bool:
        return self.priority == OWNER_PRIORITY


@dataclass
class VirtualRouter:
    """One virtual router's state and timers."""

    cfg: RouterConfig
    state: State = State.INIT
    master_adver_interval: float = field(init=False)
    adver_timer: float | None = None
    master_down_timer: float | None = None
    started_at: float = 0.0
    priority: int = field(init=False)
    #: A master that yielded keeps sending its own adverts until `farewell_until`, one per interval.
    farewell_timer: float | None = None
    farewell_until: float = 0.0
    lower_master: tuple[Address, float] | None = None  # a lower-priority master heard as backup, and when
    followed: Address | None = None  # as backup, the master whose adverts hold our master-down timer
    unplugged: Address | None = None  # as backup, the master whose port the switch saw go down (assist)
    take_at: float | None = None  # preempting: the addresses are taken then, or when the old master lets go
    handover_from: Address | None = None
    announce_after: float = float("-inf")  # lower masters heard before this do not re-announce
    answer_after: float = float("-inf")  # adverts heard before this get no immediate answer
    yield_announce_after: float = float("-inf")  # priority-0 adverts heard before this do not re-announce

    def __post_init__(self) -> None:
        self.master_adver_interval = self.cfg.advert_int
        self.priority = self.cfg.priority

    # --- derived intervals (RFC 9568 6.1) -------------------------------------------------

    @property
    def skew_time(self) -> float:
        return ((256 - self.priority) * self.master_adver_interval) / 256

    @property
    def master_down_interval(self) -> float:
        return 3 * self.master_adver_interval + self.skew_time

    def next_deadline(self) -> float | None:
        timers = [t for t in (self.adver_timer, self.master_down_timer, self.farewell_timer, self.take_at)
                  if t is not None]
        return min(timers, default=None)

    # --- events ---------------------------------------------------------------------------

    def startup(self, now: float) -> list[Action]:
        self.started_at = now
        if self.cfg.owner:
            return self._become_master(now, "address owner (priority 255)")
        # A backup holds no address: one left behind by an agent that was killed (SIGKILL, OOM)
        # before it could let go would otherwise stay, a second holder, until someone noticed.
        return [ReleaseAddresses(), *self._become_backup(now, "startup")]

    def shutdown(self, now: float) -> list[Action]:
        """Leave cleanly: a master says goodbye with priority 0 so a backup takes over at once."""
        actions: list[Action] = []
        if self.state is State.MASTER:
            actions = [SendAdvert(0), ReleaseAddresses()]
        actions.append(self._go(State.INIT, "shutdown"))
        self.adver_timer = self.master_down_timer = self.farewell_timer = self.take_at = None
        return actions

    def fault(self, now: float, reason: str) -> list[Action]:
        """A tracked interface or script failed: stop serving and stop advertising."""
        if self.state is State.FAULT:
            return []
        actions: list[Action] = []
        if self.state is State.MASTER:
            actions = [SendAdvert(0), ReleaseAddresses()]
        self.adver_timer = self.master_down_timer = self.farewell_timer = self.take_at = None
        actions.append(self._go(State.FAULT, reason))
        return actions

    def recover(self, now: float, reason: str) -> list[Action]:
        """Leave FAULT: start over as a backup (or as master, for the owner)."""
        if self.state is not State.FAULT:
            return []
        if self.cfg.owner:
            return self._become_master(now, reason)
        return self._become_backup(now, reason)

    def set_priority(self, now: float, priority: int) -> list[Action]:
        """Tracking changed the effective priority; a master advertises the change at once."""
        self.priority = max(1, min(254, priority)) if not self.cfg.owner else OWNER_PRIORITY
        self.farewell_timer = None  # it would now speak for another priority
        if self.state is State.MASTER:
            self.adver_timer = now + self.cfg.advert_int
            return [SendAdvert(self.priority)]
        return []

    def on_timer(self, now: float) -> list[Action]:
        if self.state is State.BACKUP and self.master_down_timer is not None and now >= self.master_down_timer:
            lower = self.lower_master
            if lower is not None and now - lower[1] <= self.master_down_interval:
                return self._become_master(now, f"preempting lower priority master {lower[0]}", lower[0])
            if self.unplugged is not None:
                return self._become_master(now, f"the switch saw master {self.unplugged}'s port go down (assist)")
            return self._become_master(now, "master down timer expired")
        if self.take_at is not None and now >= self.take_at:
            self.take_at = self.handover_from = None  # the old master said nothing: take them anyway
            return [TakeAddresses()]
        if self.state is State.MASTER and self.adver_timer is not None and now >= self.adver_timer:
            self.adver_timer = now + self.cfg.advert_int
            return [SendAdvert(self.priority)]
        if self.farewell_timer is not None and now >= self.farewell_timer:
            following = self.farewell_timer + self.cfg.advert_int
            self.farewell_timer = following if following <= self.farewell_until else None
            return [SendAdvert(self.priority)]
        return []

    def on_advert(self, now: float, adv: Advert, src: Address) -> list[Action]:
        """An advert for our VRID that passed every check of the receiving side."""
        if self.state is State.BACKUP:
            return self._backup_hears(now, adv, src)
        if self.state is State.MASTER:
            return self._master_hears(now, adv, src)
        return []

    def master_unplugged(self, now: float, master: Address) -> list[Action]:
        """The switch saw the port of `master` go down (failover assist). If that is the master this
        backup follows, it is gone as surely as after its priority-0 advert: take over now (the
        controller tells only the first backup in line, so no skew is needed to order several).
        Anything else (another address, not a backup) changes nothing."""
        if self.state is not State.BACKUP or self.followed != master:
            return []
        self.lower_master = self.followed = None
        self.unplugged = master
        self.master_down_timer = now
        return []

    # --- the two receiving states -----------------------------------------------------------

    def _backup_hears(self, now: float, adv: Advert, src: Address) -> list[Action]:
        self.unplugged = None
        if adv.priority == 0:
            self.lower_master = self.followed = None
            self.master_down_timer = now + self.skew_time
            return []
        may_preempt = self.cfg.preempt and now >= self.started_at + self.cfg.preempt_delay
        if not may_preempt or adv.priority >= self.priority:
            self.lower_master = None
            self.followed = src
            self.master_adver_interval = adv.interval
            self.master_down_timer = now + self.master_down_interval
        else:  # a lower-priority master: let the timer run out and preempt it
            self.lower_master = (src, now)
        return []

    def _master_hears(self, now: float, adv: Advert, src: Address) -> list[Action]:
        """RFC 9568 6.4.3, plus what heals a split brain for the clients.

        Two masters at once (a healed partition) leave some clients' ARP caches pointing at
        the one that yields. So the master that stays re-announces the addresses when it hears
        a master it outranks (keepalived: garp_lower_prio_repeat, at most once per
        lower_prio_holdoff), and the master that yields keeps sending its own adverts for one
        Master_Down_Interval, so the survivor hears one even when the partition heals one way
        first (the yielder already hears the survivor, the survivor does not hear it yet).
        """
        if self.take_at is not None and src == self.handover_from and adv.priority == 0:
            self.take_at = self.handover_from = None  # the master we preempted let go: now, not before
            self.adver_timer = now + self.cfg.advert_int
            return [SendAdvert(self.priority), TakeAddresses()]
        if adv.priority == 0:
            return self._answer(now, to_lower=False)
        if self.cfg.owner:
            return self._announce_to_lower(now)
        if adv.priority > self.priority or (adv.priority == self.priority and src > self.cfg.primary_address):
            self.adver_timer = None
            self.master_adver_interval = adv.interval
            self.master_down_timer = now + self.master_down_interval
            self.farewell_until = now + self.master_down_interval
            self.farewell_timer = now + self.cfg.advert_int
            self.take_at = self.handover_from = None
            # Let go first, then say so with priority 0: a master preempting us takes the addresses
            # on hearing it, so the two never hold them at once.
            return [ReleaseAddresses(), SendAdvert(0),
                    self._go(State.BACKUP, f"higher priority master {src} ({adv.priority})")]
        return self._answer(now, to_lower=True)

    def _answer(self, now: float, to_lower: bool) -> list[Action]:
        """Advertise at once to a lower or a yielding master, and re-announce the addresses, since
        clients may point at the other. Each at most once per interval (a flood of adverts must not
        become a flood of ours or of ARP bursts), on its own clock: the announce after a yield
        matters most and must not be held back by an answer just sent to the same master."""
        actions: list[Action] = []
        if now >= self.answer_after:
            self.answer_after = self.adver_timer = now + self.cfg.advert_int
            actions.append(SendAdvert(self.priority))
        if self.take_at is not None:
            return actions
        if to_lower:
            return actions + self._announce_to_lower(now)
        if now >= self.yield_announce_after:
            self.yield_announce_after = now + self.cfg.advert_int
            actions.append(Announce())
        return actions

    def _announce_to_lower(self, now: float) -> list[Action]:
        if now < self.announce_after:
            return []
        self.announce_after = now + max(self.cfg.lower_prio_holdoff, self.cfg.advert_int)
        return [Announce()]

    # --- transitions ----------------------------------------------------------------------

    def _become_master(self, now: float, reason: str, preempted: Address | None = None) -> list[Action]:
        """Advertise, then take the addresses; when preempting a live master, only once it let go
        (its priority-0 advert) or after HANDOVER_WAIT_S: break before make, never two holders."""
        self.master_down_timer = self.farewell_timer = self.lower_master = self.unplugged = None
        self.adver_timer = now + self.cfg.advert_int
        if preempted is not None:
            self.handover_from, self.take_at = preempted, now + min(self.cfg.advert_int, HANDOVER_WAIT_S)
            return [SendAdvert(self.priority), self._go(State.MASTER, reason)]
        return [SendAdvert(self.priority), TakeAddresses(), self._go(State.MASTER, reason)]

    def _become_backup(self, now: float, reason: str) -> list[Action]:
        self.adver_timer = self.unplugged = None
        self.master_adver_interval = self.cfg.advert_int
        self.master_down_timer = now + self.master_down_interval
        return [self._go(State.BACKUP, reason)]

    def _go(self, new: State, reason: str) -> Transition:
        old, self.state = self.state, new
        return Transition(old, new, reason)
