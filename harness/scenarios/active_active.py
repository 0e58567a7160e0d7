"""Active-Active behind the SDN load balancer: three backends serve the VIP; backend2 fails under
client load, and the timeline shows the traffic moving to the other two."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from controller.lb_config import ALGORITHMS
from harness import lb
from harness.daemons import Responder
from harness.errors import HalabError
from harness.faults import FaultEvent, Faults
from harness.lab import Lab
from harness.report import RunRecord
from harness.scenarios.common import ProbeOptions, ProbeRun, Progress, Scenario, option, record
from topologies import ActiveActiveTopo

FAULTS = ("backend-crash", "link-cut", "process-kill")
VICTIM = "backend2"


@dataclass(frozen=True)
class ActiveActiveOptions(ProbeOptions):
    proto: str = option("tcp", "probe protocol", choices=("udp", "tcp"))
    after: float | None = option(3.0, "seconds of probing after the fault")
    fault: str = option("backend-crash", f"what happens to {VICTIM}", choices=FAULTS)
    algorithm: str = option("consistent", "how the switch picks a backend", choices=ALGORITHMS)
    check_interval: float = option(0.1, "health check interval, 0.01 to 10 s")
    fall: int = option(3, "failed checks that take a backend out")
    rise: int = option(2, "passed checks that bring it back")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.01 <= self.check_interval <= 10:
            raise HalabError(f"Check interval {self.check_interval:g} s is out of range.", "Choose 0.01 to 10 s.")


def run(opts: ActiveActiveOptions, run_dir: Path, progress: Progress = lambda _m: None) -> RunRecord:
    topo = ActiveActiveTopo(backends=3, clients=1)
    services = lb.config(lb.service(topo, protocol=opts.proto, algorithm=opts.algorithm, check=opts.proto,
                                    interval=opts.check_interval, fall=opts.fall, rise=opts.rise))
    vip = str(topo.vip.ip)
    progress("starting the lab network and the load balancer")
    with Lab(topo, run_dir, lb=services) as lab:
        responders = {h: lab.responder(h) for h in topo.hosts_with_role("backend")}
        progress("waiting until every backend is in the pool")
        lb.wait_for_pool(lab, timeout=20)
        progress(f"probing {vip} from client1 over {opts.proto}")
        after = opts.after if opts.after is not None else 3.0
        client = ProbeRun(lab, "client1", vip, opts, opts.before + after)
        time.sleep(opts.before)
        progress(f"injecting {opts.fault} on {VICTIM}")
        fault = _inject(Faults(lab), opts.fault, responders[VICTIM])
        requests = client.requests()
        probe_end = time.monotonic()
        assert lab.controller is not None
        events = [e for e in lab.controller.events() if e.at <= probe_end]  # not the teardown
    return record("active-active", opts, fault, requests, events, run_dir)


def _inject(faults: Faults, kind: str, responder: Responder) -> FaultEvent:
    if kind == "backend-crash":
        return faults.crash_host(VICTIM)
    if kind == "link-cut":
        return faults.cut_link(VICTIM, "s1")
    return faults.kill(responder)


SCENARIO = Scenario("active-active", "the SDN switch balances three backends; one fails under client load",
                    ActiveActiveOptions, run)
