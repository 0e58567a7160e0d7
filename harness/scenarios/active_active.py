"""Active-Active behind the SDN load balancer (or HAProxy on a host of its own): three backends
serve the VIP; backend2 fails under client load, and the timeline shows the traffic moving to the
others."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from controller.lb_config import ALGORITHMS
from harness import lb, loadsweep
from harness.daemons import HAProxy, Responder
from harness.errors import HalabError
from harness.faults import FaultEvent, Faults
from harness.lab import Lab
from harness.probe import PORT
from harness.report import RunRecord
from harness.scenarios.common import ProbeOptions, ProbeRun, Progress, Scenario, option, record
from harness.servers import ServerPlan
from topologies import ActiveActiveTopo

FAULTS = ("backend-crash", "link-cut", "process-kill")
VICTIM = "backend2"
BACKENDS_MAX = 32


@dataclass(frozen=True)
class ActiveActiveOptions(ProbeOptions):
    proto: str = option("tcp", "probe protocol", choices=("udp", "tcp"))
    after: float | None = option(3.0, "seconds of probing after the fault")
    fault: str = option("backend-crash", f"what happens to {VICTIM}", choices=FAULTS)
    algorithm: str = option("consistent", "how the switch picks a backend", choices=ALGORITHMS)
    check_interval: float = option(0.1, "health check interval, 0.01 to 10 s")
    fall: int = option(3, "failed checks that take a backend out")
    rise: int = option(2, "passed checks that bring it back")
    lb: str = option("sdn", "who balances the VIP: halab's SDN switch, or HAProxy on proxy1 (round robin)",
                     choices=("sdn", "haproxy"))
    backends: int = option(3, f"how many backends, 2 to {BACKENDS_MAX}")
    #: `halab compare` only: backends of finite capacity (workers, seconds each), and a load sweep
    #: (offered loads, seconds per step) before the probe and the fault.
    capacity: tuple[int, float] | None = option(None, "", cli=False)
    sweep: tuple[tuple[float, ...], float] | None = option(None, "", cli=False)
    #: The machines the lab spreads over (harness.servers; `--servers` and `--place` on the command line).
    servers: ServerPlan | None = option(None, "", cli=False)  # noqa: RUF009 (option() is a field(); None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.01 <= self.check_interval <= 10:
            raise HalabError(f"Check interval {self.check_interval:g} s is out of range.", "Choose 0.01 to 10 s.")
        if not 2 <= self.backends <= BACKENDS_MAX:
            raise HalabError(f"--backends {self.backends} is out of range.",
                             f"Choose 2 to {BACKENDS_MAX}: {VICTIM} fails and another must be left.")


def run(opts: ActiveActiveOptions, run_dir: Path, progress: Progress = lambda _m: None) -> RunRecord:
    topo = _topo(opts)
    services = lb.config(lb.service(topo, protocol=opts.proto, algorithm=opts.algorithm, check=opts.proto,
                                    interval=opts.check_interval, fall=opts.fall, rise=opts.rise))
    vip = str(topo.vip.ip)
    progress(f"starting the lab network and the load balancer ({opts.lb})")
    with Lab(topo, run_dir, lb=services if opts.lb == "sdn" else None, servers=opts.servers) as lab:
        responders = {h: Responder(lab, h, capacity=opts.capacity).start() for h in topo.hosts_with_role("backend")}
        if opts.lb == "sdn":
            progress("waiting until every backend is in the pool")
            lb.wait_for_pool(lab, timeout=20)
        else:
            HAProxy.on_proxy(lab, {"probe": (PORT, "roundrobin")}, interval=opts.check_interval, fall=opts.fall,
                             rise=opts.rise)
        lab.wait_for_answer("client1", vip, timeout=20, proto=opts.proto)
        if opts.sweep is not None:
            progress("offering more and more load")
        load = loadsweep.run(lab, "client1", vip, opts.sweep, opts.capacity, responders)
        progress(f"probing {vip} from client1 over {opts.proto}")
        after = opts.after if opts.after is not None else 3.0
        client = ProbeRun(lab, "client1", vip, opts, opts.before + after)
        time.sleep(opts.before)
        progress(f"injecting {opts.fault} on {VICTIM}")
        fault = _inject(Faults(lab), opts.fault, responders[VICTIM])
        requests = client.requests()
        probe_end = time.monotonic()
        events = [e for e in lab.controller.events() if e.at <= probe_end] if opts.lb == "sdn" and lab.controller \
            else []  # not the teardown's
    return record("active-active", opts, fault, requests, events, run_dir, load=load)


def _inject(faults: Faults, kind: str, responder: Responder) -> FaultEvent:
    if kind == "backend-crash":
        return faults.crash_host(VICTIM)
    if kind == "link-cut":
        return faults.cut_link(VICTIM, "s1")
    return faults.kill(responder)


def _topo(opts: ActiveActiveOptions) -> ActiveActiveTopo:
    return ActiveActiveTopo(backends=opts.backends, clients=1, proxy=opts.lb == "haproxy")


SCENARIO = Scenario("active-active", "the SDN switch balances three backends; one fails under client load",
                    ActiveActiveOptions, run, lambda opts: _topo(opts).nodes())
