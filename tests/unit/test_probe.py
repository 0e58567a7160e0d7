"""The probe client and responder over loopback, with real sockets."""

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from harness.probe.client import check, hold, probe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def responder():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-u", "-m", "harness.probe", "serve", "--name", "lo-server",
                             "--bind", "127.0.0.1", "--bind", "::1", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    assert "serving" in proc.stdout.readline()
    yield port
    proc.terminate()
    assert proc.wait(5) == 0


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_every_request_is_answered_with_the_server_name(responder, proto):
    reqs = asyncio.run(probe("127.0.0.1", responder, proto, rate=200, duration=0.5, timeout=1.0))
    assert len(reqs) == 100
    assert all(r.ok and r.server == "lo-server" for r in reqs)
    assert all(r.sent <= r.replied < r.sent + 1.0 for r in reqs)
    # sent on schedule: 0.5 s of sending at 200/s
    assert 0.45 < reqs[-1].sent - reqs[0].sent < 1.0


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_ipv6_too(responder, proto):
    reqs = asyncio.run(probe("::1", responder, proto, rate=100, duration=0.1, timeout=1.0))
    assert [r.server for r in reqs] == ["lo-server"] * 10


def test_nothing_listening_counts_as_lost():
    port = _free_port()
    t = time.monotonic()
    reqs = asyncio.run(probe("127.0.0.1", port, "udp", rate=100, duration=0.1, timeout=0.2))
    assert [r.ok for r in reqs] == [False] * 10
    assert time.monotonic() - t < 2
    tcp = asyncio.run(probe("127.0.0.1", port, "tcp", rate=100, duration=0.1, timeout=0.2))
    assert all(not r.ok and r.error for r in tcp)


def test_check_names_the_server_at_each_address(responder):
    assert check(["127.0.0.1"], responder, "udp") == {"127.0.0.1": "lo-server"}
    assert check(["127.0.0.1"], _free_port(), "tcp", attempts=1, timeout=0.2) == {"127.0.0.1": None}


def test_client_rejects_rates_outside_the_range():
    result = subprocess.run([sys.executable, "-m", "harness.probe", "client", "--target", "127.0.0.1",
                             "--rate", "5000", "--out", "/dev/null"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "outside 10 to 1000" in result.stderr


def test_held_connections_answer_first_and_last_and_a_gone_server_loses_them():
    port = _free_port()
    serve = [sys.executable, "-u", "-m", "harness.probe", "serve", "--name", "lo-server", "--bind", "127.0.0.1",
             "--port", str(port)]
    proc = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True)
    try:
        assert "serving" in proc.stdout.readline()
        kept = hold("127.0.0.1", port, 40, 0.2, at_once=8)
        assert 0 < kept.pop("slowest_answer_s") < 2.0
        assert kept == {"count": 40, "first": {"lo-server": 40}, "last": {"lo-server": 40}, "kept": 40, "moved": 0,
                        "lost": 0, "lost_by_backend": {}, "never": 0}
        seen = []

        def stop_the_server(line: str) -> None:
            seen.append(line)
            if line.startswith("open"):
                proc.kill()
                proc.wait(5)

        gone = hold("127.0.0.1", port, 10, 0.1, timeout=0.5, say=stop_the_server)
    finally:
        proc.kill()
        proc.wait(5)
    assert seen == ["open 10", "asking again"]
    assert gone["first"] == {"lo-server": 10} and gone["lost"] == 10 and gone["lost_by_backend"] == {"lo-server": 10}
    assert gone["kept"] == gone["moved"] == gone["never"] == 0 and gone["slowest_answer_s"] is None
    never = hold("127.0.0.1", _free_port(), 5, 0.0, timeout=0.5)
    assert never["never"] == 5 and never["first"] == {} and never["lost"] == 0


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_every_request_is_sent_before_the_probe_waits_for_the_replies(responder, proto, monkeypatch):
    """Gathering thousands of tasks takes tens of milliseconds: a request sent after it began
    would leave a gap in the timeline that reads as an outage."""
    gathered: list[float] = []
    gather = asyncio.gather

    def stamped(*tasks):
        gathered.append(time.monotonic())
        return gather(*tasks)

    monkeypatch.setattr(asyncio, "gather", stamped)
    reqs = asyncio.run(probe("127.0.0.1", responder, proto, rate=1000, duration=0.05, timeout=1.0))
    assert len(gathered) == 1 and all(0 < r.sent <= gathered[0] for r in reqs)
