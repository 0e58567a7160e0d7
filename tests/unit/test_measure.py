"""The failover arithmetic, on hand-made timelines."""

import pytest

from harness.measure import analyse, median, percentile, ratio
from harness.probe import Request


def timeline(rate: float, duration: float, down: tuple[float, float], before: str = "a",
             after: str = "b") -> list[Request]:
    """Requests every 1/rate s from t=0; those sent inside `down` fail, the rest are answered."""
    reqs = []
    for seq in range(int(rate * duration)):
        t = seq / rate
        if down[0] <= t < down[1]:
            reqs.append(Request(seq, t, error="timeout"))
        else:
            reqs.append(Request(seq, t, replied=t + 0.001, server=before if t < down[0] else after))
    return reqs


def test_outage_spans_last_success_before_to_first_success_after():
    out = analyse(timeline(100, 10, down=(5.0, 8.0)), fault_at=5.0)
    # last good at 4.99, first good at 8.00
    assert out.outage == pytest.approx(3.01)
    assert out.first_good_after == pytest.approx(3.001)
    assert out.lost == 300
    assert out.lost_after_fault == 300
    assert (out.server_before, out.server_after) == ("a", "b")
    assert out.recovered
    assert out.fault_at == 5.0 and out.requests == 1000
    assert out.last_failure_after == pytest.approx(2.99)  # the last request that failed left at 7.99


def test_fault_between_probes_counts_from_the_last_good_send():
    out = analyse(timeline(10, 10, down=(5.05, 6.0)), fault_at=5.05)
    assert out.outage_start == pytest.approx(5.0)
    assert out.outage_end == pytest.approx(6.0)
    assert out.outage == pytest.approx(1.0)


def test_no_loss_gives_one_probe_interval():
    out = analyse(timeline(100, 2, down=(9, 9)), fault_at=1.005)
    assert out.outage == pytest.approx(0.01)
    assert out.lost == 0
    assert out.last_failure_after is None


def test_never_recovered():
    out = analyse(timeline(100, 4, down=(2.0, 99)), fault_at=2.0)
    assert out.outage is None and out.first_good_after is None
    assert not out.recovered
    assert out.server_after is None
    assert out.lost == 200


def test_failure_before_the_fault_is_lost_but_not_the_outage():
    reqs = timeline(100, 10, down=(5.0, 6.0))
    reqs[10].replied, reqs[10].server, reqs[10].error = None, None, "timeout"
    out = analyse(reqs, fault_at=5.0)
    assert out.lost == 101
    assert out.lost_after_fault == 100
    assert out.outage == pytest.approx(1.01)


def test_median_and_ratio_skip_missing_values():
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None]) is None
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(None, 1.0) is None and ratio(1.0, 0.0) is None


def test_a_service_that_answers_a_little_after_the_fault_counts_from_when_it_stopped():
    """A graceful stop: the old server answers 5 ms more, then nothing for 0.6 s, then the new one."""
    reqs = timeline(1000, 3, down=(1.005, 1.6))
    out = analyse(reqs, fault_at=1.0)
    assert out.outage == pytest.approx(0.596)
    assert out.outage_start == pytest.approx(1.004)
    assert (out.server_before, out.server_after) == ("a", "b")
    assert out.first_good_after == pytest.approx(0.601)


def test_a_longer_relapse_until_the_end_is_no_recovery():
    reqs = timeline(100, 6, down=(2.0, 3.0))
    for r in reqs:
        if r.sent >= 4.0:
            r.replied, r.server, r.error = None, None, "timeout"
    out = analyse(reqs, fault_at=2.0)
    assert not out.recovered and out.outage is None


def test_one_lost_request_at_the_very_end_does_not_hide_the_recovery():
    reqs = timeline(100, 6, down=(2.0, 3.0))
    reqs[-1].replied, reqs[-1].server, reqs[-1].error = None, None, "timeout"
    out = analyse(reqs, fault_at=2.0)
    assert out.outage == pytest.approx(1.01) and out.server_after == "b"


def test_active_active_last_failure_is_when_new_requests_stopped_going_to_the_dead_server():
    """Active-Active: every other request hits the dead server for 1 s; the outage stays short, last failure tells."""
    reqs = timeline(100, 3, down=(9, 9))
    for r in reqs:
        if 1.0 <= r.sent < 2.0 and r.seq % 2:
            r.replied, r.server, r.error = None, None, "timeout"
    out = analyse(reqs, fault_at=1.0)
    assert out.outage == pytest.approx(0.02)
    assert out.lost == out.lost_after_fault == 50
    assert out.last_failure_after == pytest.approx(0.99)  # seq 199, sent at 1.99


def test_a_failure_only_before_the_fault_leaves_no_last_failure():
    """last_failure_after is about the fault: a request lost earlier, and the answered ones after, do not count."""
    reqs = timeline(100, 4, down=(9, 9))
    reqs[50].replied, reqs[50].server, reqs[50].error = None, None, "timeout"
    out = analyse(reqs, fault_at=2.0)
    assert out.lost == 1 and out.lost_after_fault == 0
    assert out.last_failure_after is None


def test_a_request_sent_at_the_fault_instant_that_failed_is_a_failure_after_it():
    """The request sent as the fault struck counts as after it: lost after the fault, last failure 0 s after."""
    out = analyse(timeline(100, 2, down=(1.0, 1.01)), fault_at=1.0)
    assert out.lost_after_fault == 1
    assert out.last_failure_after == 0.0


def test_a_silence_that_ended_as_the_fault_struck_is_not_its_outage():
    """A success sent at the fault instant is the last one before it: an earlier, longer silence is not the fault's."""
    reqs = timeline(100, 10, down=(6.0, 6.5))
    for r in reqs:
        if 3.0 <= r.sent < 5.0:
            r.replied, r.server, r.error = None, None, "timeout"
    out = analyse(reqs, fault_at=5.0)  # the request sent at 5.00 was answered
    assert out.outage == pytest.approx(0.51)
    assert out.outage_start == pytest.approx(5.99) and out.outage_end == pytest.approx(6.5)


@pytest.mark.parametrize(("fault_at", "first_good_after"), [(0.0, 2.001), (0.5, 1.501)])
def test_a_probe_that_starts_during_the_outage_counts_it_from_its_first_request(fault_at, first_good_after):
    """Nothing answered before the fault: the silence is counted from the first request sent, no server before it."""
    out = analyse(timeline(100, 5, down=(0.0, 2.0)), fault_at=fault_at)
    assert out.outage == pytest.approx(2.0)
    assert out.outage_start == 0.0 and out.outage_end == pytest.approx(2.0)
    assert out.server_before is None and out.server_after == "b"
    assert out.first_good_after == pytest.approx(first_good_after)
    assert out.recovered and out.lost == 200


def test_a_probe_that_sent_nothing_shows_no_recovery():
    """No request at all: not recovered, the silence is placed at the fault, nothing lost."""
    out = analyse([], fault_at=3.0)
    assert not out.recovered and out.outage is None and out.first_good_after is None
    assert out.outage_start == 3.0 and out.outage_end is None
    assert out.requests == 0 and out.lost == 0 and out.last_failure_after is None
    assert out.server_before is None and out.server_after is None


def test_a_pause_of_the_probe_itself_after_the_failover_is_not_the_outage():
    """The probe sent nothing for 20 ms (its CPU taken), nothing failed then: a longer silence than
    the failover's 5 ms, but not the service's."""
    reqs = [r for r in timeline(1000, 2, down=(1.0, 1.005)) if not 1.3 <= r.sent < 1.32]
    out = analyse(reqs, fault_at=1.0)
    assert out.outage == pytest.approx(0.006) and out.outage_start == pytest.approx(0.999)
    assert (out.server_before, out.server_after) == ("a", "b")
    # with no failure at all, the longest silence is all there is to report
    out = analyse([r for r in timeline(1000, 2, down=(9, 9)) if not 1.3 <= r.sent < 1.32], fault_at=1.0)
    assert out.outage == pytest.approx(0.021)


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.99) == 99.0 and percentile(values, 0.5) == 50.0
    assert percentile(values, 1.0) == 100.0 and percentile(values, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0 and percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0], 0.34) == 2.0  # rank ceil(1.02) = 2


def test_median_spread_writes_the_median_then_min_and_max():
    from harness.measure import median_spread

    assert median_spread([3.0, 1.0, 2.0, 10.0], "{:.1f} ms") == "2.5 ms (1.0 ms - 10.0 ms)"
    assert median_spread([4]) == "4 (4 - 4)" and median_spread([1e-7]) == "1e-07 (1e-07 - 1e-07)"
    assert median_spread([]) == "-"
