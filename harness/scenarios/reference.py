"""The production classic, lab file labs/reference.toml: lb1 and lb2 run HAProxy in front of the
web servers and keepalived (or halab's VRRP agent) moves the VIP between them; one fault on the
node that holds the VIP, or on a web server."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness import labfile
from harness.faults import FaultEvent, Faults
from harness.livelab import LiveLab
from harness.report import RunRecord
from harness.scenarios.common import (
    ProbeOptions,
    ProbeRun,
    Progress,
    Scenario,
    Undo,
    heal_later,
    option,
    probe_after,
    record,
    refuse_lasting,
)
from harness.servers import ServerPlan

FAULTS = ("lb-crash", "lb-link-cut", "web-crash", "haproxy-kill")
LASTING_NOT = ("lb-crash", "web-crash", "haproxy-kill")
WEB = "web1"


@dataclass(frozen=True)
class ReferenceOptions(ProbeOptions):
    proto: str = option("tcp", "probe protocol (HAProxy balances TCP)", choices=("tcp",))
    fault: str = option("lb-crash", f"what fails: the VIP's node (lb-*, haproxy-kill) or {WEB}", choices=FAULTS)
    agent: str = option("keepalived", "the VRRP daemon on lb1 and lb2", choices=("keepalived", "halab"))
    web_servers: int = option(2, "how many web servers behind HAProxy")
    #: The machines the lab spreads over (harness.servers; `--servers` and `--place` on the command line).
    servers: ServerPlan | None = option(None, "", cli=False)  # noqa: RUF009 (option() is a field(); None)

    def __post_init__(self) -> None:
        super().__post_init__()
        refuse_lasting(self, self.fault, FAULTS, LASTING_NOT)

    @property
    def probe_after(self) -> float:
        """VRRP's detection (3 adverts + skew at 1 s), the track script's second, margin to see it serve."""
        return probe_after(self, 6.0)


def _spec(opts: ReferenceOptions) -> labfile.LabSpec:
    spec = labfile.with_overrides(labfile.load(labfile.builtin("reference")), agent=opts.agent,
                                  web_servers=opts.web_servers)
    return replace(spec, servers=opts.servers) if opts.servers else spec


def run(opts: ReferenceOptions, run_dir: Path, progress: Progress = lambda _m: None) -> RunRecord:
    spec = _spec(opts)
    live = LiveLab(spec, run_dir)
    live.start(progress)
    try:
        master = live.vip_report()["holders"][0]
        progress(f"probing {live.vip} from {spec.probe.source}; {master} holds it")
        client = ProbeRun(live.lab, spec.probe.source, live.probe_target(), opts, opts.before + opts.probe_after)
        time.sleep(opts.before)
        progress(f"injecting {opts.fault}")
        assert live.faults is not None
        fault, undo = _inject(live, live.faults, opts.fault, master)
        heal_later(opts, undo)
        requests = client.requests()
        events = [e for d in live.daemons for e in d.events()]
    finally:
        live.stop()
    return record("reference", opts, fault, requests, events, run_dir, master=master)


def _inject(live: LiveLab, faults: Faults, kind: str, master: str) -> tuple[FaultEvent, Undo]:
    if kind == "lb-crash":
        return faults.crash_host(master), None
    if kind == "lb-link-cut":
        return faults.cut_link(master, "s1"), lambda: faults.restore_link(master, "s1")
    if kind == "web-crash":
        return faults.crash_host(WEB), None
    return faults.kill(live.daemon(master, "haproxy")), None


SCENARIO = Scenario("reference", "HAProxy + keepalived on lb1/lb2 in front of web servers, the VIP moved by VRRP; "
                    "one fault on the VIP's node or a web server", ReferenceOptions, run,
                    lambda opts: _spec(opts).topo().nodes())
