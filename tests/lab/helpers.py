"""Plumbing the Mininet tests share: responders on hosts, bounded waits, leftovers."""

from __future__ import annotations

import time

from harness.cleanup import leftovers as halab_leftovers
from harness.lab import Lab
from harness.probe import PORT
from harness.probe import command as probe_cmd

__all__ = ["PORT", "answers", "halab_leftovers", "probe_cmd", "start_responders", "stayed_share", "wait_until"]


def start_responders(lab: Lab, hosts: list[str]) -> dict:
    return {h: lab.responder(h) for h in hosts}


def answers(lab: Lab, src: str, targets: list[str], proto: str = "udp") -> dict[str, str | None]:
    """Which server answers each target address, as seen from host `src`."""
    return lab.who_answers(src, targets, proto)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Bounded retry: True as soon as predicate() holds, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def stayed_share(before: dict, after: dict, removed: str) -> float:
    """Of the flows that were not on the removed backend, the share that kept their backend."""
    kept = [flow for flow, server in before.items() if server not in (None, removed)]
    return sum(after[flow] == before[flow] for flow in kept) / len(kept)
