"""The fault campaign's checks on made-up timelines."""

from __future__ import annotations

import pytest

from harness.invariants import IN_FLIGHT_S, TAIL_S, Window, growth, holder_changes, judge, two_holder_spans, unexcused
from harness.probe import Request


def timeline(silent_from: float, silent_to: float, until: float = 10.0) -> list[Request]:
    """A request every 10 ms from t=0, unanswered between silent_from and silent_to."""
    reqs = []
    for i in range(int(until * 100)):
        t = i / 100
        ok = not silent_from <= t < silent_to
        reqs.append(Request(i, t, t + 0.001 if ok else None, "s1" if ok else None, None if ok else "timeout"))
    return reqs


def window(start: float = 2.0, end: float = 8.0, bound: float = 1.0, excuses: bool = False) -> Window:
    return Window("link-cut", "server1", start, start + 1, end, bound, excuses)


def test_a_short_outage_that_recovers_is_within_its_bound():
    verdict = judge(window(), timeline(2.0, 2.5))
    assert verdict.ok and 0.5 <= verdict.outage <= 0.52 and verdict.recovered and verdict.lost == 50


def test_an_outage_longer_than_the_bound_fails():
    verdict = judge(window(bound=1.0), timeline(2.0, 3.5))
    assert not verdict.ok and verdict.recovered and verdict.outage > 1.0


def test_silence_at_the_end_of_the_window_is_not_recovered():
    verdict = judge(window(end=8.0, bound=10.0), timeline(7.5, 10.0))
    assert not verdict.recovered and not verdict.ok


def test_a_silence_after_the_window_is_not_counted_in_it():
    assert judge(window(end=6.0), timeline(6.5, 9.0)).ok
    assert judge(window(end=6.0), timeline(5.95, 9.0)).ok  # sent as the next fault came: in flight
    assert not judge(window(end=6.0), timeline(5.85, 9.0)).recovered


def test_two_holder_spans_are_merged_and_closed_at_the_end():
    changes = holder_changes("0.0 watching\n1.0 a\n2.0 a,b\n2.5 a,b,c\n3.0 b\n4.0 -\n5.0 a,b\n")
    assert changes[0] == (1.0, frozenset({"a"})) and changes[3] == (3.0, frozenset({"b"}))
    assert changes[4] == (4.0, frozenset())
    assert two_holder_spans(changes, end=6.0) == [(2.0, 3.0), (5.0, 6.0)]
    assert two_holder_spans([], end=6.0) == []


def test_two_holders_are_excused_only_inside_a_window_whose_fault_explains_them():
    spans = [(2.5, 3.0), (8.5, 9.0), (12.0, 12.5)]
    windows = [window(2.0, 8.0, excuses=True), window(8.0, 11.0, excuses=False), window(11.0, 12.2, excuses=True)]
    # the second window's fault does not explain two holders; the third's ended before they did
    assert unexcused(spans, windows) == [(8.5, 9.0), (12.0, 12.5)]


def test_memory_growth_counts_from_the_settled_sample_to_the_last():
    assert growth([(0.0, 10), (5.0, 20), (40.0, 25), (100.0, 31)], settle=30) == 6
    assert growth([(0.0, 10), (10.0, 50)], settle=30) is None
    assert growth([], settle=30) is None


def test_the_window_looks_back_one_tail_before_the_fault():
    """A silence that began before the fault is counted from the last answer TAIL_S before it, that instant included."""
    verdict = judge(window(start=2.0), timeline(1.01, 3.0))  # answered at 1.00, silent from 1.01 to 3.00
    assert verdict.outage == pytest.approx(2.0) and verdict.recovered


def test_a_request_lost_as_the_tail_begins_means_not_recovered():
    """The tail is the last TAIL_S seconds before the in-flight margin, its first instant included."""
    w = window(end=8.0)
    tail_start = w.end - IN_FLIGHT_S - TAIL_S
    assert not judge(w, [*timeline(99, 99), Request(9999, tail_start, error="timeout")]).recovered
    assert judge(w, [*timeline(99, 99), Request(9999, tail_start - 0.005, error="timeout")]).recovered


def test_a_request_sent_as_the_in_flight_margin_begins_is_not_judged():
    """A request sent IN_FLIGHT_S before the next fault may be lost to it: it is not held against this window."""
    w = window(end=8.0)
    assert judge(w, [*timeline(99, 99), Request(9999, w.end - IN_FLIGHT_S, error="timeout")]).ok


def test_two_holders_from_the_fault_to_the_window_end_are_still_within_it():
    """A window excuses two holders over its whole span, both ends included (the last span closes at the end)."""
    assert unexcused([(2.0, 8.0)], [window(2.0, 8.0, excuses=True)]) == []


def test_memory_growth_starts_at_the_first_sample_settle_seconds_after_birth():
    """Birth is the first sample's time; the sample exactly `settle` s later is the baseline; the last is the end."""
    samples = [(0.0, 1000), (20.0, 1100), (30.0, 1200), (60.0, 1250), (100.0, 1300)]
    assert growth(samples, settle=30) == 100
