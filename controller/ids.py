"""Every identifier halab's controller writes into the switch, encoded and decoded here only.

Cookies start with "HALAB" (0x48414C4142) and a byte that says whose the flow is; the load
balancer's per-backend flows carry the service and backend index in their two low bytes, so
one backend's packets and bytes can be summed together, and a balanced connection's conntrack
mark carries the same two bytes. A backend in a select group is one or more buckets (its
weight), numbered so that the backend can be read back from a bucket id; table 2 is reached
with the backend's key in reg1.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_BITS = 0xFFFF_FFFF_FFFF_FFFF
#: The L2 learning switch's flows.
L2_COOKIE = 0x4841_4C41_4201
#: The load balancer's static flows; a backend's flows on the client side and on the reply side.
LB_STATIC_COOKIE = 0x4841_4C41_4202_0000
CONN_COOKIE = 0x4841_4C41_4204_0000
REPLY_COOKIE = 0x4841_4C41_4205_0000
#: The drop flows of a fenced node.
FENCE_COOKIE = 0x4841_4C41_4206_0000
#: A backend's flow that copies the resets it sends to clients to the controller.
RESET_COOKIE = 0x4841_4C41_4207_0000

#: Service and backend indexes have 8 bits each in cookies and in reg1.
MAX_SERVICES = MAX_BACKENDS = 256
#: Bits of a bucket id that number the replicas of one backend (a weight is at most 2^7 buckets).
REPLICA_BITS = 7
MAX_WEIGHT = 100
#: The conntrack zone of every balanced connection; its mark says which backend it went to.
CT_ZONE = 0x4842
CT_MARK = 0x4842_0000
#: Health checks use source ports 61440-65535, above Linux's ephemeral range (32768-60999).
CHECK_PORT_BASE = 0xF000


@dataclass(frozen=True, order=True)
class BackendKey:
    """One backend of one service, by their places in the configuration."""

    service: int
    backend: int

    def __post_init__(self) -> None:
        if not (0 <= self.service < MAX_SERVICES and 0 <= self.backend < MAX_BACKENDS):
            raise ValueError(f"service {self.service} / backend {self.backend}: at most "
                             f"{MAX_SERVICES} services of {MAX_BACKENDS} backends")

    @property
    def reg(self) -> int:
        """reg1's value when a bucket chose this backend."""
        return self.service << 8 | self.backend

    @property
    def mark(self) -> int:
        """The conntrack mark of a connection committed to this backend (never 0: 0 is "none yet")."""
        return CT_MARK | self.reg

    @classmethod
    def of_mark(cls, mark: int) -> BackendKey | None:
        return cls.of_cookie(mark) if mark & ~0xFFFF == CT_MARK else None

    def conn_cookie(self) -> int:
        return CONN_COOKIE | self.reg

    def reply_cookie(self) -> int:
        return REPLY_COOKIE | self.reg

    def reset_cookie(self) -> int:
        return RESET_COOKIE | self.reg

    @property
    def meter(self) -> int:
        """The meter that bounds the copies of this backend's resets (meter ids start at 1)."""
        return self.reg + 1

    @classmethod
    def of_cookie(cls, cookie: int) -> BackendKey:
        return cls(cookie >> 8 & 0xFF, cookie & 0xFF)

    @classmethod
    def of_reset_cookie(cls, cookie: int) -> BackendKey | None:
        return cls.of_cookie(cookie) if cookie & ~0xFFFF == RESET_COOKIE else None


def group_id(service: int) -> int:
    """The select group of a service (OpenFlow group ids start at 1 here)."""
    return service + 1


def service_of_group(group: int) -> int:
    return group - 1


def bucket_id(backend: int, replica: int) -> int:
    return backend << REPLICA_BITS | replica


def backend_of_bucket(bucket: int) -> int:
    return bucket >> REPLICA_BITS
