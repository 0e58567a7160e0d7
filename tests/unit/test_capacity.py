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
    assert cap.submit(0.031, lambda: None) is True and cap.dropped == 1  # room again


@pytest.mark.parametrize("bad", [(0, 0.01, 1), (1, 0.0, 1), (1, 0.01, -1)])
def test_nonsense_is_refused(bad):
    with pytest.raises(ValueError, match=r"^workers >= 1, service > 0 and queue >= 0$"):
        Capacity(*bad)


def test_the_queue_holds_1024_by_default_and_none_when_told():
    cap = Capacity(workers=1, service=1.0)
    taken = [cap.submit(0.0, lambda: None) for _ in range(1 + 1024 + 2)]
    assert taken == [True] * 1025 + [False, False] and cap.dropped == 2 and len(cap.waiting) == 1024
    none = Capacity(workers=1, service=1.0, queue=0)  # a queue of 0: only the worker
    assert none.submit(0.0, lambda: None) is True and none.submit(0.0, lambda: None) is False


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


def test_a_request_arriving_after_a_worker_freed_starts_when_it_arrives():
    """The loop may look late: a worker done at 0.010 must not serve a request that came at 0.024
    from 0.010 on (answered after 1 ms); it starts at 0.024 and is answered at 0.034."""
    answered: list[tuple[str, float]] = []
    cap = Capacity(workers=1, service=0.010)
    clock = [0.0]
    cap.submit(0.0, lambda: answered.append(("first", clock[0])))
    clock[0] = 0.024
    cap.submit(0.024, lambda: answered.append(("second", clock[0])))
    assert answered == [("first", 0.024)]           # the first was due: answered on the way in
    assert cap.next_due() == pytest.approx(0.034)
    assert cap.run_due(0.030) == 0 and cap.run_due(0.034) == 1
