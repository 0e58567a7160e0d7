"""Scenarios: bring a lab up, probe the VIP, inject one fault, measure what the client saw.

A scenario run is one fresh lab from start to teardown, so runs are independent and their
medians mean something. The default (what `halab demo` runs) is Active-Standby with halab's own
VRRP agent on both servers and the master's link cut; keepalived is the baseline beside it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import halab_vrrp, keepalived, probe
from harness.errors import HalabError
from harness.faults import FaultEvent, Faults
from harness.lab import Lab, LabProcess
from harness.measure import analyse
from harness.probe import MAX_RATE, MIN_RATE, Request
from harness.report import RunRecord, plot_timeline, write_json
from harness.vrrp_daemons import VrrpDaemon, VrrpInstance
from topologies import ActiveStandbyTopo

DAEMONS = {"keepalived": keepalived.start, "halab": halab_vrrp.start}
FAULTS = ("link-cut", "host-crash", "agent-term", "agent-kill", "agent-freeze")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ActiveStandbyOptions:
    """What a user can choose for the Active-Standby scenario."""

    fault: str = "link-cut"
    agent: str = "halab"
    advert_int: float = 1.0
    rate: float = 100.0
    proto: str = "udp"
    before: float = 2.0
    after: float | None = None  # seconds of probing after the fault; None: enough to see the takeover
    fault_phase: float | None = None  # inject this long after one of the master's adverts (benchmarks)

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise HalabError(f"Unknown fault {self.fault!r}.", f"Choose one of: {', '.join(FAULTS)}.")
        if self.agent not in DAEMONS:
            raise HalabError(f"Unknown VRRP agent {self.agent!r}.", f"Choose one of: {', '.join(DAEMONS)}.")
        if not 0.01 <= self.advert_int <= 40.95:
            raise HalabError(f"advert_int {self.advert_int:g} s is outside what VRRPv3 allows.",
                             "Choose 0.01 to 40.95 seconds.")
        check_probe(self.rate, self.proto, self.before, self.after)
        if self.fault_phase is not None and not 0 <= self.fault_phase < self.advert_int:
            raise HalabError(f"fault_phase {self.fault_phase:g} s is not within one advert interval.",
                             f"Choose 0 to {self.advert_int:g} s.")

    @property
    def probe_after(self) -> float:
        """Long enough for a backup to notice (3 x advert_int + skew) plus margin to see it serve."""
        return self.after if self.after is not None else 3.5 * self.advert_int + 3.0


def check_probe(rate: float, proto: str, before: float, after: float | None) -> None:
    """The probe options every scenario shares: rate, protocol, time around the fault."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise HalabError(f"Probe rate {rate:g}/s is out of range.",
                         f"Choose {MIN_RATE:g} to {MAX_RATE:g} requests per second.")
    if proto not in ("udp", "tcp"):
        raise HalabError(f"Unknown probe protocol {proto!r}.", "Choose udp or tcp.")
    if before < 0.5 or (after is not None and after < 0.5):
        raise HalabError("The probe needs at least 0.5 s before and after the fault.", "Raise --before / --after.")


def run_active_standby(opts: ActiveStandbyOptions, run_dir: Path,
                       progress: Progress = lambda _msg: None) -> RunRecord:
    """One run: a VRRP agent on server1 (priority 200) and server2 (100), probe from client1."""
    topo = ActiveStandbyTopo()
    vip = str(topo.vip.ip)
    progress("starting the lab network")
    with Lab(topo, run_dir) as lab:
        progress(f"starting responders and {opts.agent}")
        for server in ("server1", "server2"):
            lab.spawn(server, "responder", probe.command("serve", "--name", server, "--port", str(probe.PORT)))
        agents = {
            server: DAEMONS[opts.agent](lab, server, VrrpInstance(
                interface=f"{server}-eth0", priority=prio, virtual_ipaddress=str(topo.vip),
                advert_int=opts.advert_int))
            for server, prio in (("server1", 200), ("server2", 100))
        }
        progress("waiting for a VRRP master to answer on the VIP")
        master = _wait_for_vip(lab, "client1", vip, timeout=4 * opts.advert_int + 15)
        progress(f"probing {vip} from client1; {master} is master")
        duration = opts.before + opts.probe_after
        out = run_dir / "probe.json"
        client = lab.spawn("client1", "probe", probe.command(
            "client", "--target", vip, "--port", str(probe.PORT), "--proto", opts.proto,
            "--rate", f"{opts.rate:g}", "--duration", f"{duration:g}", "--out", str(out)))
        watch = None
        if opts.fault_phase is not None:
            watch = lab.spawn("client1", "advert-watch", [sys.executable, "-u", "-m", "harness.advert_watch",
                                                          "--interface", "client1-eth0", "--seconds", f"{duration:g}"])
            watch.wait_for("watching", timeout=15)
        client.wait_for("sending", timeout=15)
        time.sleep(opts.before)
        if watch is not None:
            master_ip = str(topo.addresses[master][0].ip)
            _sleep_until(_next_advert(watch, master_ip, timeout=2 * opts.advert_int + 2) + opts.fault_phase)
        progress(f"injecting {opts.fault} on {master}")
        fault = _inject(Faults(lab), opts.fault, master, agents[master])
        progress(f"measuring for {opts.probe_after:.1f} s")
        client.popen.wait(timeout=opts.probe_after + 30)
        requests = [Request(**r) for r in json.loads(out.read_text())["requests"]]
        events = sorted((e for a in agents.values() for e in a.events()), key=lambda e: e.at)
    record = RunRecord("active-standby", {**asdict(opts), "master": master},
                       fault, analyse(requests, fault.at), events, requests, run_dir)
    write_json(record)
    plot_timeline(record)
    return record


def _inject(faults: Faults, kind: str, master: str, agent: VrrpDaemon) -> FaultEvent:
    if kind == "link-cut":
        return faults.cut_link(master, "s1")
    if kind == "host-crash":
        return faults.crash_host(master)
    if kind == "agent-term":
        return faults.terminate(agent.process)
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


def _wait_for_vip(lab: Lab, client: str, vip: str, timeout: float) -> str:
    """Poll the VIP from `client` until a server answers; return its name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = lab.run(client, probe.command("check", "--port", str(probe.PORT), vip), timeout=10)
        if result.returncode == 0:
            answer = json.loads(result.stdout).get(vip)
            if answer:
                return answer
        time.sleep(0.2)
    raise HalabError(f"Nobody answered on the VIP {vip} within {timeout:.0f} s.",
                     f"See the VRRP agents' logs in {lab.run_dir}.")
