"""Active-Standby with VRRP: server1 (priority 200) and server2 (100) share the VIP; one fault on
the master. The default (what `halab demo` runs) is halab's own VRRP agent and a cut link;
keepalived is the baseline beside it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ha.vrrp.config import ADVERT_INT_MAX, ADVERT_INT_MIN
from harness.daemons.vrrp import VRRP_DAEMONS, VrrpDaemon, instance
from harness.errors import HalabError
from harness.faults import FaultEvent, Faults
from harness.lab import Lab
from harness.process import LabProcess
from harness.report import RunRecord
from harness.scenarios.common import ProbeOptions, ProbeRun, Progress, Scenario, option, record
from topologies import ActiveStandbyTopo

FAULTS = ("link-cut", "host-crash", "agent-term", "agent-kill", "agent-freeze")
PRIORITIES = {"server1": 200, "server2": 100}


@dataclass(frozen=True)
class ActiveStandbyOptions(ProbeOptions):
    fault: str = option("link-cut", "what happens to the master", choices=FAULTS)
    agent: str = option("halab", "the VRRP daemon on both servers", choices=tuple(VRRP_DAEMONS))
    advert_int: float = option(1.0, f"VRRP advertisement interval, {ADVERT_INT_MIN} to {ADVERT_INT_MAX} s")
    #: Benchmarks only: inject this long after one of the master's adverts.
    fault_phase: float | None = option(None, "", cli=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not ADVERT_INT_MIN <= self.advert_int <= ADVERT_INT_MAX:
            raise HalabError(f"advert_int {self.advert_int:g} s is outside what VRRPv3 allows.",
                             f"Choose {ADVERT_INT_MIN} to {ADVERT_INT_MAX} seconds.")
        if self.fault_phase is not None and not 0 <= self.fault_phase < self.advert_int:
            raise HalabError(f"fault_phase {self.fault_phase:g} s is not within one advert interval.",
                             f"Choose 0 to {self.advert_int:g} s.")

    @property
    def probe_after(self) -> float:
        """Long enough for a backup to notice (3 x advert_int + skew) plus margin to see it serve."""
        return self.after if self.after is not None else 3.5 * self.advert_int + 3.0


def run(opts: ActiveStandbyOptions, run_dir: Path, progress: Progress = lambda _msg: None) -> RunRecord:
    topo = ActiveStandbyTopo()
    vip = str(topo.vip.ip)
    progress("starting the lab network")
    with Lab(topo, run_dir) as lab:
        progress(f"starting responders and {opts.agent}")
        for server in PRIORITIES:
            lab.responder(server)
        agents = {server: VRRP_DAEMONS[opts.agent](lab, server, instance(topo, server, prio, opts.advert_int)).start()
                  for server, prio in PRIORITIES.items()}
        progress("waiting for a VRRP master to answer on the VIP")
        master = lab.wait_for_answer("client1", vip, timeout=4 * opts.advert_int + 15)
        progress(f"probing {vip} from client1; {master} is master")
        duration = opts.before + opts.probe_after
        watch = None
        if opts.fault_phase is not None:
            watch = lab.spawn("client1", "advert-watch", [sys.executable, "-u", "-m", "harness.advert_watch",
                                                          "--interface", "client1-eth0", "--seconds", f"{duration:g}"])
            watch.wait_for("watching", timeout=15)
        client = ProbeRun(lab, "client1", vip, opts, duration)
        time.sleep(opts.before)
        if watch is not None:
            master_ip = str(topo.addresses[master][0].ip)
            _sleep_until(_next_advert(watch, master_ip, timeout=2 * opts.advert_int + 2) + opts.fault_phase)
        progress(f"injecting {opts.fault} on {master}")
        fault = _inject(Faults(lab), opts.fault, master, agents[master])
        progress(f"measuring for {opts.probe_after:.1f} s")
        requests = client.requests()
        events = [e for a in agents.values() for e in a.events()]
    return record("active-standby", opts, fault, requests, events, run_dir, master=master)


def _inject(faults: Faults, kind: str, master: str, agent: VrrpDaemon) -> FaultEvent:
    if kind == "link-cut":
        return faults.cut_link(master, "s1")
    if kind == "host-crash":
        return faults.crash_host(master)
    if kind == "agent-term":
        return faults.terminate(agent)
    if kind == "agent-freeze":
        return faults.freeze(agent.advertiser())
    return faults.record("agent-kill", agent.name, agent.crash())


def _next_advert(watch: LabProcess, source: str, timeout: float) -> float:
    """When the next advert from `source` reached the client (monotonic clock)."""
    after = time.monotonic()
    deadline = after + timeout
    while time.monotonic() < deadline:
        for line in watch.log_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == source and float(parts[0]) > after:
                return float(parts[0])
        time.sleep(0.0005)
    raise HalabError(f"No VRRP advert from {source} reached the client within {timeout:.1f} s.",
                     f"See the agent logs in {watch.log_path.parent}.")


def _sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 0.001))


SCENARIO = Scenario("active-standby", "two servers share a VIP through VRRPv3 (halab's agent, or keepalived); "
                    "one fault on the master", ActiveStandbyOptions, run)
