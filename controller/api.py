"""The load balancer's status and drain API: JSON over HTTP on localhost only.

    GET  /status                                  -> services, backends, health, connections, counters
    POST /drain   {"service": "web", "backend": "10.0.0.2:80", "drain": true}
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

DEFAULT_PORT = 6680


class Balancer(Protocol):
    def status(self) -> dict: ...
    def set_drained(self, service_name: str, backend_label: str, drained: bool) -> str: ...


def serve(app: Balancer, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """Answer the API on 127.0.0.1:`port` from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/status":
                self._reply(404, {"error": "unknown path; use GET /status or POST /drain"})
                return
            self._reply(200, app.status())

        def do_POST(self) -> None:
            if self.path != "/drain":
                self._reply(404, {"error": "unknown path; use GET /status or POST /drain"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                message = app.set_drained(str(body["service"]), str(body["backend"]), bool(body.get("drain", True)))
            except (KeyError, ValueError, TypeError) as exc:
                self._reply(400, {"error": str(exc).strip('"')})
                return
            self._reply(200, {"result": message})

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body, indent=1).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="lb-api", daemon=True).start()
    return server


class ApiError(RuntimeError):
    """The API answered with an error, or nothing answers on the port."""


def check_free(port: int) -> None:
    """Refuse to start when the API port is taken (say, by another load balancer)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: ignore TIME_WAIT
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ApiError(f"cannot serve the status API on 127.0.0.1:{port} ({exc.strerror}); "
                           "choose another --api-port") from None


def call(port: int, path: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    """GET `path`, or POST `body` to it; the decoded JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise ApiError(json.loads(exc.read()).get("error", str(exc))) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(f"nothing answers on 127.0.0.1:{port} ({exc}); start the load balancer with "
                       f"`halab-controller --config FILE --api-port {port}`") from None
