"""The failover arithmetic, on hand-made timelines."""

import pytest

from harness.measure import analyse, median, ratio
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


def test_fault_between_probes_counts_from_the_last_good_send():
    out = analyse(timeline(10, 10, down=(5.05, 6.0)), fault_at=5.05)
    assert out.outage_start == pytest.approx(5.0)
    assert out.outage_end == pytest.approx(6.0)
    assert out.outage == pytest.approx(1.0)


def test_no_loss_gives_one_probe_interval():
    out = analyse(timeline(100, 2, down=(9, 9)), fault_at=1.005)
    assert out.outage == pytest.approx(0.01)
    assert out.lost == 0


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
