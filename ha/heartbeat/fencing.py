"""Asking the SDN controller to fence (isolate) a node, and the wire format both sides use.

One JSON line each way over a unix socket, the lab's management channel to the fencing device:
    request  {"action": "fence" | "unfence", "node": "node1", "addresses": ["10.0.0.1", ...],
              "time": <wall clock, s>, "nonce": <32 hex digits>, "mac": HMAC-SHA256(secret, canonical)}
    reply    {"ok": true, "ports": [["0000000000000001", 3], ...]} or {"ok": false, "error": "..."}
The signed text is the JSON list [action, node, sorted addresses, time, nonce]: no two requests
share it. The controller refuses a request older than WINDOW_S or a nonce it has seen (an old
"unfence" replayed cannot undo a fence), and answers only after the switch confirmed that the
ports are down (a barrier after shutting them, or its own report that their links are down).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import time
from pathlib import Path

TIMEOUT_S = 3.0
#: How old (or how far in the future) a request may be when the controller reads it.
WINDOW_S = 30.0
#: A request or a reply is one line of at most this many bytes.
MAX_LINE = 4096


def signature(secret: bytes, action: str, node: str, addresses: list[str], at: float, nonce: str) -> str:
    text = json.dumps([action, node, sorted(addresses), at, nonce])
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def signed(secret: bytes, action: str, node: str, addresses: list[str]) -> dict:
    """A request, stamped now with a fresh nonce and signed."""
    at, nonce = time.time(), secrets.token_hex(16)
    return {"action": action, "node": node, "addresses": addresses, "time": at, "nonce": nonce,
            "mac": signature(secret, action, node, addresses, at, nonce)}


def read_line(sock: socket.socket, deadline: float) -> bytes:
    """One line of at most MAX_LINE bytes, before the monotonic `deadline`; TimeoutError or ValueError else."""
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete line in time")
        sock.settimeout(left)
        chunk = sock.recv(MAX_LINE + 1 - len(data))
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_LINE:
            raise ValueError(f"a line longer than {MAX_LINE} bytes")
    return data.split(b"\n", 1)[0]


def request(path: Path, secret: bytes, action: str, node: str, addresses: list[str],
            timeout: float = TIMEOUT_S) -> dict:
    """Send one request and wait for the answer, `timeout` seconds at the most in all;
    {"ok": False, "error": ...} when it cannot (the caller may try again)."""
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(json.dumps(signed(secret, action, node, addresses)).encode() + b"\n")
            answer = read_line(s, deadline)
        reply = json.loads(answer) if answer else {"ok": False, "error": "the controller closed the connection"}
        return reply if isinstance(reply, dict) else {"ok": False, "error": f"unexpected answer {reply!r}"}
    except (OSError, ValueError) as exc:
        return {"ok": False, "error": f"{path}: {exc}"}
