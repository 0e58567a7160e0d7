"""The Active-Active scenario: the SDN load balancer spreads a client's connections over three
backends; one backend fails under load, and the timeline shows the traffic moving to the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import lb, probe
from harness.errors import HalabError
from harness.faults import FaultEvent, Faults
from harness.lab import LB_EVENTS, Lab
from harness.measure import analyse
from harness.probe import Request
from harness.report import RunRecord, plot_timeline, write_json
from harness.scenarios import check_probe
from harness.vrrp_daemons import StateEvent
from topologies import ActiveActiveTopo

FAULTS = ("backend-crash", "link-cut", "process-kill")
ALGORITHMS = ("consistent", "source_hash", "round_robin", "weighted")
Progress = Callable[[str], None]
VICTIM = "backend2"


@dataclass(frozen=True)
class ActiveActiveOptions:
    fault: str = "backend-crash"
    algorithm: str = "consistent"
    check_interval: float = 0.1
    fall: int = 3
    rise: int = 2
    rate: float = 100.0
    proto: str = "tcp"
    before: float = 2.0
    after: float = 3.0

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise HalabError(f"Unknown fault {self.fault!r} for active-active.", f"Choose one of: {', '.join(FAULTS)}.")
        if self.algorithm not in ALGORITHMS:
            raise HalabError(f"Unknown algorithm {self.algorithm!r}.", f"Choose one of: {', '.join(ALGORITHMS)}.")
        if not 0.01 <= self.check_interval <= 10:
            raise HalabError(f"Check interval {self.check_interval:g} s is out of range.", "Choose 0.01 to 10 s.")
        check_probe(self.rate, self.proto, self.before, self.after)


def run_active_active(opts: ActiveActiveOptions, run_dir: Path, progress: Progress = lambda _m: None) -> RunRecord:
    """One run: three backends behind the VIP, client1 probing it, one fault on backend2."""
    topo = ActiveActiveTopo(backends=3, clients=1)
    config = lb.service_toml(topo, protocol=opts.proto, algorithm=opts.algorithm, check=opts.proto,
                             interval=opts.check_interval, fall=opts.fall, rise=opts.rise)
    vip = str(topo.vip.ip)
    progress("starting the lab network and the load balancer")
    with Lab(topo, run_dir, lb_config=config) as lab:
        responders = {h: lab.spawn(h, "responder", probe.command("serve", "--name", h, "--port", str(probe.PORT)))
                      for h in topo.hosts_with_role("backend")}
        progress("waiting until every backend is in the pool")
        lb.wait_for_pool(lab, timeout=20)
        progress(f"probing {vip} from client1 over {opts.proto}")
        out = run_dir / "probe.json"
        client = lab.spawn("client1", "probe", probe.command(
            "client", "--target", vip, "--port", str(probe.PORT), "--proto", opts.proto,
            "--rate", f"{opts.rate:g}", "--duration", f"{opts.before + opts.after:g}", "--out", str(out)))
        client.wait_for("sending", timeout=15)
        time.sleep(opts.before)
        progress(f"injecting {opts.fault} on {VICTIM}")
        fault = _inject(Faults(lab), opts.fault, responders[VICTIM])
        client.popen.wait(timeout=opts.after + 30)
        probe_end = time.monotonic()
        requests = [Request(**r) for r in json.loads(out.read_text())["requests"]]
    events = [e for e in lb_events(run_dir / LB_EVENTS, topo) if e.at <= probe_end]  # not the teardown
    record = RunRecord("active-active", asdict(opts), fault, analyse(requests, fault.at), events, requests, run_dir)
    write_json(record)
    plot_timeline(record)
    return record


def _inject(faults: Faults, kind: str, responder) -> FaultEvent:
    if kind == "backend-crash":
        return faults.crash_host(VICTIM)
    if kind == "link-cut":
        return faults.cut_link(VICTIM, "s1")
    return faults.kill(responder)


def lb_events(path: Path, topo: ActiveActiveTopo) -> list[StateEvent]:
    """The load balancer's backend events, named by host, for the timeline plot."""
    host_of = {str(addrs[0].ip): name for name, addrs in topo.addresses.items()}
    events = []
    for line in path.read_text().splitlines() if path.exists() else []:
        rec = json.loads(line)
        events.append(StateEvent(rec["monotonic"], host_of.get(rec["backend"].split(":")[0], rec["backend"]),
                                 rec["service"], rec["event"]))
    return events
