"""Tracking: what a host's own health does to its VRRP priority, in keepalived's terms.

A tracked interface or script is either well or failed. A failed one with weight 0 puts the
instance in FAULT; with a weight, it adds that weight (usually negative) to the priority, so a
sick master hands over to a healthier backup without leaving the election. A script fails after
`fall` failures in a row and recovers after `rise` successes in a row; like keepalived's, it
counts as well until its first results say otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Health:
    """One tracked thing: its weight and whether it is failed now."""

    name: str
    weight: int = 0
    failed: bool = False


@dataclass
class ScriptHealth(Health):
    """A track_script's state: consecutive results decide, not a single one."""

    fall: int = 1
    rise: int = 1
    _streak: int = 0  # >0: successes in a row, <0: failures in a row

    def result(self, ok: bool) -> bool:
        """Record one run; return True if that changed `failed`."""
        self._streak = max(self._streak, 0) + 1 if ok else min(self._streak, 0) - 1
        before = self.failed
        if self.failed and self._streak >= self.rise:
            self.failed = False
        elif not self.failed and -self._streak >= self.fall:
            self.failed = True
        return before != self.failed


def effect(base_priority: int, tracked: list[Health]) -> tuple[bool, int]:
    """(in fault, effective priority) from the configured priority and everything tracked.

    The address owner (255) keeps 255; others stay within 1..254 whatever the weights.
    """
    failed = [t for t in tracked if t.failed]
    if any(t.weight == 0 for t in failed):
        return True, base_priority
    if base_priority == 255:
        return False, 255
    return False, max(1, min(254, base_priority + sum(t.weight for t in failed)))
