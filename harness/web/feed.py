"""What the live view shows, computed from what the lab writes: the probe's answers and the
agents' state changes, turned into small frames for the page. Pure logic (no sockets, no lab):
the page gets ~20 frames a second whatever the probe's rate, each with only what is new.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

#: The strip on the page spans this many seconds of requests.
STRIP_S = 15.0
#: Requests per second and shares are counted over this last stretch.
RATE_WINDOW_S = 1.0
#: At most this many bytes of a file are read per look (a log that grew by more is read on the next).
MAX_READ = 1 << 20


class Tail:
    """The complete lines a growing file gained since the last look (a partial last line waits).
    A file that shrank was replaced (a log rotated): it is read again from its start."""

    def __init__(self, path: Path, from_end: bool = False) -> None:
        self.path = path
        self.offset = 0
        if from_end:
            try:
                self.offset = path.stat().st_size
            except OSError:
                pass

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, 2)
                if size < self.offset:
                    self.offset = 0
                f.seek(self.offset)
                data = f.read(MAX_READ)
        except OSError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete.decode(errors="replace").splitlines()


def probe_line(line: str) -> tuple[float, str | None] | None:
    """One line of `probe client --live`: (sent, server), server None when nobody answered."""
    parts = line.split()
    if len(parts) != 2:
        return None
    try:
        sent = float(parts[0])
    except ValueError:
        return None
    return sent, None if parts[1] == "-" else parts[1]


@dataclass
class Strip:
    """The probe's recent requests and the outage the client sees. Answers arrive at once, losses
    only when their timeout runs out, so the outage is told from the answers: it is running while
    no request sent in the last few gaps (`quiet_s`) has been answered, and it lasted, once over,
    from the last answer before to the first after."""

    rate: float
    window_s: float = STRIP_S
    marks: deque[tuple[float, str | None]] = field(default_factory=deque)
    new: list[tuple[float, str | None]] = field(default_factory=list)
    lost: int = 0
    answered: Counter = field(default_factory=Counter)
    last_answer: float | None = None      # when the latest answered request was sent
    last_outage_s: float | None = None

    @property
    def quiet_s(self) -> float:
        return max(3.0 / self.rate, 0.1)

    def add(self, sent: float, server: str | None) -> None:
        self.marks.append((sent, server))
        self.new.append((sent, server))
        if server is None:
            self.lost += 1
            return
        self.answered[server] += 1
        if self.last_answer is None or sent > self.last_answer:
            if self.last_answer is not None and sent - self.last_answer > self.quiet_s:
                self.last_outage_s = sent - self.last_answer
            self.last_answer = sent

    def frame(self, now: float) -> dict:
        """What changed since the last frame, and the counters as they stand at `now` (monotonic)."""
        while self.marks and self.marks[0][0] < now - self.window_s:
            self.marks.popleft()
        frame = {**self.counters(now), "marks": [[round(t, 4), s] for t, s in self.new]}
        self.new = []
        return frame

    def replay(self, now: float) -> dict:
        """Everything on the strip, for a page that opens now (the frames of the others go on)."""
        return {**self.counters(now), "marks": [[round(t, 4), s] for t, s in self.marks], "replay": True}

    def counters(self, now: float) -> dict:
        # A request's fate is known within its timeout (1 s): rates count the second before that.
        recent = Counter(s for t, s in self.marks if now - 1.0 - RATE_WINDOW_S <= t < now - 1.0 and s is not None)
        answered = sum(recent.values())
        silent = None if self.last_answer is None else now - self.last_answer
        return {"now": now, "lost": self.lost, "answered": dict(self.answered),
                "rates": {s: n / RATE_WINDOW_S for s, n in recent.items()},
                "shares": {s: n / answered for s, n in recent.items()},
                "outage_s": silent if silent is not None and silent > self.quiet_s else None,
                "last_outage_s": self.last_outage_s}


def event_line(line: str, host: str) -> dict | None:
    """One record of an agent's event log (ha.eventlog) as the page shows it; None if it is not one."""
    try:
        r = json.loads(line)
        return {"wall": float(r["wall"]), "host": host, "source": str(r["source"]), "subject": str(r["subject"]),
                "from": r.get("from"), "to": str(r["to"]), "reason": str(r["reason"])}
    except (ValueError, KeyError, TypeError):
        return None
