"""The web tier's HTTP application and the writer's reading of its answers, over loopback: what a
write through the web tier becomes (acknowledged, failed, indeterminate), and what the server
refuses without touching the database."""

import asyncio

import pytest

from harness import dbwriter, webapp
from harness.writecheck import Write


@pytest.mark.parametrize(("answer", "outcome", "node"), [
    (b'HTTP/1.0 200 OK\r\n\r\n{"web": "web1", "db": "db2", "timeline": 2}', "ok", "db2"),
    (b'HTTP/1.0 503 Service Unavailable\r\n\r\n{"outcome": "failed"}', "failed", None),
    (b'HTTP/1.0 504 Gateway Timeout\r\n\r\n{"outcome": "timeout"}', "timeout", None),
    (b'HTTP/1.0 503 Service Unavailable\r\n\r\n{"outcome": "timeout"}', "timeout", None),
    (b"HTTP/1.0 200 OK\r\n\r\n{not json", "timeout", None),          # cut off: it may have committed
    (b"HTTP/1.0 200 OK\r\n\r\n", "timeout", None),
    (b"", "timeout", None),
])
def test_the_writer_reads_an_answer_of_the_web_tier(answer, outcome, node):
    w = dbwriter._web_outcome(7, 1.0, answer)
    assert (w.id, w.outcome, w.node) == (7, outcome, node)


def serve_once(app: webapp.WebApp, request: bytes) -> bytes:
    async def go() -> bytes:
        server = await asyncio.start_server(app.handle, "127.0.0.1", 0, limit=webapp.MAX_HEAD)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer
    return asyncio.run(go())



@pytest.fixture
def fake_writes(monkeypatch):
    """The database write replaced by a fake with a chosen outcome: this is about HTTP."""
    seen = []

    def install(outcome: str):
        async def write_one(conninfo, id_, timeout):
            seen.append(id_)
            return Write(id_, 0.0, 0.1, outcome, "db1" if outcome == "ok" else None, 1 if outcome == "ok" else None)
        monkeypatch.setattr(webapp, "write_one", write_one)
        return seen
    return install


@pytest.mark.parametrize(("outcome", "status"), [("ok", b"200"), ("failed", b"503"), ("timeout", b"504")])
def test_a_write_answers_with_what_the_database_did(fake_writes, outcome, status):
    seen = fake_writes(outcome)
    answer = serve_once(webapp.WebApp("web1", "host=unused", 1.0), b"POST /write/42 HTTP/1.0\r\n\r\n")
    assert answer.split(b" ")[1] == status and seen == [42]
    assert dbwriter._web_outcome(42, 0.0, answer).outcome == outcome


@pytest.mark.parametrize("request_", [b"POST /write/abc HTTP/1.0\r\n\r\n", b"GET /write/1 HTTP/1.0\r\n\r\n",
                                      b"\x16\x03\x01garbage\r\n\r\n",
                                      b"POST /write/1234567890123456789 HTTP/1.0\r\n\r\n"])
def test_anything_but_a_write_or_a_health_check_is_refused_without_a_write(fake_writes, request_):
    seen = fake_writes("ok")
    answer = serve_once(webapp.WebApp("web1", "host=unused", 1.0), request_)
    assert answer.split(b" ")[1] in (b"400", b"404") and seen == []


def test_a_request_head_larger_than_the_limit_is_dropped(fake_writes):
    seen = fake_writes("ok")
    answer = serve_once(webapp.WebApp("web1", "host=unused", 1.0),
                        b"POST /write/1 HTTP/1.0\r\nX: " + b"a" * 2 * webapp.MAX_HEAD + b"\r\n\r\n")
    assert answer == b"" and seen == []


def test_beyond_the_limit_of_writes_in_flight_the_answer_is_a_definite_failure(fake_writes):
    seen = fake_writes("ok")
    app = webapp.WebApp("web1", "host=unused", 1.0)
    app.in_flight = webapp.MAX_IN_FLIGHT
    answer = serve_once(app, b"POST /write/5 HTTP/1.0\r\n\r\n")
    assert dbwriter._web_outcome(5, 0.0, answer).outcome == "failed" and seen == []


def test_the_health_check_does_not_touch_the_database(fake_writes):
    seen = fake_writes("ok")
    answer = serve_once(webapp.WebApp("web1", "host=unused", 1.0), b"GET /health HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 200") and seen == []
