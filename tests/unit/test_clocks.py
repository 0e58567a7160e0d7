"""Another machine's monotonic clock against ours: the estimate's arithmetic, and its use on the
times its programs write."""

import subprocess
import sys

import pytest

from ha.eventlog import EventLog
from harness import clocks, events
from harness.clocks import SAME, ClockOffset, estimate


class Link:
    """Their clock runs `offset` ahead of ours; each question takes (out, back) seconds."""

    def __init__(self, offset: float, trips: list[tuple[float, float]]) -> None:
        self.offset, self.trips, self.t = offset, list(trips), 100.0

    def now(self) -> float:
        return self.t

    def ask(self) -> float:
        out, back = self.trips.pop(0)
        self.t += out
        theirs = self.t + self.offset
        self.t += back
        return theirs


def test_a_symmetric_round_trip_gives_the_exact_offset():
    link = Link(-42.5, [(0.002, 0.002)])
    found = estimate(link.ask, link.now, samples=1)
    assert found.seconds == pytest.approx(-42.5) and found.uncertainty == pytest.approx(0.002)


def test_the_shortest_round_trip_decides_and_bounds_the_error():
    """A slow answer (a busy machine) is lopsided: taking it would be 45 ms off."""
    link = Link(7.0, [(0.100, 0.010), (0.0005, 0.0015), (0.020, 0.020)])
    found = estimate(link.ask, link.now, samples=3)
    assert found.uncertainty == pytest.approx(0.001)
    assert abs(found.seconds - 7.0) <= found.uncertainty
    assert found.seconds == pytest.approx(7.0 - 0.0005)   # the lopsided part of the best trip


def test_a_time_over_there_comes_here_by_the_offset():
    assert ClockOffset(10.0, 0.001).here(1010.5) == 1000.5
    assert SAME.here(3.25) == 3.25


def test_events_written_over_there_are_read_on_this_machines_clock(tmp_path):
    log = EventLog(tmp_path / "e.jsonl", "halab-vrrp")
    log.write("VI_1", "BACKUP", "MASTER", "master down timer expired")
    [mine] = events.read(tmp_path / "e.jsonl", "server2")
    [theirs] = events.read(tmp_path / "e.jsonl", "server2", ClockOffset(5.0, 0.001))
    assert mine.at - theirs.at == pytest.approx(5.0) and theirs.state == "MASTER"


def test_this_machine_needs_no_measuring():
    assert clocks.measure("localhost") is SAME


def test_the_other_side_answers_each_line_with_its_clock():
    said = subprocess.run([sys.executable, "-m", "harness.clocks"], input="?\n?\n", capture_output=True, text=True,
                          timeout=30, check=True).stdout.split()
    assert len(said) == 2 and float(said[0]) <= float(said[1])

