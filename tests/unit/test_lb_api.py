"""The load balancer's API on loopback, with a fake balancer: nothing changes without the token and
well-formed JSON, bodies are bounded, idle clients are dropped, errors are answered."""

import http.client
import json
import socket
import time

import pytest

from controller import api


class FakeBalancer:
    def __init__(self) -> None:
        self.drained: list[tuple] = []
        self.broken = False

    def status(self) -> dict:
        if self.broken:
            raise RuntimeError("boom")
        return {"switches": []}

    def set_drained(self, service_name: str, backend_label: str, drained: bool) -> str:
        if service_name != "web":
            raise KeyError(f"no service {service_name!r}")
        self.drained.append((service_name, backend_label, drained))
        return "ok"


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setenv("HALAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(api, "IDLE_S", 0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = FakeBalancer()
    server = api.serve(app, port)
    yield app, port
    server.shutdown()


def post(port: int, body: bytes, headers: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/drain", body=body, headers=headers)
    answer = conn.getresponse()
    return answer.status, json.loads(answer.read() or b"{}")


def good_headers(port: int) -> dict:
    return {"Content-Type": "application/json", api.TOKEN_HEADER: api.token_path(port).read_text()}


def test_the_token_is_readable_by_its_owner_only(served):
    _app, port = served
    assert api.token_path(port).stat().st_mode & 0o077 == 0


def test_a_drain_with_the_token_works_through_the_client(served):
    app, port = served
    assert api.call(port, "/drain", {"service": "web", "backend": "10.0.0.2:80", "drain": True}) == {"result": "ok"}
    assert app.drained == [("web", "10.0.0.2:80", True)]
    assert api.call(port, "/status") == {"switches": []}


@pytest.mark.parametrize(("body", "headers", "code"), [
    (b'{"service": "web", "backend": "b", "drain": true}', {"Content-Type": "text/plain"}, 415),  # a web form
    (b'{"service": "web", "backend": "b", "drain": true}', {"Content-Type": "application/json"}, 403),
    (b'{"service": "web", "backend": "b", "drain": "false"}', None, 400),
    (b'{"service": "web", "backend": "b"}', None, 400),
    (b"not json", None, 400),
    (b'{"service": "nope", "backend": "b", "drain": true}', None, 404),
])
def test_nothing_changes_without_a_well_formed_request(served, body, headers, code):
    app, port = served
    status, answer = post(port, body, headers or good_headers(port))
    assert status == code and answer["error"]
    assert app.drained == []


@pytest.mark.parametrize(("length", "code"), [("-1", 413), ("99999", 413), ("x", 411)])
def test_a_bad_content_length_is_refused_at_once(served, length, code):
    _app, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        token = api.token_path(port).read_text()
        s.sendall(f"POST /drain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{api.TOKEN_HEADER}: "
                  f"{token}\r\nContent-Length: {length}\r\n\r\n".encode())
        assert s.recv(100).split()[1] == str(code).encode()


def test_an_idle_client_is_dropped(served):
    _app, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=api.IDLE_S + 5) as s:
        t = time.monotonic()
        assert s.recv(100) == b""  # closed by the server, without a request
        assert time.monotonic() - t < api.IDLE_S + 2


def test_a_failing_status_is_answered_with_an_error(served):
    app, port = served
    app.broken = True
    with pytest.raises(api.ApiError, match="status failed: RuntimeError: boom"):
        api.call(port, "/status")
