"""Fencing (STONITH) through the switch: a cluster member asks, the controller takes the other
node's switch ports down and answers once the switch has confirmed it.

Requests come over a unix socket (the lab's management channel; ha/heartbeat/fencing.py has the
format) and must be signed with the cluster's shared secret: anything else is refused. Where a
node is plugged in is known from ARP: every ARP request crosses the controller in the L2 app,
so the sender's address, switch and port are noted as they pass ("ARP snooping").
"""

from __future__ import annotations

import hmac
import json
import logging
import socketserver
import threading
from pathlib import Path

from controller.ids import ALL_BITS, FENCE_COOKIE
from ha.heartbeat.fencing import signature

log = logging.getLogger("halab.fencing")
CONFIRM_TIMEOUT_S = 2.0


class Fencer:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.where: dict[str, tuple[object, int]] = {}  # IPv4 address -> (datapath, port)
        self.fenced: set[tuple[int, int]] = set()
        self.waiting: dict[int, threading.Event] = {}  # barrier xid -> set when the switch answered
        self.lock = threading.Lock()

    def saw(self, dp, address: str, port: int) -> None:
        """An ARP packet from `address` came in on `port` of `dp`."""
        with self.lock:
            self.where[address] = (dp, port)

    def confirmed(self, xid: int) -> None:
        event = self.waiting.pop(xid, None)
        if event is not None:
            event.set()

    def handle(self, request: dict) -> dict:
        """Check the signature and do what the request asks; the answer as a dict."""
        action, node, addresses = request.get("action"), str(request.get("node", "")), request.get("addresses")
        if action not in ("fence", "unfence") or not isinstance(addresses, list) or not addresses:
            return {"ok": False, "error": "expected action fence|unfence, node and a list of addresses"}
        expected = signature(self.secret, action, node, [str(a) for a in addresses])
        if not hmac.compare_digest(expected, str(request.get("mac", ""))):
            log.warning("refused a %s request for %s: bad signature", action, node)
            return {"ok": False, "error": "refused: not signed with the cluster's secret"}
        with self.lock:
            targets = {str(a): self.where.get(str(a)) for a in addresses}
        ports = [t for t in targets.values() if t is not None]
        if not ports:
            return {"ok": False, "error": f"no switch port known for {', '.join(targets)} (no ARP seen from them)"}
        down = action == "fence"
        events = []
        for dp, port in ports:
            _set_port(dp, port, down)
            events.append(self._barrier(dp))
        if not all(e.wait(CONFIRM_TIMEOUT_S) for e in events):
            return {"ok": False, "error": "the switch did not confirm within 2 s"}
        for dp, port in ports:
            (self.fenced.add if down else self.fenced.discard)((dp.id, port))
        done = [[f"{dp.id:016x}", port] for dp, port in ports]
        log.info("%s %s: ports %s", "fenced" if down else "unfenced", node, done)
        return {"ok": True, "ports": done}

    def _barrier(self, dp) -> threading.Event:
        msg = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(msg)
        event = self.waiting[msg.xid] = threading.Event()
        dp.send_msg(msg)
        return event

    def serve(self, path: Path) -> None:
        """Answer requests on the unix socket `path` from a daemon thread."""
        fencer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    answer = fencer.handle(json.loads(self.rfile.readline()))
                except (ValueError, AttributeError) as exc:
                    answer = {"ok": False, "error": f"not a JSON request: {exc}"}
                self.wfile.write(json.dumps(answer).encode() + b"\n")

        path.unlink(missing_ok=True)
        server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        server.daemon_threads = True
        path.chmod(0o600)
        threading.Thread(target=server.serve_forever, name="fencing", daemon=True).start()


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
