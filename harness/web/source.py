"""The running lab as the live view follows it: its status through the control socket (twice a
second), its probe's answers and its agents' event logs through their files (twenty times a
second), turned into messages for every open page by a Hub that never waits for a slow one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from pathlib import Path

from harness import control, verbgrammar
from harness.errors import HalabError
from harness.labinfo import running
from harness.web import topology
from harness.web.feed import Strip, Tail, event_line, probe_line

TICK_S = 0.05                # the files are read twenty times a second
STATUS_EVERY_S = 0.5         # the status twice a second
RECENT_EVENTS = 200          # what a page that opens now is shown of the feed
MAX_PAGES = 16               # open pages at once; more are refused
QUEUE = 400                  # messages waiting for one page; a page this far behind is dropped
STATUS_TIMEOUT_S = 5.0
FAULT_TIMEOUT_S = 60.0


class Hub:
    """Every open page's queue; a page that falls behind is closed, not waited for."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue] = set()

    def full(self) -> bool:
        return len(self.queues) >= MAX_PAGES

    def subscribe(self) -> asyncio.Queue | None:
        if self.full():
            return None
        q: asyncio.Queue = asyncio.Queue(QUEUE)
        self.queues.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.queues.discard(q)

    def publish(self, message: dict) -> None:
        for q in list(self.queues):
            try:
                q.put_nowait(message)
            except asyncio.QueueFull:  # end its stream (None); EventSource reconnects by itself
                self.queues.discard(q)
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(None)


class LabSource:
    """Follows one lab (its descriptor, as `halab ls` reads it) until it goes away."""

    def __init__(self, descriptor: dict) -> None:
        self.socket = Path(descriptor["socket"])
        self.topology = descriptor["topology"]
        self.event_tails = [(Tail(Path(e["path"])), e["host"]) for e in descriptor.get("event_logs", [])]
        self.probe_tail: Tail | None = None
        self.strip: Strip | None = None
        self.status: dict | None = None
        self.events: deque[dict] = deque(maxlen=RECENT_EVENTS)
        self.hub = Hub()
        self.gone = asyncio.Event()
        self.why: str | None = None

    # --- what a page gets when it opens ---------------------------------------------------

    def snapshot(self) -> list[dict]:
        """The page starts over ("hello"), then gets the status, the recent events and the strip."""
        out: list[dict] = [{"type": "hello"}]
        out += [{"type": "status", **self.status}] if self.status else []
        out += [{"type": "event", **e, "replay": True} for e in self.events]
        if self.strip is not None:
            out.append({"type": "probe", **self.strip.replay(time.monotonic())})
        return out

    # --- following the lab --------------------------------------------------------------

    async def run(self) -> None:
        """Until the lab is gone (then `gone` is set, and the server stops with it). A lab busy
        with a long verb answers its status late: the files are followed meanwhile."""
        try:
            await self._poll_status(start_probe=True)
            poll = asyncio.create_task(self._poll_forever())
            while not self.gone.is_set():
                self._read_events()
                self._read_probe()
                await asyncio.wait({poll}, timeout=TICK_S)
                if poll.done():
                    poll.result()  # its error, if it failed
        except Exception as exc:  # a bug of ours: the pages say so, and the view ends instead of freezing
            self.close(f"the live view failed ({type(exc).__name__}: {exc}); see its output")
            raise

    async def _poll_forever(self) -> None:
        while not self.gone.is_set():
            await asyncio.sleep(STATUS_EVERY_S)
            await self._poll_status()

    def close(self, why: str) -> None:
        """Tell every page why the view ends; their streams end with it."""
        if not self.gone.is_set():
            self.why = why
            self.gone.set()
            self.hub.publish({"type": "gone", "why": why})

    async def _poll_status(self, start_probe: bool = False) -> None:
        """The lab's status, to every page; `start_probe`: the strip needs the probe, as `watch` does."""
        try:
            rc, out = await asyncio.to_thread(control.request, self.socket, ["status", "--json"], STATUS_TIMEOUT_S)
            if rc == 0 and start_probe and not json.loads(out)["probe"]["running"]:
                await asyncio.to_thread(control.request, self.socket, ["probe", "start"], STATUS_TIMEOUT_S)
                rc, out = await asyncio.to_thread(control.request, self.socket, ["status", "--json"],
                                                  STATUS_TIMEOUT_S)
        except (HalabError, OSError):
            if running() is None:
                self.close("the lab is down")
            return  # busy: the next poll will tell
        if rc != 0:
            return
        status = json.loads(out)
        links = [(link["a"], link["b"]) for link in status["links"]]
        status["layout"] = topology.layout(status["hosts"], links)
        self.status = status
        self.hub.publish({"type": "status", **status})
        log, rate = status["probe"]["log"], status["probe"]["rate"]
        if status["probe"]["running"] and log and (self.probe_tail is None or self.probe_tail.path != Path(log)):
            self.probe_tail, self.strip = Tail(Path(log)), Strip(rate)

    def _read_events(self) -> None:
        for tail, host in self.event_tails:
            for line in tail.lines():
                event = event_line(line, host)
                if event is not None:
                    self.events.append(event)
                    self.hub.publish({"type": "event", **event})

    def _read_probe(self) -> None:
        if self.probe_tail is None or self.strip is None:
            return
        for line in self.probe_tail.lines():
            parsed = probe_line(line)
            if parsed is not None:
                self.strip.add(*parsed)
        self.hub.publish({"type": "probe", **self.strip.frame(time.monotonic())})

    # --- changing it --------------------------------------------------------------------

    async def fault(self, argv: list[str]) -> tuple[int, str]:
        """A fault from the page, checked as the prompt checks it, then sent to the lab. Only the
        quick kinds: a long flap would hold the lab's control socket (and the page) for minutes."""
        if argv[:1] != ["fault"] or argv[1:2] == ["flap"]:
            return 2, "Only `fault ...` verbs (but flap) may be sent from the page."
        try:
            verbgrammar.parser().parse_args(argv)
        except (verbgrammar.VerbError, verbgrammar.VerbHelp) as exc:
            return 2, str(exc).strip()
        try:
            return await self._send(argv)
        except HalabError as exc:
            return 2, f"{exc.problem} {exc.fix}"

    async def _send(self, argv: list[str]) -> tuple[int, str]:
        return await asyncio.to_thread(control.request, self.socket, argv, FAULT_TIMEOUT_S)
