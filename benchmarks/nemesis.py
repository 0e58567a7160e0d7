"""A standing fault campaign, the Jepsen way: random faults for minutes on end, and checkers.

    sudo .venv/bin/python benchmarks/nemesis.py [--minutes 10] [--labs active-standby active-active cluster]
                                                [--seed N] [--rate 100]

For each lab, in turn: bring it up with its agents, probe the VIP from client1 the whole time,
and until the time is up pick a fault at random from the lab's catalogue and a victim at random,
hold it 1 to 3 s, undo it (restart what it killed, unfence what got fenced) and give the lab
its bound to settle before the next one. A watcher in the root namespace samples every 10 ms
which hosts hold the VIP. Checked (harness.invariants): every fault's longest client-visible
silence within its bound and every request answered at the end of its window; never two VIP
holders unless a fault explains it, and then not beyond its window; no agent that died
without being killed; no halab process, bridge or state file left after the lab; agents'
memory growth (resident set, from 30 s into a life to its end) under 10 MB. Everything goes to
runs/nemesis-<date>/; the exit status is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import invariants, lb
from harness.cleanup import leftovers
from harness.daemons import HalabHeartbeat, HalabVrrp, Responder
from harness.daemons.base import Daemon
from harness.daemons.heartbeat import node_config
from harness.daemons.vrrp import instance
from harness.faults import Faults
from harness.invariants import Verdict, Window
from harness.lab import Lab
from harness.scenarios.common import ProbeOptions, ProbeRun
from topologies import ActiveActiveTopo, ActiveStandbyTopo, ClusterTopo
from topologies.base import LabTopo

HOLD_S = (1.0, 3.0)
MEMORY_LIMIT = 10 * 2**20
MEMORY_SETTLE_S = 30.0
Undo = Callable[[], None]


@dataclass(frozen=True)
class Fault:
    """One entry of a lab's catalogue: inject it on a victim, get back how to undo it."""

    inject: Callable[[str], Undo]
    excuses_two_holders: bool = True


@dataclass
class Target:
    """A lab under a campaign: its daemons, each life of each kept, and its fault catalogue."""

    lab: Lab
    faults: Faults
    bound: float
    victims: tuple[str, ...]
    holders: tuple[str, ...] = ()
    daemons: dict[str, Daemon] = field(default_factory=dict)  # key -> the daemon's current life
    lives: dict[str, int] = field(default_factory=dict)
    factories: dict[str, Callable[[str], Daemon]] = field(default_factory=dict)
    memory: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # daemon name -> samples
    crashes: list[str] = field(default_factory=list)
    killed: set[str] = field(default_factory=set)  # keys of daemons a fault took down, until undone
    retired: list[Daemon] = field(default_factory=list)  # earlier lives

    def add(self, key: str, factory: Callable[[str], Daemon]) -> Daemon:
        """Start a daemon (`factory(tag)` builds one life of it) and keep it running."""
        self.factories[key] = factory
        self.lives[key] = 0
        return self.restart(key)

    def restart(self, key: str) -> Daemon:
        self.lives[key] += 1
        if key in self.daemons:
            self.daemons[key].stop()
            self.retired.append(self.daemons[key])
        self.daemons[key] = self.factories[key](f"life{self.lives[key]}" if self.lives[key] > 1 else "").start()
        self.killed.discard(key)
        return self.daemons[key]

    def check_alive(self) -> None:
        """A daemon no fault took down must be running; one that died is noted and restarted."""
        for key, daemon in list(self.daemons.items()):
            if key not in self.killed and not daemon.alive():
                tail = daemon.process.log_text()[-300:] if daemon.process else ""
                self.crashes.append(f"{daemon.name}: {tail.strip()}")
                self.restart(key)

    def sample_memory(self) -> None:
        """The resident set of every agent and of the controller, by life."""
        watched = [d for k, d in self.daemons.items() if k.startswith("agent:")] + [self.lab.controller]
        for daemon in watched:
            if daemon is not None and daemon.alive() and daemon.process is not None:
                rss = _rss(daemon.process.pid)
                if rss is not None:
                    self.memory.setdefault(daemon.name, []).append((time.monotonic(), rss))


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# --- the three labs ---------------------------------------------------------------------------


def fault(inject: Callable[[str], object], undo: Callable[[str], object], excuses: bool = True) -> Fault:
    """A fault of two calls on the victim: inject now, undo later."""
    def run(h: str) -> Undo:
        inject(h)
        return lambda: undo(h)
    return Fault(run, excuses)


def then(first: Fault, after: Callable[[str], object]) -> Fault:
    """The same fault, with `after(victim)` at the end of its undo."""
    def run(h: str) -> Undo:
        undo = first.inject(h)
        return lambda: (undo(), after(h))[0]
    return Fault(run, first.excuses_two_holders)


def link_faults(f: Faults, switch: str) -> dict[str, Fault]:
    return {"link-cut": fault(lambda h: f.cut_link(h, switch), lambda h: f.restore_link(h, switch)),
            "flap": fault(lambda h: f.flap(h, switch, 0.3, 6), lambda _h: None),
            "loss": fault(lambda h: f.loss(h, switch, 20), lambda h: f.clear_loss(h, switch))}


def process_fault(t: Target, kind: str, how: str, excuses: bool = True) -> Fault:
    """Kill, terminate or freeze the victim's daemon `kind`; the undo restarts (or thaws) it."""
    def inject(h: str) -> Undo:
        key = f"{kind}:{h}"
        daemon = t.daemons[key]
        if how == "freeze":
            t.faults.freeze(daemon)
            return lambda: t.faults.thaw(daemon)
        t.killed.add(key)
        t.faults.kill(daemon) if how == "kill" else t.faults.terminate(daemon)
        return lambda: t.restart(key)
    return Fault(inject, excuses)


def crash_fault(t: Target, kinds: tuple[str, ...]) -> Fault:
    """The victim loses power: links down, every process gone; the undo powers it on and restarts `kinds`."""
    def inject(h: str) -> Undo:
        t.killed.update(f"{k}:{h}" for k in kinds)
        t.faults.crash_host(h)

        def undo() -> None:
            t.faults.restore_host(h)
            for k in kinds:
                t.restart(f"{k}:{h}")
        return undo
    return Fault(inject)


def active_standby(lab: Lab, faults: Faults) -> tuple[Target, dict[str, Fault]]:
    """Two servers, halab's VRRP agent at a 100 ms advert interval (Master_Down_Interval 0.36 s)."""
    topo = lab.topo
    t = Target(lab, faults, bound=2.0, victims=("server1", "server2"), holders=("server1", "server2"))
    for server, prio in {"server1": 200, "server2": 100}.items():
        t.add(f"responder:{server}", lambda tag, s=server: Responder(lab, s, tag=tag))
        t.add(f"agent:{server}", lambda tag, s=server, p=prio: HalabVrrp(lab, s, instance(topo, s, p, 0.1), tag))
    return t, link_faults(faults, "s1") | {
        "partition": fault(lambda _h: faults.partition(["server1"], ["server2"]), lambda _h: faults.heal()),
        "agent-kill": process_fault(t, "agent", "kill"),
        "agent-term": process_fault(t, "agent", "term", excuses=False),
        "agent-freeze": process_fault(t, "agent", "freeze"),
        "host-crash": crash_fault(t, ("responder", "agent")),
    }


def active_active(lab: Lab, faults: Faults) -> tuple[Target, dict[str, Fault]]:
    """Three backends behind the switch, TCP checks every 100 ms, fall 3, rise 2.

    Not in the catalogue: a frozen backend (its kernel still accepts the TCP check's connection,
    so an L4 check cannot see it; HAProxy's `check` alike) and a partition inside a host (the
    checks come from the switch, not from the clients)."""
    backends = tuple(lab.topo.hosts_with_role("backend"))
    t = Target(lab, faults, bound=2.0, victims=backends)
    for b in backends:
        t.add(f"responder:{b}", lambda tag, h=b: Responder(lab, h, tag=tag))
    lb.wait_for_pool(lab, timeout=20)
    return t, link_faults(faults, "s1") | {
        "process-kill": process_fault(t, "responder", "kill"),
        "backend-crash": crash_fault(t, ("responder",)),
    }


def cluster(lab: Lab, faults: Faults) -> tuple[Target, dict[str, Fault]]:
    """Two nodes, halab's heartbeat agent every 100 ms, quorum and fencing through the controller.
    Every undo ends as an operator's would: the node repaired first, then unfenced."""
    nodes = ("node1", "node2")
    t = Target(lab, faults, bound=3.0, victims=nodes, holders=nodes)
    for n in nodes:
        t.add(f"responder:{n}", lambda tag, h=n: Responder(lab, h, tag=tag))
    for n in nodes:
        t.add(f"agent:{n}", lambda tag, h=n: HalabHeartbeat(lab, h, node_config(
            lab, h, 0.1, event_log=lab.run_dir / f"heartbeat-{h}{tag and '-' + tag}.jsonl"), tag))

    def unfence(_h: str) -> None:
        for n in nodes:
            lab.fence("unfence", n)

    catalogue = link_faults(faults, "s1") | {
        "hb-link-cut": fault(lambda h: faults.cut_link(h, "s2"), lambda h: faults.restore_link(h, "s2")),
        "partition": fault(lambda _h: faults.partition(["node1"], ["node2"]), lambda _h: faults.heal()),
        "service-kill": process_fault(t, "responder", "kill"),
        "agent-kill": process_fault(t, "agent", "kill"),
        "agent-term": process_fault(t, "agent", "term", excuses=False),
        "agent-freeze": process_fault(t, "agent", "freeze"),
        "node-crash": crash_fault(t, ("responder", "agent")),
    }
    return t, {name: then(f, unfence) for name, f in catalogue.items()}


@dataclass(frozen=True)
class LabKind:
    topo: Callable[[], LabTopo]
    proto: str
    build: Callable[[Lab, Faults], tuple[Target, dict[str, Fault]]]
    balanced: bool = False
    fencing: bool = False


LABS = {
    "active-standby": LabKind(ActiveStandbyTopo, "udp", active_standby),
    "active-active": LabKind(lambda: ActiveActiveTopo(backends=3, clients=1), "tcp", active_active, balanced=True),
    "cluster": LabKind(ClusterTopo, "udp", cluster, fencing=True),
}


# --- the campaign ------------------------------------------------------------------------------


@dataclass
class Result:
    lab: str
    seconds: float
    verdicts: list[Verdict]
    two_holders: list[tuple[float, float]]
    unexcused: list[tuple[float, float]]
    crashes: list[str]
    leftovers: list[str]
    memory_growth: dict[str, int]

    @property
    def ok(self) -> bool:
        return (all(v.ok for v in self.verdicts) and not self.unexcused and not self.crashes
                and not self.leftovers and all(g < MEMORY_LIMIT for g in self.memory_growth.values()))


def campaign(name: str, seconds: float, rng: random.Random, rate: float, run_dir: Path,
             progress: Callable[[str], None]) -> Result:
    kind = LABS[name]
    topo = kind.topo()
    services = lb.config(lb.service(topo, protocol="tcp", check="tcp", interval=0.1, fall=3, rise=2)) \
        if kind.balanced else None
    windows: list[Window] = []
    with Lab(topo, run_dir, lb=services, fencing=kind.fencing) as lab:
        faults = Faults(lab)
        target, catalogue = kind.build(lab, faults)
        vip = str(topo.vip.ip)
        lab.wait_for_answer("client1", vip, timeout=20, proto=kind.proto)
        probe_seconds = seconds + 10
        watcher = None
        if target.holders:
            watcher = lab.spawn(None, "holder-watch", [
                sys.executable, "-u", "-m", "harness.holder_watch", "--address", vip,
                "--seconds", f"{probe_seconds:g}", *(f"{h}={lab.host(h).pid}" for h in target.holders)])
            watcher.wait_for("watching", timeout=15)
        client = ProbeRun(lab, "client1", vip, ProbeOptions(rate=rate, proto=kind.proto), probe_seconds)
        time.sleep(2.0)
        settle = target.bound + invariants.TAIL_S + 0.5
        end = time.monotonic() + seconds
        while time.monotonic() + HOLD_S[1] + settle + 5 < end:
            what = rng.choice(sorted(catalogue))
            victim = rng.choice(target.victims)
            chosen = catalogue[what]
            progress(f"{name}: {what} on {victim} ({len(windows) + 1})")
            start = time.monotonic()
            undo = chosen.inject(victim)
            time.sleep(rng.uniform(*HOLD_S))
            undo()
            undone = time.monotonic()
            time.sleep(max(0.0, undone + settle - time.monotonic()))
            target.check_alive()
            target.sample_memory()
            windows.append(Window(what, victim, start, undone, time.monotonic(), target.bound,
                                  chosen.excuses_two_holders))
        requests = client.requests()
        watched_until = time.monotonic()
        holder_text = watcher.log_text() if watcher else ""
        logs = [d.process.log_text() for d in [*target.retired, *target.daemons.values()] if d.process]
        crashes = target.crashes + [f"traceback in a log: {log[-300:]}" for log in logs if "Traceback" in log]
    spans = invariants.two_holder_spans(invariants.holder_changes(holder_text), watched_until)
    growth = {n: g for n, s in target.memory.items() if (g := invariants.growth(s, MEMORY_SETTLE_S)) is not None}
    return Result(name, seconds, [invariants.judge(w, requests) for w in windows], spans,
                  invariants.unexcused(spans, windows), crashes, leftovers(), growth)


def table(results: list[Result], seed: int) -> Table:
    """One row per lab and fault: how often, how many windows failed, the worst silence, requests lost."""
    t = Table(title=f"Fault campaign, seed {seed} ({time.strftime('%Y-%m-%d')}, {platform.node()}, "
                    f"{platform.release()})")
    for col in ("lab", "fault", "injected", "failed", "worst silence (bound)", "lost"):
        t.add_column(col, justify="right")
    for r in results:
        for kind in sorted({v.window.kind for v in r.verdicts}):
            vs = [v for v in r.verdicts if v.window.kind == kind]
            worst = max((v.outage if v.outage is not None else float("inf")) for v in vs)
            t.add_row(r.lab, kind, str(len(vs)), str(sum(not v.ok for v in vs)),
                      f"{worst * 1000:.0f} ms ({vs[0].window.bound:g} s)", str(sum(v.lost for v in vs)))
    return t


def report(console: Console, r: Result) -> None:
    """The lab's checks in a few lines, and every failure by name."""
    growth = max(r.memory_growth.values(), default=0) / 2**20
    both_ms = sum(b - a for a, b in r.two_holders) * 1000
    console.print(f"{r.lab}: {'PASS' if r.ok else 'FAIL'} — {len(r.verdicts)} faults in {r.seconds / 60:g} min; "
                  f"two VIP holders: {len(r.two_holders)} spans ({both_ms:.0f} ms), "
                  f"{len(r.unexcused)} unexcused; agent crashes {len(r.crashes)}; leftovers {len(r.leftovers)}; "
                  f"largest memory growth {growth:.1f} MB")
    for v in r.verdicts:
        if not v.ok:
            silence = "unbounded" if v.outage is None else f"{v.outage * 1000:.0f} ms"
            console.print(f"  {v.window.kind} on {v.window.target} at {v.window.start:.3f}: silence {silence}, "
                          f"recovered {v.recovered}")
    for a, b in r.unexcused:
        console.print(f"  two holders, unexcused, for {(b - a) * 1000:.0f} ms at {a:.3f}")
    for line in r.crashes + r.leftovers:
        console.print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="per lab")
    parser.add_argument("--labs", nargs="+", default=list(LABS), choices=list(LABS))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    console = Console()
    out = Path("runs") / f"nemesis-{time.strftime('%Y%m%d-%H%M%S')}"
    results = []
    for name in args.labs:
        with console.status(name) as status:
            results.append(campaign(name, args.minutes * 60, rng, args.rate, out / name, status.update))
        report(console, results[-1])
        (out / "summary.json").write_text(json.dumps({"seed": seed, "results": [asdict(r) for r in results]},
                                                     indent=1, default=str))
    console.print(table(results, seed))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
