"""What every scenario shares: its registration, the probe options and the probe run, and how a
run becomes a record (analysed, written to result.json, plotted)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness import preflight, probe, runpage
from harness.about import tool_versions
from harness.errors import HalabError
from harness.events import Event
from harness.faults import FaultEvent
from harness.lab import Lab, start_thread
from harness.measure import analyse
from harness.probe import MAX_RATE, MIN_RATE, Request
from harness.report import RunRecord, plot_timeline, write_json

Progress = Callable[[str], None]
#: The longest probe before or after a fault (an hour): its timeline stays in memory.
PROBE_MAX_S = 3600.0
#: How to undo a fault (for --for), or None where nothing can (a crash, a kill).
Undo = Callable[[], object] | None


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    options: type  # a dataclass: each field is an option of `halab run NAME`
    run: Callable[[Any, Path, Progress], RunRecord]
    #: The nodes of its lab with these options, which --place may name (a scenario whose
    #: options have `servers`).
    nodes: Callable[[Any], list[str]] = lambda _opts: []


def option(default: object, help: str, choices: tuple | None = None, cli: bool = True, flag: str | None = None) -> Any:
    """A scenario option: its default, its help line, its choices; `cli=False` keeps it off the command line;
    `flag` names it there when its field name cannot (`--for`)."""
    return field(default=default, metadata={"help": help, "choices": choices, "cli": cli, "flag": flag})


@dataclass(frozen=True)
class ProbeOptions:
    """The probe every scenario runs: rate, protocol, seconds around the fault."""

    rate: float = option(100.0, f"probe requests per second ({MIN_RATE:g} to {MAX_RATE:g})")
    proto: str = option("udp", "probe protocol", choices=("udp", "tcp"))
    before: float = option(2.0, "seconds of probing before the fault")
    after: float | None = option(None, "seconds of probing after the fault (default: enough to see the takeover)")
    lasting: float | None = option(None, "heal the fault after this many seconds (default: it stays)", flag="--for")

    def __post_init__(self) -> None:
        if not MIN_RATE <= self.rate <= MAX_RATE:
            raise HalabError(f"Probe rate {self.rate:g}/s is out of range.",
                             f"Choose {MIN_RATE:g} to {MAX_RATE:g} requests per second.")
        if self.proto not in ("udp", "tcp"):
            raise HalabError(f"Unknown probe protocol {self.proto!r}.", "Choose udp or tcp.")
        for flag, value in (("--before", self.before), ("--after", self.after)):
            if value is not None and not 0.5 <= value <= PROBE_MAX_S:  # NaN fails this too
                raise HalabError(f"{flag} {value:g} is out of range: the probe needs 0.5 s to {PROBE_MAX_S:g} s "
                                 "before and after the fault.", f"Choose {flag} from 0.5 to {PROBE_MAX_S:g}.")
        if self.lasting is not None and not 0 < self.lasting <= 600:
            raise HalabError(f"--for {self.lasting:g} is out of range.", "Choose more than 0 and at most 600 s.")
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise HalabError(f"Unknown {f.name.replace('_', ' ')} {getattr(self, f.name)!r}.",
                                 f"Choose one of: {', '.join(map(str, choices))}.")


class ProbeRun:
    """The probe client on a host, sending to `target` for `duration` seconds from its start."""

    def __init__(self, lab: Lab, host: str, target: str, opts: ProbeOptions, duration: float) -> None:
        self.out = lab.run_dir / "probe.json"
        self.duration = duration
        self.clock = lab.clock_of(host)   # it stamps on its machine's clock
        self.proc = lab.spawn(host, "probe", probe.command(
            "client", "--target", target, "--port", str(probe.PORT), "--proto", opts.proto,
            "--rate", f"{opts.rate:g}", "--duration", f"{duration:g}", "--out", str(self.out)))
        self.proc.wait_for("sending", timeout=15)

    def requests(self) -> list[Request]:
        """Wait until the client is done; every request it sent, on this machine's clock."""
        self.proc.popen.wait(timeout=self.duration + 30)
        sent = [Request(**r) for r in json.loads(self.out.read_text())["requests"]]
        return [replace(r, sent=self.clock.here(r.sent),
                        replied=None if r.replied is None else self.clock.here(r.replied)) for r in sent]


def record(name: str, opts: object, fault: FaultEvent, requests: list[Request], events: list[Event],
           run_dir: Path, database: dict | None = None, sync: dict | None = None, load: dict | None = None,
           adverts: list[dict] | None = None,
           **more_options: object) -> RunRecord:
    """The run's record, written to result.json, timeline.png and report.html; `database`: what the
    write checker found (a scenario with a database tier); `sync`: what content sync did; `load`:
    the latency-vs-load sweep before the fault."""
    fault_wall = time.time() - (time.monotonic() - fault.at)
    about = {"versions": tool_versions(), "datapath": preflight.ovs_datapath(),
             "fault_wall": fault_wall, "fault_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fault_wall))}
    rec = RunRecord(name, {**asdict(opts), **more_options}, fault, analyse(requests, fault.at),
                    sorted(events, key=lambda e: e.at), requests, run_dir, about=about, database=database,
                    sync=sync, load=load, adverts=adverts)
    write_json(rec)
    plot_timeline(rec)
    try:
        runpage.write(run_dir)
    except Exception as exc:  # the run itself is complete in result.json: a page's bug must not lose it
        print(f"halab: report.html was not written ({type(exc).__name__}: {exc}); `halab report {run_dir}` "
              "retries it.", file=sys.stderr)
    return rec


# --- the command line, generated from the options dataclasses ------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, options: type) -> None:
    hints = typing.get_type_hints(options)
    for f in fields(options):
        if not f.metadata.get("cli", True):
            continue
        kind = next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        default = None if f.default is MISSING else f.default
        shown = "" if default is None else f" (default: {default})"
        flag = f.metadata.get("flag") or f"--{f.name.replace('_', '-')}"
        if kind is bool:  # --strict / --no-strict
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                help=f.metadata.get("help", ""))
            continue
        parser.add_argument(flag, dest=f.name, type=kind, default=default,
                            choices=f.metadata.get("choices"), help=f.metadata.get("help", "") + shown)


def refuse_lasting(opts: ProbeOptions, fault: str, faults: tuple[str, ...], lasting_not: tuple[str, ...]) -> None:
    """--for on a fault that nothing undoes (a crash, a kill) is a mistake: say which ones take it."""
    if opts.lasting is not None and fault in lasting_not:
        raise HalabError(f"--for does not apply to --fault {fault}: nothing undoes it.",
                         f"Leave --for out, or choose one of: {', '.join(f for f in faults if f not in lasting_not)}.")


def heal_later(opts: ProbeOptions, undo: Undo) -> threading.Timer | None:
    """With --for, undo the fault that many seconds from now, while the probe goes on."""
    if opts.lasting is None or undo is None:
        return None
    timer = threading.Timer(opts.lasting, undo)
    timer.daemon = True
    return start_thread(timer)


def probe_after(opts: ProbeOptions, recovery: float) -> float:
    """Seconds of probing after the fault: --after, or `recovery` (plus the fault's --for and the
    same again to see the lab recover from the heal)."""
    if opts.after is not None:
        return opts.after
    return recovery + (opts.lasting + recovery if opts.lasting is not None else 0.0)


def options_from(args: argparse.Namespace, options: type) -> Any:
    return options(**{f.name: getattr(args, f.name) for f in fields(options) if f.metadata.get("cli", True)})
