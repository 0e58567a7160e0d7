"""Active-Standby with halab's heartbeat agent: node1 and node2 on a service network and a
dedicated heartbeat link, the gateway as tie-breaker, fencing through the controller; one fault
on node1, the active node."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ha.heartbeat.config import DETECTORS, INTERVAL_MAX, INTERVAL_MIN
from harness.daemons.heartbeat import PRIORITIES, HalabHeartbeat, node_config
from harness.errors import HalabError
from harness.faults import FaultEvent, Faults
from harness.lab import Lab
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
from topologies import ClusterTopo

FAULTS = ("node-crash", "partition", "service-kill", "hb-link-cut", "loss")
#: Faults that nothing undoes: --for does not apply.
LASTING_NOT = ("node-crash", "service-kill")
ACTIVE = "node1"


@dataclass(frozen=True)
class ClusterOptions(ProbeOptions):
    fault: str = option("node-crash", f"what happens to {ACTIVE}, the active node", choices=FAULTS)
    interval: float = option(0.1, f"heartbeat interval, {INTERVAL_MIN:g} to {INTERVAL_MAX:g} s")
    detector: str = option("deadtime", "how a silent peer is declared dead", choices=DETECTORS)
    assist: bool = option(False, "the switch's controller tells the standby at once when the active node's "
                                 "ports go down (failover assist)")
    loss_percent: float = option(50.0, f"with --fault loss: the share of frames dropped each way on {ACTIVE}'s "
                                       "links (service and heartbeat)")
    #: The machines the lab spreads over (harness.servers; `--servers` and `--place` on the command line).
    servers: ServerPlan | None = option(None, "", cli=False)  # noqa: RUF009 (option() is a field(); None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not INTERVAL_MIN <= self.interval <= INTERVAL_MAX:
            raise HalabError(f"Heartbeat interval {self.interval:g} s is out of range.",
                             f"Choose {INTERVAL_MIN:g} to {INTERVAL_MAX:g} s.")
        refuse_lasting(self, self.fault, FAULTS, LASTING_NOT)

    @property
    def probe_after(self) -> float:
        """Detection (3 intervals), fencing and the takeover, plus margin to see the new node serve."""
        return probe_after(self, 6 * self.interval + 2.0)


def run(opts: ClusterOptions, run_dir: Path, progress: Progress = lambda _m: None) -> RunRecord:
    topo = ClusterTopo()
    vip = str(topo.vip.ip)
    progress("starting the lab network and the fencing controller")
    with Lab(topo, run_dir, fencing=True, assist=opts.assist, servers=opts.servers) as lab:
        responders = {node: lab.responder(node) for node in PRIORITIES}
        progress("starting the heartbeat agents")
        agents = [HalabHeartbeat(lab, node, node_config(lab, node, opts.interval, detector=opts.detector)).start()
                  for node in PRIORITIES]
        lab.wait_for_answer("client1", vip, timeout=10 * opts.interval + 15, expect=ACTIVE)
        progress(f"probing {vip} from client1; {ACTIVE} is active")
        client = ProbeRun(lab, "client1", vip, opts, opts.before + opts.probe_after)
        time.sleep(opts.before)
        progress(f"injecting {opts.fault} on {ACTIVE}")
        fault, undo = _inject(Faults(lab), opts, responders[ACTIVE])
        heal_later(opts, undo)
        requests = client.requests()
        events = [e for a in agents for e in a.events()]
    return record("cluster", opts, fault, requests, events, run_dir)


def _inject(faults: Faults, opts: ClusterOptions, responder) -> tuple[FaultEvent, Undo]:
    kind = opts.fault
    if kind == "node-crash":
        return faults.crash_host(ACTIVE), None
    if kind == "partition":
        return faults.partition([ACTIVE], [n for n in PRIORITIES if n != ACTIVE]), faults.heal
    if kind == "service-kill":
        return faults.kill(responder), None
    if kind == "loss":
        event = faults.loss(ACTIVE, "s1", opts.loss_percent)
        faults.loss(ACTIVE, "s2", opts.loss_percent)
        return event, lambda: (faults.clear_loss(ACTIVE, "s1"), faults.clear_loss(ACTIVE, "s2"))
    return faults.cut_link(ACTIVE, "s2"), lambda: faults.restore_link(ACTIVE, "s2")


SCENARIO = Scenario("cluster", "two nodes with halab's heartbeat agent, quorum and fencing; one fault on the "
                    "active node", ClusterOptions, run, lambda _opts: ClusterTopo().nodes())
