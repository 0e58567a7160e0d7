"""One fault on the lab that is up, measured as its probe saw it, then mended: what a lesson's
check and the live view's benchmark do, through the lab's control socket and its probe's log."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, fields
from itertools import groupby
from pathlib import Path

from harness import control
from harness.errors import HalabError
from harness.measure import Outcome, analyse
from harness.probe import Request
from harness.web.feed import probe_line

#: The probe waits 1 s for a reply; a loss is in its log that much later (and a little more).
KNOWN_AFTER_S = 1.25
#: The service must have answered this long, before the fault and after the mending.
SETTLE_S = 0.5
MEND_TIMEOUT_S = 30.0
#: How much of the probe's log before the fault is read: a few seconds even at 1000 requests/s.
HISTORY_BYTES = 128 * 1024
#: Who answered before the fault: the requests of this many seconds before it.
BEFORE_S = 2.0


@dataclass(frozen=True)
class LiveOutcome(Outcome):
    """The outcome, and what else a lesson's check holds it to."""

    answered_before: tuple[str, ...] = ()  # the servers that answered in the BEFORE_S before the fault
    answered_after: tuple[str, ...] = ()   # who answered after it, in order, once per run of answers:
    #                                        two servers taking turns is a split brain the client saw
    seen: tuple[Request, ...] = ()         # every request of the window, for a timeline of a failed check
    holders_after: tuple[str, ...] = ()    # who claimed the VIP once it was over (before the mending)
    diagnosis: str = ""                    # `halab diagnose` before the mending, when the service never came back
    reasons: tuple[str, ...] = ()          # the agents' reasons for what they did after the fault

    @classmethod
    def of(cls, plain: Outcome, **more: object) -> LiveOutcome:
        return cls(**{f.name: getattr(plain, f.name) for f in fields(Outcome)}, **more)  # type: ignore[arg-type]


def ask(socket: Path, argv: list[str], timeout: float = 60.0) -> str:
    rc, out = control.request(socket, argv, timeout=timeout)
    if rc != 0:
        problem, _, fix = out.partition("\nFix: ")
        raise HalabError(f"`halab {' '.join(argv)}` failed on the lab: {problem}", fix or "See `halab status`.")
    return out


def status(socket: Path) -> dict:
    return json.loads(ask(socket, ["status", "--json"]))


def probe_log(socket: Path) -> Path:
    """The running probe's log, starting the probe if it is not running."""
    if not status(socket)["probe"]["running"]:
        ask(socket, ["probe", "start"])
    return Path(status(socket)["probe"]["log"])


def measure(socket: Path, fault: str, watch_s: float, whole: bool = False, expect: str | None = None) -> LiveOutcome:
    """Apply `fault` (as typed at the prompt: "link-cut server1") once the service has answered for
    SETTLE_S, watch the probe until it has answered for SETTLE_S again (with `expect`: answered by
    that server; a partition leaves the old server answering for a while) or `watch_s` passed
    (`whole`: all of watch_s, where a quiet spell proves nothing: a spread service, or a fault that
    must change nothing), then mend everything (`fault restore`, even if the watching failed) and
    wait until the VIP is back where it was and answering. What the probe saw (its outage None: it
    had not ended)."""
    log = probe_log(socket)
    holders = status(socket)["vip"]["claimed_by"]
    offset = max(0, log.stat().st_size - HISTORY_BYTES)  # the seconds before too: it must answer then
    _wait(lambda: _settled(_since(log, offset), after=0.0), "The lab's service was not answering before the fault.")
    at = time.monotonic()
    try:
        ask(socket, ["fault", *shlex.split(fault)])
        requests = _since(log, offset)
        while time.monotonic() < at + watch_s and (whole or not _settled(requests, after=at, by=expect)):
            time.sleep(0.1)
            requests = _since(log, offset)
        end = (at + watch_s if whole else at) + KNOWN_AFTER_S
        time.sleep(max(0.0, end - time.monotonic()))  # every loss of the window is logged
        requests = [r for r in _since(log, offset) if not whole or r.sent < at + watch_s]
        plain = analyse(requests, at)
        before = {r.server for r in requests if r.server is not None and at - BEFORE_S <= r.sent < at}
        answered = [r.server for r in requests if r.server is not None and r.sent >= at]
        outcome = LiveOutcome.of(plain, answered_before=tuple(sorted(before)),
                                 answered_after=tuple(server for server, _ in groupby(answered)),
                                 seen=tuple(requests), holders_after=tuple(status(socket)["vip"]["claimed_by"]),
                                 diagnosis=diagnosis(socket) if plain.outage is None else "")
    finally:
        ask(socket, ["fault", "restore"])
    mended = time.monotonic()
    _wait(lambda: status(socket)["vip"]["claimed_by"] == holders and _settled(_since(log, offset), after=mended),
          f"The lab did not answer again within {MEND_TIMEOUT_S:g} s of `fault restore`.")
    return outcome


def diagnosis(socket: Path) -> str:
    """What `halab diagnose` finds on the lab now ("" for nothing, or if it cannot say)."""
    try:
        found = ask(socket, ["diagnose"])
    except HalabError:
        return ""
    return "" if found.startswith("Nothing wrong found") else found


def recent(socket: Path, seconds: float) -> list[Request]:
    """The probe's requests of the last `seconds` whose fate is known by now (starting the probe,
    and waiting until it has run that long, if it was not running)."""
    log = probe_log(socket)
    offset = max(0, log.stat().st_size - HISTORY_BYTES)
    deadline = time.monotonic() + seconds + KNOWN_AFTER_S + MEND_TIMEOUT_S
    while True:
        requests = _since(log, offset)
        end = time.monotonic() - KNOWN_AFTER_S
        if requests and requests[0].sent <= end - seconds:
            return [r for r in requests if end - seconds <= r.sent < end]
        if time.monotonic() > deadline:
            raise HalabError(f"The lab's probe has not logged {seconds:g} s of requests.", "See `halab status`.")
        time.sleep(0.1)


def _wait(done, problem: str) -> None:
    deadline = time.monotonic() + MEND_TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise HalabError(problem, "See `halab status`; `halab lesson reset` (or `halab down`, `halab up`) begins "
                                      "afresh.")
        time.sleep(0.1)


def _since(log: Path, offset: int) -> list[Request]:
    """The requests logged from `offset` on (a line cut by the offset is left out)."""
    with log.open() as f:
        f.seek(offset)
        lines = f.read().splitlines()
    parsed = [p for p in map(probe_line, lines[1:] if offset else lines) if p is not None]
    return [Request(i, sent, sent if server else None, server) for i, (sent, server) in enumerate(parsed)]


def _settled(requests: list[Request], after: float, by: str | None = None) -> bool:
    """The requests of the last SETTLE_S whose fate is known by now, all sent after `after`, were
    all answered (by `by`, if given), and there were some."""
    end = time.monotonic() - KNOWN_AFTER_S
    known = [r for r in requests if end - SETTLE_S <= r.sent < end]
    return (end - SETTLE_S > after and bool(known) and all(r.ok for r in known)
            and (by is None or all(r.server == by for r in known)))
