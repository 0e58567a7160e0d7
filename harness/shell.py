"""The prompt of a running lab: Mininet's own CLI (`server1 ip addr`, `pingall`, `xterm` ...) plus halab's verbs.

    halab> fault link-cut server1          halab> vip
    halab> watch                           (a live strip of who answers the probe; Ctrl-C ends it)

History persists in ~/.halab_history; Tab completes verbs, fault kinds, host and program names.
"""

from __future__ import annotations

import atexit
import os
import shlex
import subprocess
import sys
import time
from collections import Counter, deque

from mininet.cli import CLI
from mininet.log import output, setLogLevel
from rich.console import Console
from rich.live import Live
from rich.text import Text

from harness import verbgrammar, verbs
from harness.livelab import LiveLab
from harness.web.feed import Tail, probe_line

HISTORY = os.path.expanduser("~/.halab_history")
STRIP = 60  # requests shown in the live strip
COLOURS = ("green", "cyan", "magenta", "yellow", "blue", "bright_green", "bright_cyan", "bright_magenta")
HELP = """halab's verbs (see also `help fault`):
  fault link-cut|crash|partition|loss|flap|kill|term|stop|cont|restore|heal ...   break something, or mend it
  vip [--json]           who holds the VIP and who answers it
  status [--json]        every agent and its state, and the standing faults
  diagnose [--json]      why it did not fail over: configurations, counters, clients' ARP, the pool
  probe start|stop       the probe `watch` follows
  watch [SECONDS]        a live strip of who answers the probe (Ctrl-C ends it)
  capture HOST [SWITCH]  tcpdump a link to a pcap in the run directory; `capture stop`
  down                   tear the lab down and leave
  exit                   leave the prompt ({exit})
"""


class LabCLI(CLI):
    prompt = "halab> "

    def __init__(self, live: LiveLab, detached: bool = False, stdin=sys.stdin) -> None:
        self.live = live
        self.detached = detached
        self.down = False
        setLogLevel("output")  # the lab starts quiet (warnings only); the prompt shows command output
        super().__init__(live.lab.net, stdin=stdin)  # runs the loop until exit or down

    @classmethod
    def initReadline(cls) -> None:  # noqa: N802 (Mininet's name)
        """halab's own history file (Mininet's reads ~/.mininet_history)."""
        if cls.readlineInited:
            return
        cls.readlineInited = True
        try:
            import readline
        except ImportError:
            return
        if os.path.isfile(HISTORY):
            readline.read_history_file(HISTORY)
        readline.set_history_length(1000)
        atexit.register(lambda: _write_history(readline))

    # --- halab's verbs ------------------------------------------------------------------

    def _verb(self, verb: str, line: str) -> None:
        try:
            argv = [verb, *shlex.split(line)]
        except ValueError as exc:
            output(f"{verb}: {exc}\n")
            return
        _rc, text = verbs.execute(self.live, argv)
        output(text + "\n")

    def do_fault(self, line: str) -> None:
        """Break something, or mend it: `fault --help`."""
        self._verb("fault", line)

    def do_vip(self, line: str) -> None:
        """Who holds the VIP (has the address) and who answers it from the probe's host."""
        self._verb("vip", line)

    def do_status(self, line: str) -> None:
        """Every agent, its state, and the faults standing now (`--json` for a program)."""
        self._verb("status", line)

    def do_probe(self, line: str) -> None:
        """probe start|stop: the probe that `watch` follows."""
        self._verb("probe", line)

    def do_diagnose(self, line: str) -> None:
        """diagnose [--json]: why it did not fail over (configurations, counters, ARP, the pool)"""
        self._verb("diagnose", line)

    def do_capture(self, line: str) -> None:
        """capture HOST [SWITCH]: tcpdump that link to a pcap file; `capture stop` ends every capture."""
        self._verb("capture", line)

    def do_watch(self, line: str) -> None:
        """watch [SECONDS]: who answers the probe, live, until Ctrl-C (or SECONDS)."""
        try:
            seconds = float(line) if line.strip() else None
        except ValueError:
            output(f"watch: {line.strip()!r} is not a number of seconds\n")
            return
        watch(self.live, seconds)

    def do_down(self, _line: str) -> bool:
        """Tear the lab down and leave."""
        self.down = True
        return True

    def do_exit(self, _line: str) -> bool | None:
        """Leave the prompt: a foreground lab is torn down; a background one keeps running."""
        if not self.detached:
            return True
        subprocess.run(["tmux", "-L", "halab", "detach-client", "-s", "lab"], capture_output=True, check=False)
        output("The lab keeps running in the background: `halab cli` comes back here, `halab down` stops it.\n")
        return None

    def do_help(self, line: str) -> None:
        if line.strip() in verbgrammar.VERBS:
            self._verb(line.strip(), "--help")
            return
        super().do_help(line)
        if not line.strip():
            left = "the lab keeps running" if self.detached else "the lab is torn down"
            output(HELP.replace("{exit}", left))

    # --- completion ---------------------------------------------------------------------

    def completenames(self, text: str, *ignored: object) -> list[str]:
        names = super().completenames(text, *ignored) + list(self.live.topo.roles) + list(self.live.topo.switches())
        return sorted({n for n in names if n.startswith(text)})

    def complete_fault(self, text: str, line: str, *_: object) -> list[str]:
        words = line.split()
        position = len(words) - (0 if line.endswith(" ") else 1)
        if position == 1:
            choices = verbgrammar.FAULTS
        elif position == 3 and words[1] in ("kill", "term", "stop", "cont"):
            choices = tuple(sorted({d.program for d in self.live.daemons if d.host == words[2]}))
        else:
            choices = (*self.live.topo.roles, *self.live.topo.switches())
        return [c for c in choices if c.startswith(text)]

    def complete_capture(self, text: str, *_: object) -> list[str]:
        return [h for h in (*self.live.topo.roles, "stop") if h.startswith(text)]

    def complete_probe(self, text: str, *_: object) -> list[str]:
        return [c for c in ("start", "stop") if c.startswith(text)]


def _write_history(readline) -> None:
    try:
        readline.write_history_file(HISTORY)
    except OSError:
        pass


def watch(live: LiveLab, seconds: float | None = None, console: Console | None = None) -> Counter:
    """Follow the probe: a strip of the latest answers (one cell per request, a colour per server,
    `.` for none), counters, and who answers now; starts the probe if it is not running."""
    console = console or Console(highlight=False)
    if live.probe is None or not live.probe.alive():
        live.start_probe()
    assert live.probe is not None
    tail = Tail(live.probe.log_path, from_end=True)
    recent: deque[str] = deque(maxlen=STRIP)
    counts: Counter = Counter()
    colours: dict[str, str] = {}
    end = time.monotonic() + seconds if seconds else None
    try:
        with Live(console=console, refresh_per_second=10, transient=False) as view:
            while end is None or time.monotonic() < end:
                for parsed in filter(None, map(probe_line, tail.lines())):
                    server = parsed[1] or "-"
                    recent.append(server)
                    counts[server] += 1
                view.update(_strip(recent, counts, colours, live))
                time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    return counts


def _strip(recent: deque[str], counts: Counter, colours: dict[str, str], live: LiveLab) -> Text:
    text = Text(f"{live.probe_target()} from {live.spec.probe.source} ({live.spec.probe.proto}): ")
    for server in recent:
        if server == "-":
            text.append(".", style="bold red")
        else:
            colour = colours.setdefault(server, COLOURS[len(colours) % len(COLOURS)])
            text.append("#", style=colour)
    now = recent[-1] if recent else None
    text.append(f"\nnow: {'nobody' if now in (None, '-') else now}   ")
    for server, n in sorted(counts.items()):
        label = "lost" if server == "-" else server
        text.append(f"{label} {n}  ", style="bold red" if server == "-" else colours.get(server, ""))
    text.append("  (Ctrl-C to stop)")
    return text
