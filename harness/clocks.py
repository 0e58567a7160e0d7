"""Another server's monotonic clock against this machine's: the offset between them, and how
sure it is.

A lab over several machines gathers times from each: an agent over there stamps its events on
that machine's monotonic clock, a writer there its writes. Each machine's monotonic clock
counts from its own boot, so those times mean nothing here until the offset is known. It is
measured as NTP does, over one ssh session: ask the other machine for its clock several times
and keep the answer with the shortest round trip, which was read within half that round trip
of its midpoint here (`estimate`).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness import servers
from harness.errors import HalabError
from harness.servers import LOCAL

SAMPLES = 15
ANSWER_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClockOffset:
    """Their clock minus ours, in seconds, within ± `uncertainty`."""

    seconds: float = 0.0
    uncertainty: float = 0.0

    def here(self, there: float) -> float:
        """A time read on their clock, on ours."""
        return there - self.seconds


#: This machine's own clock: no offset.
SAME = ClockOffset()


def estimate(ask: Callable[[], float], now: Callable[[], float] = time.monotonic,
             samples: int = SAMPLES) -> ClockOffset:
    """`ask()` reads the other clock; the reading with the shortest round trip decides."""
    best: tuple[float, float] | None = None   # (round trip, offset)
    for _ in range(samples):
        sent = now()
        theirs = ask()
        back = now()
        trip = back - sent
        if best is None or trip < best[0]:
            best = (trip, theirs - (sent + back) / 2)
    assert best is not None, "samples >= 1"
    return ClockOffset(best[1], best[0] / 2)


def measure(server: str, samples: int = SAMPLES) -> ClockOffset:
    """The offset of `server`'s monotonic clock (none for this machine), over one ssh session."""
    if server == LOCAL:
        return SAME
    argv = servers.ssh_argv(server, f"{sys.executable} -m harness.clocks", terminal=False)
    # Its own session: the whole group (sudo, ssh) goes if the other machine stops answering.
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, bufsize=1, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def ask() -> float:
        stdin.write("?\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], ANSWER_TIMEOUT_S)
        try:
            return float(stdout.readline() if ready else "")
        except ValueError:
            raise HalabError(f"Server {server} did not tell its clock within {ANSWER_TIMEOUT_S:g} s.",
                             f"Check that `ssh {servers.ssh_user()}@{server} true` works.") from None
    try:
        return estimate(ask, samples=samples)
    finally:
        stdin.close()
        try:
            proc.wait(timeout=ANSWER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        stdout.close()


def main() -> int:
    """Over there: one reading of the monotonic clock per line read, until the input ends."""
    for _ in sys.stdin:
        print(repr(time.monotonic()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
