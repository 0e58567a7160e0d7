"""Asking the SDN controller to fence (isolate) a node, and the wire format both sides use.

One JSON line each way over a unix socket, the lab's management channel to the fencing device:
    request  {"action": "fence" | "unfence", "addresses": ["10.0.0.1", ...], "node": "node1",
              "mac": HMAC-SHA256(secret, action + node + addresses)}
    reply    {"ok": true, "ports": [["0000000000000001", 3], ...]} or {"ok": false, "error": "..."}
The controller answers only after the switch confirmed (a barrier) that the ports are down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from pathlib import Path

TIMEOUT_S = 3.0


def signature(secret: bytes, action: str, node: str, addresses: list[str]) -> str:
    text = "\n".join([action, node, *sorted(addresses)])
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def request(path: Path, secret: bytes, action: str, node: str, addresses: list[str],
            timeout: float = TIMEOUT_S) -> dict:
    """Send one request and wait for the answer; {"ok": False, "error": ...} when it cannot."""
    body = {"action": action, "node": node, "addresses": addresses,
            "mac": signature(secret, action, node, addresses)}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(json.dumps(body).encode() + b"\n")
            answer = s.makefile("rb").readline()
        return json.loads(answer) if answer else {"ok": False, "error": "the controller closed the connection"}
    except (OSError, ValueError) as exc:
        return {"ok": False, "error": f"{path}: {exc}"}
