"""Content sync behind an Active-Standby pair: server1's web root kept on server2 by tar, rsync or
lsyncd while a writer changes it; then server1 crashes, VRRP moves the VIP, and the run says how
stale server2's copy was, whether it ever showed a part of a file, and what the crash lost."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import preflight
from harness.contentsync import analysis, command, sync_root
from harness.daemons.contentsync import Lsyncd, RsyncDaemon, SyncPush, TarReceiver
from harness.daemons.vrrp import HalabVrrp, instance
from harness.errors import HalabError
from harness.faults import Faults
from harness.hostfs import HostFiles
from harness.lab import Lab
from harness.report import RunRecord, plot_staleness
from harness.scenarios.common import ProbeOptions, ProbeRun, Progress, Scenario, option, probe_after, record
from harness.servers import LOCAL, ServerPlan
from topologies import ActiveStandbyTopo

METHODS = ("tar", "rsync", "lsyncd")
PERIOD_MAX_S = 60.0
WRITE_RATE_MAX = 100.0
FILES_MAX = 1000
PRIMARY, STANDBY = "server1", "server2"
PRIORITIES = {PRIMARY: 200, STANDBY: 100}
#: The pair's VRRP interval: its failover is not what this scenario measures (the sync is), and at
#: 0.1 s the master is elected in 0.4 s and replaced after the crash as fast (at 1 s: 3.2 and 3.6 s).
ADVERT_INT_S = 0.1


@dataclass(frozen=True)
class SyncOptions(ProbeOptions):
    before: float = option(10.0, "seconds of writing (and probing) before the primary crashes")
    method: str = option("rsync", "how the primary's web root reaches the standby", choices=METHODS)
    period: float = option(1.0, f"seconds between two syncs (tar, rsync), lsyncd's delay; up to {PERIOD_MAX_S:g}")
    write_rate: float = option(10.0, f"file operations per second on the primary (up to {WRITE_RATE_MAX:g}): "
                                     "half change a file, a quarter create one, a quarter delete one")
    files: int = option(100, f"files in the web root at the start (1 to {FILES_MAX})")
    #: The machines the lab spreads over (harness.servers; `--servers` and `--place` on the command line).
    servers: ServerPlan | None = option(None, "", cli=False)  # noqa: RUF009 (option() is a field(); None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.period <= PERIOD_MAX_S:
            raise HalabError(f"--period {self.period:g} is out of range: a sync every {self.period:g} s never ends "
                             "or never starts.", f"Choose more than 0 and at most {PERIOD_MAX_S:g} seconds.")
        if not 0 < self.write_rate <= WRITE_RATE_MAX:
            raise HalabError(f"--write-rate {self.write_rate:g} is out of range.",
                             f"Choose more than 0 and at most {WRITE_RATE_MAX:g} operations per second.")
        if not 1 <= self.files <= FILES_MAX:
            raise HalabError(f"--files {self.files} is out of range.", f"Choose 1 to {FILES_MAX}.")
        if self.lasting is not None:
            raise HalabError("--for does not apply to the sync scenario: its fault is a crash, which nothing undoes.",
                             "Leave --for out.")

    @property
    def probe_after(self) -> float:
        """VRRP's takeover (3 x advert_int + skew), and margin to see server2 serve."""
        return probe_after(self, 3.5 * ADVERT_INT_S + 3.0)


#: The programs each method runs, with their Debian packages.
PROGRAMS = {"tar": {"tar": "tar"}, "rsync": {"rsync": "rsync"}, "lsyncd": {"rsync": "rsync", "lsyncd": "lsyncd"}}


def run(opts: SyncOptions, run_dir: Path, progress: Progress = lambda _msg: None) -> RunRecord:
    preflight.require_programs(PROGRAMS[opts.method])
    topo = ActiveStandbyTopo()
    vip = str(topo.vip.ip)
    progress("starting the lab network")
    with Lab(topo, run_dir, servers=opts.servers) as lab:
        writes, views = lab.run_dir / "sync-writes.jsonl", lab.run_dir / "sync-views.jsonl"  # by full path
        roots, stage = _web_roots(lab, PROGRAMS[opts.method])
        # The writer stamps on server1's machine's clock, the reader on server2's.
        writer_clock, reader_clock = lab.clock_of(PRIMARY), lab.clock_of(STANDBY)
        clocks = {server: asdict(offset) for server, offset in lab.clocks.items()}
        writer_argv = command("writer", "--root", str(roots[PRIMARY]), "--stage", str(stage), "--log", str(writes))
        made = lab.run(PRIMARY, [*writer_argv, "--prepare", str(opts.files)], timeout=60)
        if made.returncode != 0:
            raise HalabError(f"The writer could not fill {roots[PRIMARY]}: {made.stderr.strip()[-500:]}",
                             f"Check the free space of {sync_root()} on {PRIMARY}'s machine.")
        progress(f"starting responders, VRRP and the first full sync ({opts.method})")
        agents = {}
        for host, prio in PRIORITIES.items():
            lab.responder(host)
            agents[host] = HalabVrrp(lab, host, instance(topo, host, prio, ADVERT_INT_S)).start()
        receiver, sender = _sync_pair(lab, topo, opts, roots)
        receiver.start()
        sender.start(timeout=60)
        lab.wait_for_answer("client1", vip, timeout=20, expect=PRIMARY)
        duration = opts.before + opts.probe_after
        reader = lab.spawn(STANDBY, "sync-reader", command("reader", "--root", str(roots[STANDBY]), "--log", str(views),
                                                           "--seconds", f"{duration + 30:g}"))
        reader.wait_for("watching", timeout=15)
        client = ProbeRun(lab, "client1", vip, opts, duration)
        progress(f"writing {opts.write_rate:g} operations/s on {PRIMARY}, synced by {opts.method}")
        since = time.monotonic()
        start = (*sender.totals(), sender.cpu() + receiver.cpu())
        writer = lab.spawn(PRIMARY, "sync-writer", [*writer_argv, "--rate", f"{opts.write_rate:g}",
                                                    "--seconds", f"{opts.before + 10:g}"])
        writer.wait_for("writing", timeout=15)
        time.sleep(max(0.0, since + opts.before - time.monotonic()))
        end = (*sender.totals(), sender.cpu() + receiver.cpu())
        progress(f"crashing {PRIMARY}")
        fault = Faults(lab).crash_host(PRIMARY)
        progress(f"measuring for {opts.probe_after:.1f} s")
        requests = client.requests()
        reader.stop()
        events = [e for a in agents.values() for e in a.events()]
    ops = [analysis.Op(**json.loads(line)) for line in writes.read_text().splitlines()]
    seen = [analysis.Seen(**json.loads(line)) for line in views.read_text().splitlines()]
    ops = [replace(o, t=writer_clock.here(o.t)) for o in ops]
    seen = [replace(v, t=reader_clock.here(v.t)) for v in seen]
    found = analysis.analyse(ops, seen, since=since, crash_at=fault.at)
    transfers, sent, cpu = (b - a for a, b in zip(start, end, strict=True))
    found.update(method=opts.method, period=opts.period, window=opts.before, transfers=transfers,
                 bytes_per_transfer=sent / transfers if transfers else None,
                 cpu_seconds_per_second=cpu / opts.before, clocks=clocks)
    rec = record("sync", opts, fault, requests, events, run_dir, sync=found, master=PRIMARY)
    plot_staleness([found], run_dir / "staleness.png")
    return rec


def _web_roots(lab: Lab, programs: dict[str, str]) -> tuple[dict[str, Path], Path]:
    """Each server's web root, and the primary's staging directory beside it, fresh on its host's
    machine's own disk (sync_root()/RUN): the standby's copy is its own, not a shared one. The
    lab's teardown (or `halab clean`) removes them: generated files, 50 MB a run, which the
    writer's and reader's logs describe. The method's programs are checked on another machine
    first (this one's were, before the lab started)."""
    assert lab.state is not None
    base = sync_root() / lab.state.run_id
    files = {host: HostFiles(lab.server_of(host)) for host in PRIORITIES}
    for machine in {f.server: f for f in files.values()}.values():
        if machine.server != LOCAL:
            preflight.require_programs(programs, machine.server)
        machine.make_dir(sync_root())
        machine.make_dir(base)
    lab.record_dir(base)
    roots = {host: base / f"{host}-www" for host in PRIORITIES}
    stage = base / f"{PRIMARY}-stage"
    for host in PRIORITIES:
        for path in (roots[host], *([stage] if host == PRIMARY else [])):
            files[host].make_dir(path, fresh=True)
    return roots, stage


def _sync_pair(lab: Lab, topo: ActiveStandbyTopo, opts: SyncOptions,
               roots: dict[str, Path]) -> tuple[TarReceiver | RsyncDaemon, SyncPush | Lsyncd]:
    """The standby's receiving side and the primary's sending side of the chosen method."""
    primary_ip, standby_ip = (str(topo.addresses[h][0].ip) for h in (PRIMARY, STANDBY))
    if opts.method == "tar":
        return (TarReceiver(lab, STANDBY, roots[STANDBY], allow=primary_ip),
                SyncPush(lab, PRIMARY, "tar", roots[PRIMARY], standby_ip, opts.period))
    receiver = RsyncDaemon(lab, STANDBY, roots[STANDBY], allow=primary_ip)
    if opts.method == "rsync":
        return receiver, SyncPush(lab, PRIMARY, "rsync", roots[PRIMARY], standby_ip, opts.period)
    return receiver, Lsyncd(lab, PRIMARY, roots[PRIMARY], standby_ip, opts.period)

SCENARIO = Scenario("sync", "an Active-Standby pair whose web root is kept in sync by tar, rsync or lsyncd; "
                    "the primary crashes mid-write: staleness, partial files, what the standby lacks",
                    SyncOptions, run, lambda _opts: ActiveStandbyTopo().nodes())
