"""The load balancer's status and drain API: JSON over HTTP on 127.0.0.1 only.

    GET  /status                                  -> services, backends, health, connections, counters
    POST /drain   {"service": "web", "backend": "10.0.0.2:80", "drain": true}
                  Content-Type: application/json, X-Halab-Token: <the token>

Reading is open to local clients; changing anything needs the token the controller writes,
readable by root only, at token_path(port) when it starts: a web page in a browser on this
machine can neither read it nor send a JSON POST without a CORS preflight, which this server
never grants. Bodies are bounded, every field typed, idle connections dropped after IDLE_S.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from ha.statusfile import ensure_private, state_root, write_atomically

DEFAULT_PORT = 6680
MAX_BODY = 4096
IDLE_S = 5.0
TOKEN_HEADER = "X-Halab-Token"


class Balancer(Protocol):
    def status(self) -> dict: ...
    def set_drained(self, service_name: str, backend_label: str, drained: bool) -> str: ...


class ApiError(RuntimeError):
    """The API answered with an error, or nothing answers on the port."""


class _RequestError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def token_path(port: int) -> Path:
    """Where the controller serving the API on `port` keeps its token (root only)."""
    return state_root() / f"lb-api-{port}.token"


def serve(app: Balancer, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """Answer the API on 127.0.0.1:`port` from a daemon thread; write the token for changes first."""
    token = secrets.token_hex(16)
    ensure_private(state_root())
    write_atomically(token_path(port), token)

    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_S  # an idle or trickling client loses its connection, not a thread for good

        def do_GET(self) -> None:
            if self.path != "/status":
                self._reply(404, {"error": "unknown path; use GET /status or POST /drain"})
                return
            try:
                self._reply(200, app.status())
            except Exception as exc:  # a bug in status must answer, not drop the connection
                self._reply(500, {"error": f"status failed: {type(exc).__name__}: {exc}"})

        def do_POST(self) -> None:
            try:
                if self.path != "/drain":
                    raise _RequestError(404, "unknown path; use GET /status or POST /drain")
                body = self._checked_body()
                message = app.set_drained(body["service"], body["backend"], body["drain"])
            except _RequestError as exc:
                self._reply(exc.code, {"error": str(exc)})
                return
            except KeyError as exc:
                self._reply(404, {"error": str(exc).strip('"')})
                return
            self._reply(200, {"result": message})

        def _checked_body(self) -> dict:
            if self.headers.get_content_type() != "application/json":
                raise _RequestError(415, "send the body as Content-Type: application/json")
            if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), token):
                raise _RequestError(403, f"changes need the {TOKEN_HEADER} header with the token in "
                                       f"{token_path(port)}")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                raise _RequestError(411, "a Content-Length is required") from None
            if not 0 < length <= MAX_BODY:
                raise _RequestError(413, f"the body must be 1 to {MAX_BODY} bytes")
            try:
                body = json.loads(self.rfile.read(length))
            except (ValueError, OSError):
                raise _RequestError(400, "the body is not JSON") from None
            types = {"service": str, "backend": str, "drain": bool}
            if not isinstance(body, dict) or set(body) != set(types) or not all(
                    isinstance(body[k], t) for k, t in types.items()):
                raise _RequestError(400, 'expected {"service": string, "backend": string, "drain": true or false}')
            return body

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body, indent=1).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            try:
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client hung up (say, while its refused body was still coming): no one to tell
                self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    # poll_interval 0.1 s: shutdown() returns that soon, not after socketserver's 0.5 s
    threading.Thread(target=server.serve_forever, args=(0.1,), name="lb-api", daemon=True).start()
    return server


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
    """GET `path`, or POST `body` to it with the controller's token; the decoded JSON answer."""
    headers = {"Content-Type": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        try:
            headers[TOKEN_HEADER] = token_path(port).read_text().strip()
        except OSError as exc:
            raise ApiError(f"cannot read the API token {token_path(port)} ({exc.strerror}); changes need root "
                           "on the machine the load balancer runs on") from None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise ApiError(json.loads(exc.read() or b"{}").get("error", str(exc))) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(f"nothing answers on 127.0.0.1:{port} ({exc}); start the load balancer with "
                       f"`halab-controller --config FILE --api-port {port}`") from None
