"""A server with a finite capacity: the queue arithmetic, then the responder serving through it."""

import asyncio
import statistics
import subprocess
import sys

import pytest

from harness.probe.capacity import Capacity
from harness.probe.client import probe
from tests.unit.test_probe import _free_port


def test_requests_within_the_workers_take_the_service_time():
    answered: list[str] = []
    cap = Capacity(workers=2, service=0.010)
    assert cap.per_second == pytest.approx(200)
    assert cap.submit(0.0, lambda: answered.append("a")) and cap.submit(0.001, lambda: answered.append("b"))
    assert cap.next_due() == pytest.approx(0.010)
    assert cap.run_due(0.0099) == 0 and answered == []
    assert cap.run_due(0.0105) == 1 and answered == ["a"]
    assert cap.run_due(0.011) == 1 and answered == ["a", "b"]
    assert cap.next_due() is None


def test_past_the_workers_requests_wait_their_turn_and_past_the_queue_they_are_dropped():
    answered: list[int] = []
    cap = Capacity(workers=1, service=0.010, queue=2)
    for i in range(4):
        cap.submit(0.0, lambda i=i: answered.append(i))
    assert cap.dropped == 1 and len(cap.waiting) == 2
    # the waiting ones start when the one before ends, even if the loop looks late
    assert cap.run_due(0.025) == 2 and answered == [0, 1]
    assert cap.next_due() == pytest.approx(0.030)
    assert cap.run_due(0.030) == 1 and answered == [0, 1, 2]
    assert cap.submit(0.031, lambda: None) and cap.dropped == 1  # room again


@pytest.mark.parametrize("bad", [(0, 0.01, 1), (1, 0.0, 1), (1, 0.01, -1)])
def test_nonsense_is_refused(bad):
    with pytest.raises(ValueError):
        Capacity(*bad)


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_the_responder_answers_at_its_capacity_and_no_faster(proto):
    """2 workers x 20 ms = 100/s. At 50/s every request takes ~20 ms; at 200/s (twice the
    capacity) the queue grows and so does the wait."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-u", "-m", "harness.probe", "serve", "--name", "busy", "--bind",
                             "127.0.0.1", "--port", str(port), "--workers", "2", "--service-ms", "20"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "2 at a time, 20 ms each" in proc.stdout.readline()
        light = asyncio.run(probe("127.0.0.1", port, proto, rate=50, duration=0.5, timeout=2.0))
        heavy = asyncio.run(probe("127.0.0.1", port, proto, rate=200, duration=0.5, timeout=5.0))
    finally:
        proc.terminate()
        proc.wait(5)
    light_ms = [(r.replied - r.sent) * 1000 for r in light if r.ok]
    heavy_ms = [(r.replied - r.sent) * 1000 for r in heavy if r.ok]
    assert len(light_ms) == len(light) and 19 <= statistics.median(light_ms) < 40
    # 100 requests at 100/s take 1 s: the last waits about 0.5 s in the queue
    assert len(heavy_ms) == len(heavy) and max(heavy_ms) > 400
    assert max(r.replied for r in heavy) - min(r.sent for r in heavy) > 0.9
