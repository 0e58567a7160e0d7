"""How a backend is chosen for a new connection: the arithmetic, kept free of OpenFlow.

Two families, because Open vSwitch can do one and not the other:

- source_hash and consistent run in the switch. An OpenFlow 1.5 select group with OVS's `hash`
  selection method scores every live bucket by a hash of (bucket_id, packet fields) and takes the
  highest: rendezvous hashing. A weight becomes that many buckets with their own ids, so a backend
  of weight w wins w/sum(w) of the flows; the ids depend only on the backend's place in the config,
  so removing one backend moves only the flows that were on it (pool.bucket_ids).
  `rendezvous_pick` is the same rule in Python, for tests and for reasoning.
- round_robin and weighted need a counter, which a select group does not have: the controller
  picks (smooth weighted round robin, as nginx does) and pins the connection with a flow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def rendezvous_pick(key: bytes, buckets: Iterable[int]) -> int:
    """Highest random weight: the bucket whose hash with `key` scores highest."""
    return max(buckets, key=lambda b: hashlib.blake2b(key + b.to_bytes(4, "big"), digest_size=8).digest())


class SmoothWeightedRoundRobin:
    """nginx's smooth weighted round robin: exact shares over sum(w) picks, interleaved, not bunched."""

    def __init__(self) -> None:
        self.current: dict[int, int] = {}

    def pick(self, weights: dict[int, int]) -> int | None:
        """Next backend among `weights` (index -> weight), or None when the pool is empty."""
        if not weights:
            return None
        total = sum(weights.values())
        for index, weight in weights.items():
            self.current[index] = self.current.get(index, 0) + weight
        best = max(sorted(weights), key=lambda i: self.current[i])
        self.current[best] -= total
        return best
