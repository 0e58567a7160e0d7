"""The latency-vs-load arithmetic: a step's figures and where the curve bends (the knee)."""

import pytest

from harness.errors import HalabError
from harness.loadcurve import Step, check_loads, knee, past_knee, step_of
from harness.probe import Request


def step(offered: float, p99: float | None, loss: float = 0.0) -> Step:
    sent = 1000
    return Step(offered, sent, round(sent * (1 - loss)), p99, p99)


def test_a_step_has_its_latencies_losses_and_spread():
    reqs = [Request(i, 1.0 + i, replied=1.0 + i + 0.010 * (i + 1), server="ab"[i % 2]) for i in range(4)]
    reqs.append(Request(4, 9.0, error="timeout"))
    s = step_of(200, reqs, {"a": 0.25})
    assert (s.offered, s.sent, s.answered) == (200, 5, 4)
    assert s.p50_ms == pytest.approx(20.0) and s.p99_ms == pytest.approx(40.0)  # nearest rank: measured values
    assert s.per_server == {"a": 2, "b": 2} and s.cpu == {"a": 0.25}
    assert s.loss == pytest.approx(0.2)
    assert step_of(10, [], {}).loss == 1.0 and step_of(10, [], {}).p99_ms is None


def test_past_the_knee_by_latency_or_by_losses():
    assert not past_knee(step(100, 60.0), service_ms=20)       # exactly 3 x 20 ms: still within
    assert past_knee(step(100, 60.1), service_ms=20)
    assert not past_knee(step(100, 20.0, loss=0.01), service_ms=20)
    assert past_knee(step(100, 20.0, loss=0.02), service_ms=20)
    assert past_knee(step(100, None), service_ms=20)


def test_the_knee_is_where_p99_crosses_three_service_times():
    steps = [step(100, 21.0), step(200, 40.0), step(300, 140.0), step(400, 900.0)]
    # between 200 (40 ms) and 300 (140 ms), 60 ms is a fifth of the way
    assert knee(steps, service_ms=20) == pytest.approx(220.0)


def test_a_hiccup_at_a_light_step_is_not_the_knee():
    """Measured: one slow new connection made the p99 of 150 requests 98 ms at 100/s, and the
    curve was flat again up to 350/s."""
    steps = [step(50, 25.6), step(100, 97.8), step(150, 24.5), step(350, 51.7), step(375, 68.7), step(400, 66.1),
             step(450, 231.1)]
    assert knee(steps, service_ms=20) == pytest.approx(350 + (60 - 51.7) / (68.7 - 51.7) * 25)
    assert knee([step(100, 21.0), step(200, 90.0), step(300, 22.0)], service_ms=20) is None  # flat at the end


def test_a_step_past_only_by_its_losses_puts_the_knee_at_the_last_good_one():
    assert knee([step(100, 21.0), step(200, 30.0, loss=0.5)], service_ms=20) == 100
    assert knee([step(100, 21.0), step(200, None, loss=1.0)], service_ms=20) == 100


def test_no_knee_inside_the_sweep_or_no_flat_part():
    assert knee([step(100, 21.0), step(200, 22.0)], service_ms=20) is None
    assert knee([step(100, 500.0), step(200, 900.0)], service_ms=20) is None
    assert knee([], service_ms=20) is None


def test_loads_the_probe_cannot_send_are_refused():
    check_loads([10, 1000])
    for bad in (5, 1001):
        with pytest.raises(HalabError, match=f"{bad:g} requests/s is beyond what the probe can send"):
            check_loads([100, bad])


def test_the_report_says_on_which_side_a_knee_the_sweep_missed_lies():
    from harness.loadcurve import report

    assert report([step(100, 21.0), step(200, 22.0)], (4, 0.02))["knee_beyond"] == "above"
    low = report([step(100, 500.0), step(200, 900.0)], (4, 0.02))
    assert low["knee"] is None and low["knee_beyond"] == "below"
    found = report([step(100, 21.0), step(200, 40.0), step(300, 140.0)], (4, 0.02))
    assert found["knee"] == pytest.approx(220.0) and found["knee_beyond"] is None
    assert found["per_server"] == pytest.approx(200.0) and found["service_ms"] == pytest.approx(20.0)
    assert [s["loss"] for s in found["steps"]] == [0.0, 0.0, 0.0]
