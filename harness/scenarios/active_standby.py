"""Active-Standby with VRRP: server1 (priority 200) and server2 (100) share the VIP; one fault on
the master. The default (what `halab demo` runs) is halab's own VRRP agent and a cut link;
keepalived is the baseline beside it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ha.vrrp.config import ADVERT_INT_MAX, ADVERT_INT_MIN, InstanceConfig, TrackScript
from harness import loadsweep
from harness.clocks import ClockOffset
from harness.daemons import Responder
from harness.daemons.vrrp import VRRP_DAEMONS, VrrpDaemon, instance
from harness.errors import HalabError
from harness.faults import FaultEvent, Faults
from harness.lab import Lab
from harness.process import LabProcess
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
from topologies import ActiveStandbyTopo

FAULTS = ("link-cut", "host-crash", "service-kill", "agent-term", "agent-kill", "agent-freeze", "partition", "loss",
          "flap")
#: Faults that nothing undoes (a crash, a process stopped or killed) or that end by themselves (a flap).
LASTING_NOT = ("host-crash", "service-kill", "agent-term", "agent-kill", "flap")
#: With --fault service-kill the agents track their server's service as keepalived's users track
#: HAProxy: a track_script every second, failed at once (the instance goes to FAULT).
SERVICE_CHECK_INTERVAL_S = 1.0
PRIORITIES = {"server1": 200, "server2": 100}


@dataclass(frozen=True)
class ActiveStandbyOptions(ProbeOptions):
    fault: str = option("link-cut", "what happens to the master", choices=FAULTS)
    agent: str = option("halab", "the VRRP daemon on both servers", choices=tuple(VRRP_DAEMONS))
    advert_int: float = option(1.0, f"VRRP advertisement interval, {ADVERT_INT_MIN} to {ADVERT_INT_MAX} s")
    assist: bool = option(False, "halab's agent: the switch's controller tells the backup at once when the "
                                 "master's port goes down (failover assist)")
    loss_percent: float = option(20.0, "with --fault loss: the share of frames dropped each way on the master's link")
    flap_period: float = option(0.5, "with --fault flap: seconds per cut-and-restore of the master's link")
    flap_count: int = option(6, "with --fault flap: how many times")
    #: Benchmarks only: inject this long after one of the master's adverts.
    fault_phase: float | None = option(None, "", cli=False)
    #: `halab compare` only: servers of finite capacity (workers, seconds each), and a load sweep
    #: (offered loads, seconds per step) before the probe and the fault.
    capacity: tuple[int, float] | None = option(None, "", cli=False)
    sweep: tuple[tuple[float, ...], float] | None = option(None, "", cli=False)
    #: The machines the lab spreads over (harness.servers; `--servers` and `--place` on the command line).
    servers: ServerPlan | None = option(None, "", cli=False)  # noqa: RUF009 (option() is a field(); None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not ADVERT_INT_MIN <= self.advert_int <= ADVERT_INT_MAX:
            raise HalabError(f"advert_int {self.advert_int:g} s is outside what VRRPv3 allows.",
                             f"Choose {ADVERT_INT_MIN} to {ADVERT_INT_MAX} seconds.")
        refuse_lasting(self, self.fault, FAULTS, LASTING_NOT)
        if self.assist and self.agent != "halab":
            raise HalabError(f"--assist speeds up halab's agent; {self.agent} has no failover assist.",
                             "Leave out --agent (halab's is the default), or --assist.")
        if self.fault_phase is not None and not 0 <= self.fault_phase < self.advert_int:
            raise HalabError(f"fault_phase {self.fault_phase:g} s is not within one advert interval.",
                             f"Choose 0 to {self.advert_int:g} s.")

    @property
    def probe_after(self) -> float:
        """Long enough for a backup to notice (3 x advert_int + skew) plus margin to see it serve;
        a flap lasts its periods first."""
        flapping = self.flap_period * self.flap_count if self.fault == "flap" else 0.0
        return probe_after(self, 3.5 * self.advert_int + 3.0 + flapping)


def run(opts: ActiveStandbyOptions, run_dir: Path, progress: Progress = lambda _msg: None) -> RunRecord:
    topo = ActiveStandbyTopo()
    vip = str(topo.vip.ip)
    progress("starting the lab network")
    with Lab(topo, run_dir, assist=opts.assist, servers=opts.servers) as lab:
        progress(f"starting responders and {opts.agent}")
        responders = {server: Responder(lab, server, capacity=opts.capacity).start() for server in PRIORITIES}
        agents = {server: VRRP_DAEMONS[opts.agent](lab, server, _instance(topo, opts, server, prio,
                                                                          responders[server])).start()
                  for server, prio in PRIORITIES.items()}
        progress("waiting for a VRRP master to answer on the VIP")
        master = lab.wait_for_answer("client1", vip, timeout=4 * opts.advert_int + 15)
        if opts.sweep is not None:
            progress("offering more and more load")
        load = loadsweep.run(lab, "client1", vip, opts.sweep, opts.capacity, responders)
        progress(f"probing {vip} from client1; {master} is master")
        duration = opts.before + opts.probe_after
        # The adverts as the client hears them: the plot's ticks, and where the backup's timer started.
        watch = lab.spawn("client1", "advert-watch", [sys.executable, "-u", "-m", "harness.advert_watch",
                                                      "--interface", "client1-eth0", "--seconds", f"{duration:g}"])
        watch.wait_for("watching", timeout=15)
        client = ProbeRun(lab, "client1", vip, opts, duration)
        time.sleep(opts.before)
        if opts.fault_phase is not None:
            master_ip = str(topo.addresses[master][0].ip)
            heard = _next_advert(watch, master_ip, 2 * opts.advert_int + 2, lab.clock_of("client1"))
            _sleep_until(heard + opts.fault_phase)
        progress(f"injecting {opts.fault} on {master}")
        fault, undo = _inject(Faults(lab), opts, master, agents[master], responders[master])
        heal_later(opts, undo)
        progress(f"measuring for {opts.probe_after:.1f} s")
        requests = client.requests()
        events = [e for a in agents.values() for e in a.events()]
        adverts = _adverts(watch, {str(topo.addresses[s][0].ip): s for s in PRIORITIES}, lab.clock_of("client1"))
    return record("active-standby", opts, fault, requests, events, run_dir, load=load, adverts=adverts, master=master)


def _adverts(watch: LabProcess, hosts: dict[str, str], clock: ClockOffset) -> list[dict]:
    """advert_watch's lines: when each advert reached the client (`clock`: its machine's against
    this one's), and from which server."""
    out = []
    for line in watch.log_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in hosts:
            out.append({"at": clock.here(float(parts[0])), "host": hosts[parts[1]]})
    return out


def _instance(topo: ActiveStandbyTopo, opts: ActiveStandbyOptions, server: str, priority: int,
              responder: Responder) -> InstanceConfig:
    """The server's VRRP instance; with --fault service-kill, tracking its service."""
    if opts.fault != "service-kill":
        return instance(topo, server, priority, opts.advert_int, assist=opts.assist)
    assert responder.process is not None
    alive = TrackScript(("/bin/kill", "-0", str(responder.process.pid)), interval=SERVICE_CHECK_INTERVAL_S)
    return instance(topo, server, priority, opts.advert_int, track_script=(alive,), assist=opts.assist)


def _inject(faults: Faults, opts: ActiveStandbyOptions, master: str, agent: VrrpDaemon,
            responder: Responder) -> tuple[FaultEvent, Undo]:
    """Apply the fault to the master; the event, and how to undo it (for --for; None: it cannot be)."""
    kind = opts.fault
    if kind == "link-cut":
        return faults.cut_link(master, "s1"), lambda: faults.restore_link(master, "s1")
    if kind == "host-crash":
        return faults.crash_host(master), None  # its processes are gone: a restore would not bring them back
    if kind == "service-kill":
        return faults.kill(responder), None
    if kind == "agent-term":
        return faults.terminate(agent), None
    if kind == "agent-freeze":
        return faults.freeze(agent.advertiser()), lambda: faults.thaw(agent.advertiser())
    if kind == "partition":
        others = [h for h in faults.lab.topo.roles if h != master]
        return faults.partition([master], others), faults.heal
    if kind == "loss":
        return faults.loss(master, "s1", opts.loss_percent), lambda: faults.clear_loss(master, "s1")
    if kind == "flap":
        return faults.flap(master, "s1", opts.flap_period, opts.flap_count, background=True), None
    return faults.record("agent-kill", agent.name, agent.crash()), None


def _next_advert(watch: LabProcess, source: str, timeout: float, clock: ClockOffset) -> float:
    """When the next advert from `source` reached the client, on this machine's monotonic clock
    (`clock`: the client's machine's against this one's)."""
    after = time.monotonic()
    deadline = after + timeout
    while time.monotonic() < deadline:
        for line in watch.log_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == source and (heard := clock.here(float(parts[0]))) > after:
                return heard
        time.sleep(0.0005)
    raise HalabError(f"No VRRP advert from {source} reached the client within {timeout:.1f} s.",
                     f"See the agent logs in {watch.log_path.parent}.")


def _sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 0.001))


SCENARIO = Scenario("active-standby", "two servers share a VIP through VRRPv3 (halab's agent, or keepalived); "
                    "one fault on the master", ActiveStandbyOptions, run, lambda _opts: ActiveStandbyTopo().nodes())
