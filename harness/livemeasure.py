"""One fault on the lab that is up, measured as its probe saw it, then mended: what a lesson's
check and the live view's benchmark do, through the lab's control socket and its probe's log."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from harness import control
from harness.errors import HalabError
from harness.measure import analyse
from harness.probe import Request
from harness.web.feed import probe_line

#: The probe waits this long for a reply: a loss is in its log this much later.
REPLY_TIMEOUT_S = 1.0
#: After the fault is mended, the service must answer this long without a loss before the next run.
SETTLE_S = 1.0
MEND_TIMEOUT_S = 30.0


def ask(socket: Path, argv: list[str], timeout: float = 60.0) -> str:
    rc, out = control.request(socket, argv, timeout=timeout)
    if rc != 0:
        raise HalabError(f"`{' '.join(argv)}` failed on the lab: {out}", "See `halab status`.")
    return out


def probe_log(socket: Path) -> Path:
    """The running probe's log, starting the probe if it is not running."""
    status = json.loads(ask(socket, ["status", "--json"]))
    if not status["probe"]["running"]:
        ask(socket, ["probe", "start"])
        status = json.loads(ask(socket, ["status", "--json"]))
    return Path(status["probe"]["log"])


def outage(socket: Path, fault: str, watch_s: float) -> float | None:
    """Apply `fault` (as typed at the prompt: "link-cut server1"), watch the probe until the service
    has answered for SETTLE_S again or `watch_s` passed, mend everything (`fault restore`) and wait
    until it answers again. The outage in seconds; None when it had not ended after watch_s."""
    log = probe_log(socket)
    offset = log.stat().st_size
    at = time.monotonic()
    ask(socket, ["fault", *shlex.split(fault)])
    requests: list[Request] = []
    while time.monotonic() < at + watch_s:
        time.sleep(0.1)
        requests = _since(log, offset)
        if _settled(requests, after=at):
            break
    result = analyse(requests, at).outage if requests else None
    ask(socket, ["fault", "restore"])
    mended = time.monotonic()
    while not _settled(_since(log, offset), after=mended):
        if time.monotonic() > mended + MEND_TIMEOUT_S:
            raise HalabError(f"The lab did not answer again within {MEND_TIMEOUT_S:g} s of `fault restore`.",
                             "See `halab status`; `halab down` and `halab lesson start` begin afresh.")
        time.sleep(0.1)
    return result


def _since(log: Path, offset: int) -> list[Request]:
    with log.open() as f:
        f.seek(offset)
        parsed = [p for p in map(probe_line, f.read().splitlines()) if p is not None]
    return [Request(i, sent, sent if server else None, server) for i, (sent, server) in enumerate(parsed)]


def _settled(requests: list[Request], after: float) -> bool:
    """The requests of the last SETTLE_S whose fate is known by now (sent at least a reply timeout
    ago), all sent after `after`, were all answered, and there were some."""
    end = time.monotonic() - REPLY_TIMEOUT_S
    known = [r for r in requests if end - SETTLE_S <= r.sent < end]
    return end - SETTLE_S > after and bool(known) and all(r.ok for r in known)
