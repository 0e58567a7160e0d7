"""What every halab agent shares: its loop, its signals, its status file, its event log and its
command line. An agent says what it waits for and what it does when woken; this module wakes it.

    halab-vrrp --config FILE        run          (the same for halab-heartbeat)
    halab-vrrp --check --config FILE             validate, print nothing else, exit 0 or 2
    halab-vrrp status [--json] [--all]           the agents in this network namespace (or all)

Exit codes: 0 done, 1 `status` found no agent, 2 the configuration or the set-up was refused,
3 the agent stopped on an unexpected error (after its shutdown: addresses released, goodbye
sent, status file removed).
"""

from __future__ import annotations

import argparse
import json
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from ha import realtime, statusfile
from ha.configcheck import ConfigError
from ha.eventlog import EventLog

STATUS_EVERY_S = 0.5
#: Packets an agent reads from one socket per wake-up: a flood must not starve its timers.
RECEIVE_BATCH = 64
EXIT_OK, EXIT_NO_AGENT, EXIT_REFUSED, EXIT_CRASHED = 0, 1, 2, 3


class Agent:
    """The skeleton of an agent's life: set up, loop until SIGTERM or SIGINT, shut down.

    Subclasses name their `kind` and `source`, register what they read with `watch`, and fill
    in `deadlines` (when they must be woken next), `ready` (something they watch is readable)
    and `tick` (timers, run after every wake-up). `shutdown` always runs, however `run` ends.
    """

    kind: ClassVar[str]  # status files live under <state root>/<kind>/
    source: ClassVar[str]  # the program's name in its event log

    def __init__(self, event_log: Path | None) -> None:
        self.events = EventLog(event_log, self.source)
        self.status_path = statusfile.own_path(self.kind)
        self.stopping = False
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, self._wake_r)

    def watch(self, fileobj: Any, data: object) -> None:
        self._sel.register(fileobj, selectors.EVENT_READ, data)

    def unwatch(self, fileobj: Any) -> None:
        self._sel.unregister(fileobj)

    def wake(self) -> None:
        """Wake the loop now (safe from any thread): a worker has a result."""
        try:
            self._wake_w.send(b"w")
        except OSError:
            pass  # the buffer is full: the loop is awake already

    # --- what subclasses fill in -------------------------------------------------------------

    def start(self, now: float) -> None:
        """First actions, once signals are caught."""

    def deadlines(self) -> Iterable[float]:
        return ()

    def ready(self, data: object, now: float) -> None:
        """Something registered with `data` is readable."""

    def tick(self, now: float) -> None:
        """After every wake-up: fire what is due."""

    def status(self) -> dict:
        return {}

    def shutdown(self, now: float) -> None:
        """Leave cleanly; must not raise (it runs after an error too)."""

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        signal.set_wakeup_fd(self._wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        code = EXIT_OK
        try:
            self.start(time.monotonic())
            status_due = time.monotonic()
            while not self.stopping:
                now = time.monotonic()
                timeout = max(0.0, min([*self.deadlines(), status_due]) - now)
                # A select cut short by a stop (SIGSTOP, a paused VM) returns nothing once its
                # timeout has passed, even with data waiting: look again, so that what came in
                # meanwhile is read before the timers fire.
                for key, _ in self._sel.select(timeout) or self._sel.select(0):
                    if key.data is self._wake_r:
                        self._drain_wake()
                    else:
                        self.ready(key.data, time.monotonic())
                now = time.monotonic()
                self.tick(now)
                if now >= status_due:
                    self.write_status()
                    status_due = now + STATUS_EVERY_S
        except Exception:  # an agent that dies must still let go of what it holds
            print(f"{self.source}: stopped on an unexpected error:\n{traceback.format_exc()}", file=sys.stderr,
                  flush=True)
            code = EXIT_CRASHED
        finally:
            self.shutdown(time.monotonic())
            self.status_path.unlink(missing_ok=True)
        return code

    def write_status(self) -> None:
        """Best effort: an unwritable status directory costs the status command, not the agent."""
        try:
            statusfile.write(self.status_path, self.status())
        except OSError:
            pass

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except BlockingIOError:
            pass


# --- the command line ----------------------------------------------------------------------------


def main(argv: list[str] | None, prog: str, description: str, kind: str, load: Callable[[Path], object],
         make: Callable[[Any], Agent], show: Callable[[list[dict]], None]) -> int:
    """Parse the command line and run the agent, check its configuration, or show the status."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", nargs="?", choices=["run", "status"], default="run")
    parser.add_argument("--config", type=Path, help="the agent's TOML file")
    parser.add_argument("--check", action="store_true", help="check the configuration and exit (0: valid, 2: not)")
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    parser.add_argument("--all", action="store_true", help="status: agents of every host, not only this one")
    args = parser.parse_args(argv)
    if args.command == "status":
        return _status(prog, kind, args.json, args.all, show)
    if args.config is None:
        parser.error("--config FILE is required")
    try:
        config = load(args.config)
        if args.check:
            print(f"{prog}: {args.config} is valid")
            return EXIT_OK
        agent = make(config)
    except ConfigError as exc:
        return refuse(prog, str(exc))
    except PermissionError:
        return refuse(prog, "raw sockets and address changes need root; run it as root (in a lab host, halab does)")
    except OSError as exc:
        return refuse(prog, f"cannot set up its sockets and interfaces ({exc.strerror or exc}); check that "
                            "the configured interfaces exist")
    realtime.apply(config.realtime_priority, prog)
    print(f"{prog}: running", flush=True)
    return agent.run()


def refuse(prog: str, message: str) -> int:
    """One line on stderr, exit 2: what the user must fix."""
    print(f"{prog}: {message}", file=sys.stderr)
    return EXIT_REFUSED


def _status(prog: str, kind: str, as_json: bool, all_hosts: bool, show: Callable[[list[dict]], None]) -> int:
    statuses = statusfile.read(kind, all_hosts)
    if as_json:
        print(json.dumps(statuses, indent=1))
    elif statuses:
        show(statuses)
    if not statuses:
        where = "" if all_hosts else " in this network namespace"
        print(f"{prog}: no agent is running{where}", file=sys.stderr)
        return EXIT_NO_AGENT
    return EXIT_OK
