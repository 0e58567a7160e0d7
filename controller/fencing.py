"""Fencing (STONITH) through the switch: a cluster member asks, the controller takes the other
node's switch ports down and answers once the switch has confirmed it.

Requests come over a unix socket (the lab's management channel; ha/heartbeat/fencing.py has the
format) and must be signed with the cluster's shared secret: anything else is refused. Where a
node is plugged in is known from ARP (controller/locations.py).
"""

from __future__ import annotations

import hmac
import json
import logging
import socketserver
import threading
import time
from pathlib import Path

from controller.ids import ALL_BITS, FENCE_COOKIE
from controller.locations import Locations
from controller.unixsock import restrict
from ha.heartbeat.fencing import TIMEOUT_S, WINDOW_S, read_line, signature

log = logging.getLogger("halab.fencing")
CONFIRM_TIMEOUT_S = 2.0


class Fencer:
    def __init__(self, secret: bytes, locations: Locations, datapaths: dict[int, object]) -> None:
        """`datapaths`: the connected switches by id, kept up to date by the app."""
        self.secret = secret
        self.locations, self.datapaths = locations, datapaths
        self.fenced: set[tuple[int, int]] = set()
        self.links_down: set[tuple[int, int]] = set()  # (dpid, port) the switch reported without a link
        self.waiting: dict[int, threading.Event] = {}  # barrier xid -> set when the switch answered
        self.nonces: dict[str, float] = {}  # nonce -> its request's time, while inside the window
        self.lock = threading.Lock()

    def link_changed(self, dpid: int, port: int, down: bool) -> None:
        """From the port status handler: the switch says the port's link went down or came back."""
        with self.lock:
            (self.links_down.add if down else self.links_down.discard)((dpid, port))

    def confirmed(self, xid: int) -> None:
        event = self.waiting.pop(xid, None)
        if event is not None:
            event.set()

    def handle(self, request: object, now_wall: float | None = None) -> dict:
        """Check the request (form, signature, age, nonce) and do what it asks; the answer as a dict."""
        if not isinstance(request, dict):
            return {"ok": False, "error": "expected a JSON object"}
        action, node, addresses = request.get("action"), request.get("node"), request.get("addresses")
        at, nonce = request.get("time"), request.get("nonce")
        if (action not in ("fence", "unfence") or not isinstance(node, str) or not isinstance(addresses, list)
                or not addresses or not all(isinstance(a, str) for a in addresses)
                or not isinstance(at, (int, float)) or isinstance(at, bool) or not isinstance(nonce, str)):
            return {"ok": False, "error": "expected action fence|unfence, node, addresses, time and nonce"}
        expected = signature(self.secret, action, node, addresses, at, nonce)
        if not hmac.compare_digest(expected, str(request.get("mac", ""))):
            log.warning("refused a %s request for %s: bad signature", action, node)
            return {"ok": False, "error": "refused: not signed with the cluster's secret"}
        now_wall = time.time() if now_wall is None else now_wall
        with self.lock:
            self.nonces = {n: t for n, t in self.nonces.items() if abs(now_wall - t) <= WINDOW_S}
            if abs(now_wall - at) > WINDOW_S:
                age = now_wall - at
                return {"ok": False, "error": f"refused: the request is {age:.0f} s old (at most {WINDOW_S:g})"}
            if nonce in self.nonces:
                log.warning("refused a replayed %s request for %s", action, node)
                return {"ok": False, "error": "refused: this request was already served (a replay)"}
            self.nonces[nonce] = at
            places = {a: self.locations.get(a) for a in addresses}
        missing = sorted(a for a, loc in places.items() if loc is None)
        if missing:
            return {"ok": False, "error": f"no switch port known for {', '.join(missing)} (no ARP seen from them); "
                                          "nothing was changed"}
        ports = [(self.datapaths.get(loc.dpid), loc.port) for loc in places.values() if loc is not None]
        if any(dp is None for dp, _port in ports):
            return {"ok": False, "error": "the switch of a port to fence is not connected; nothing was changed"}
        return self._set(action, node, ports)

    def _set(self, action: str, node: str, ports: list[tuple]) -> dict:
        """Shut the ports (or open them) and answer once the switch has confirmed it: by a barrier
        after the changes, or, to fence, already by its own port status when every port's link
        is down (a crashed node): a port without a link carries nothing, and the changes sent
        keep it shut should the link come back."""
        down = action == "fence"
        ports = list(dict.fromkeys(ports))  # two addresses of one node may share a port
        with self.lock:
            reported_down = down and all((dp.id, port) in self.links_down for dp, port in ports)
        events = []
        for dp, port in ports:
            _set_port(dp, port, down)
            events.append(self._barrier(dp))
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S  # one deadline for every barrier, not one each
        if not reported_down and not all(e.wait(max(0.0, deadline - time.monotonic())) for e in events):
            return {"ok": False, "error": f"the switch did not confirm within {CONFIRM_TIMEOUT_S:g} s"}
        for dp, port in ports:
            (self.fenced.add if down else self.fenced.discard)((dp.id, port))
        done = [[f"{dp.id:016x}", port] for dp, port in ports]
        log.info("%s %s: ports %s%s", "fenced" if down else "unfenced", node, done,
                 " (their links were already down)" if reported_down else "")
        return {"ok": True, "ports": done}

    def _barrier(self, dp) -> threading.Event:
        msg = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(msg)
        event = self.waiting[msg.xid] = threading.Event()
        dp.send_msg(msg)
        return event

    def serve(self, path: Path, owner: int | None = None) -> None:
        """Answer requests on the unix socket `path` (root's, and `owner`'s) from a daemon thread."""
        fencer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    answer = fencer.handle(json.loads(read_line(self.request, time.monotonic() + TIMEOUT_S)))
                except (ValueError, OSError) as exc:  # not JSON, too long, too slow
                    answer = {"ok": False, "error": f"not a request: {exc}"}
                try:
                    self.request.sendall(json.dumps(answer).encode() + b"\n")
                except OSError:
                    pass  # the client gave up

        path.unlink(missing_ok=True)
        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        server.daemon_threads = True
        restrict(path, owner)
        # poll_interval 0.1 s: shutdown() returns that soon, not after socketserver's 0.5 s
        threading.Thread(target=server.serve_forever, args=(0.1,), name="fencing", daemon=True).start()


def _set_port(dp, port: int, down: bool) -> None:
    """Isolate a port (or end that): administratively down, and a drop flow for all it sends.

    The port going down stops traffic both ways; the drop flow keeps the node silent even if its
    link comes back up by other means (someone re-plugs the cable), until it is unfenced.
    """
    ofp, parser = dp.ofproto, dp.ofproto_parser
    config = ofp.OFPPC_PORT_DOWN if down else 0
    extra = {"properties": []} if ofp.OFP_VERSION >= 0x06 else {"advertise": 0}
    dp.send_msg(parser.OFPPortMod(dp, port_no=port, hw_addr=dp.ports[port].hw_addr, config=config,
                                  mask=ofp.OFPPC_PORT_DOWN, **extra))
    match = parser.OFPMatch(in_port=port)
    if down:
        dp.send_msg(parser.OFPFlowMod(dp, cookie=FENCE_COOKIE, table_id=0, priority=0xFFFF, match=match,
                                      instructions=[]))
    else:
        dp.send_msg(parser.OFPFlowMod(dp, cookie=FENCE_COOKIE, cookie_mask=ALL_BITS, table_id=0,
                                      command=ofp.OFPFC_DELETE_STRICT, priority=0xFFFF, out_port=ofp.OFPP_ANY,
                                      out_group=ofp.OFPG_ANY, match=match))
