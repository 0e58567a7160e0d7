"""Three tiers under a fault in the last one: a client writes through the web VIP (balanced by the
switch) to web1..2, which write through the DB VIP to db1 (the primary) and db2 (its standby),
managed by halab's heartbeat agents. Each write is a unique id; the checker judges every write
against the table the surviving primary holds (harness.writecheck)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ha.heartbeat.config import INTERVAL_MAX, INTERVAL_MIN
from ha.heartbeat.freshness import window_for
from ha.heartbeat.postgresql import REPLY_MAX_AGE_S
from ha.heartbeat.syncrep import least_fallback
from harness import dbwriter, lb, writecheck
from harness.daemons.patroni import ROUTER_CHECKS, TIMINGS
from harness.daemons.postgresql import PORT, REPLICATION_MODES, PostgreSQL, require_postgresql
from harness.daemons.webapp import WebApp
from harness.dbtier import MANAGERS, DbTierSpec, ManagedPair, PatroniPair, is_primary
from harness.dbwriter import WEB_PORT
from harness.errors import HalabError
from harness.events import Event
from harness.faults import FaultEvent, Faults
from harness.lab import Lab
from harness.probe import Request
from harness.process import LabProcess
from harness.report import RunRecord
from harness.scenarios.common import Progress, Scenario, Undo, heal_later, option, record
from harness.servers import ServerPlan
from topologies.three_tier import ThreeTierTopo

FAULTS = ("db-primary-crash", "db-link-cut", "db-process-kill", "replication-cut", "replication-cut-then-crash")
#: Faults that nothing undoes (crashes, a kill).
LASTING_NOT = ("db-primary-crash", "db-process-kill", "replication-cut-then-crash")
PRIMARY, STANDBY = "db1", "db2"
WEBS = 2
#: Where the writer runs, by its path (--writes): it times every write, on this machine's clock.
WRITERS = {"web": "client1", "db": "web1"}


@dataclass(frozen=True)
class ThreeTierOptions:
    fault: str = option("db-primary-crash", f"what happens to {PRIMARY}, the primary (or to its replication)",
                        choices=FAULTS)
    manager: str = option("halab", "what manages the database pair: halab's heartbeat agents, or Patroni with its "
                                   "default timings or tuned as far as its documentation allows",
                          choices=MANAGERS)
    writes: str = option("web", "the writer's path: through the web VIP and a web server, or from web1 straight "
                                "to the DB VIP", choices=("web", "db"))
    replication: str = option("sync", "what a commit waits for", choices=REPLICATION_MODES)
    strict: bool = option(False, "synchronous modes: writes wait for the standby even when it is gone "
                                 "(else the primary falls back to asynchronous after --fallback-timeout)")
    fallback_timeout: float = option(3.0, "synchronous, not strict: seconds a missing standby may hold up commits")
    interval: float = option(0.1, f"heartbeat interval, {INTERVAL_MIN:g} to {INTERVAL_MAX:g} s")
    rate: float = option(50.0, "writes per second (1 to 500)")
    before: float = option(2.0, "seconds of writing before the fault")
    after: float | None = option(None, "seconds of writing after the fault (default: 4, or with replication-cut "
                                       "long enough to see a primary fall back)")
    cut_lead: float | None = option(None, "replication-cut-then-crash: seconds between the cut and the crash "
                                          "(default: long enough for a primary that may fall back to have done so)")
    lasting: float | None = option(None, "replication-cut, db-link-cut: heal after this many seconds", flag="--for")
    #: The machines the lab spreads over (harness.servers; `--servers` and `--place` on the command line).
    servers: ServerPlan | None = option(None, "", cli=False)  # noqa: RUF009 (option() is a field(); None)

    def __post_init__(self) -> None:
        if self.replication not in REPLICATION_MODES or self.fault not in FAULTS:
            raise HalabError(f"Unknown replication {self.replication!r} or fault {self.fault!r}.",
                             f"Choose --replication {'|'.join(REPLICATION_MODES)} and --fault {'|'.join(FAULTS)}.")
        if not INTERVAL_MIN <= self.interval <= INTERVAL_MAX:
            raise HalabError(f"Heartbeat interval {self.interval:g} s is out of range.",
                             f"Choose {INTERVAL_MIN:g} to {INTERVAL_MAX:g} s.")
        if not 1 <= self.rate <= 500:
            raise HalabError(f"Write rate {self.rate:g}/s is out of range.", "Choose 1 to 500 writes per second.")
        if self.before < 0.5 or (self.after is not None and self.after < 0.5):
            raise HalabError("The writer needs at least 0.5 s before and after the fault.", "Raise --before / --after.")
        least = least_fallback(3 * self.interval)   # deadtime: 3 intervals
        if not least <= self.fallback_timeout <= 600:
            raise HalabError(f"--fallback-timeout {self.fallback_timeout:g} is out of range.",
                             f"Choose {least:g} (a takeover: deadtime + 1 s) to 600 s.")
        if self.lasting is not None and (self.fault in LASTING_NOT or not 0 < self.lasting <= 600):
            raise HalabError(f"--for does not apply to --fault {self.fault} (or is out of range).",
                             "Use --for 0.1 to 600 with replication-cut or db-link-cut.")

    @property
    def db_tier(self) -> DbTierSpec:
        return DbTierSpec(self.manager, self.replication, self.strict, self.fallback_timeout, self.interval)

    @property
    def falls_back_after(self) -> float:
        """When a primary that is not strict has fallen back, at the latest, after replication
        stopped: the standby's last reply ages past REPLY_MAX_AGE_S, the next check sees it, the
        lease runs out (plus the margin the agent adds: its heartbeats' freshness window)."""
        return REPLY_MAX_AGE_S + 0.2 + self.fallback_timeout + window_for(3 * self.interval, self.interval)

    @property
    def lead(self) -> float:
        return self.cut_lead if self.cut_lead is not None else self.falls_back_after + 1.5

    @property
    def takeover(self) -> float:
        """Long enough to see the standby take over: halab's agent within a second or so;
        Patroni's leader lock must expire (ttl after its last renewal), its next loop promotes,
        and HAProxy's checks must see the new primary (`rise` checks)."""
        if self.manager == "halab":
            return 4.0
        t = TIMINGS[self.manager]
        inter, _fall, rise = ROUTER_CHECKS[self.manager]
        return t["ttl"] + t["loop_wait"] + inter * rise + 5.0

    @property
    def writing_after(self) -> float:
        if self.after is not None:
            return self.after
        if self.fault == "replication-cut":
            return self.falls_back_after + 2.5 + (self.lasting or 0.0)
        return self.takeover


def run(opts: ThreeTierOptions, run_dir: Path, progress: Progress = lambda _m: None) -> RunRecord:
    require_postgresql()
    topo = ThreeTierTopo(webs=WEBS)
    web = lb.service(topo, name="web", port=WEB_PORT, check="tcp", interval=0.1)
    progress("starting the lab network, the load balancer and the fencing controller")
    with Lab(topo, run_dir, lb=lb.config(web, switches=topo.balanced_switches), fencing=True,
             servers=opts.servers) as lab:
        progress(f"starting PostgreSQL on {PRIMARY} and {STANDBY} ({opts.replication}), managed by {opts.manager}")
        pair = opts.db_tier.start(lab, topo.db_vip)
        passfile = pair.cluster.write_app_passfile(lab.run_dir / "app.pgpass")
        if opts.writes == "web":
            progress(f"starting the web servers {', '.join(topo.hosts_with_role('backend'))}")
            start_web_tier(lab, topo, passfile)
        lead = opts.lead if opts.fault == "replication-cut-then-crash" else 0.0
        seconds = opts.before + lead + opts.writing_after
        writer, out = _start_writer(lab, topo, opts, passfile, seconds, progress)
        time.sleep(opts.before)
        lag = _replication_lag(pair.servers[PRIMARY])
        progress(f"injecting {opts.fault}")
        faults = Faults(lab)
        fault, undo = _inject(faults, opts, pair, lead, progress)
        heal_later(opts, undo)
        writer.popen.wait(timeout=seconds + 30)
        clock = lab.clock_of(WRITERS[opts.writes])   # the writer stamps on its machine's clock
        writes = [replace(w, invoked=clock.here(w.invoked), completed=clock.here(w.completed))
                  for w in dbwriter.read(out)]
        servers_after = {host: _server_state(server) for host, server in pair.servers.items()}
        survivor = _primary_now(pair)
        # No server promoted: what the standby holds (it still answers reads) is what promoting it
        # would have kept, read before the old primary restarts and might stream it more.
        standby_held = (_table(pair.servers[STANDBY]) if survivor is None and servers_after[STANDBY]["role"] != "down"
                        else None)
        checked = survivor or _restarted_old_primary(pair, progress)
        final = _table(checked)
        events = pair.events()
        extra_events = [e for e in faults.events if e is not fault]
    verdict = writecheck.check(writes, final)
    database = {
        "primary_after": survivor.host if survivor else None,
        # Each server as the run ended: never two primaries, and the survivor on a newer timeline.
        "servers_after": servers_after,
        "two_primaries": sum(s.get("role") == "primary" for s in servers_after.values()) > 1,
        "checked_against": checked.host if survivor else f"{checked.host} (restarted after the run: no server "
                                                         "was promoted)",
        "verdict": {**asdict(verdict), "valid": verdict.valid},
        # Acknowledged writes the standby lacked: what its promotion would have lost (None: one was promoted).
        "standby_would_lose": (None if standby_held is None
                               else list(writecheck.check(writes, standby_held).acknowledged_lost)),
        "write_outage": writecheck.write_outage(writes, fault.at),
        "outage_parts": outage_parts(events, writes, fault.at),
        "replication_lag_before": lag,
        "other_faults": [asdict(e) for e in extra_events],
    }
    requests = [Request(w.id, w.invoked, w.completed if w.outcome == "ok" else None, w.node,
                        None if w.outcome == "ok" else w.outcome) for w in writes]
    return record("three-tier", opts, fault, requests, events, run_dir, database=database)


def start_web_tier(lab: Lab, topo: ThreeTierTopo, passfile: Path) -> None:
    """harness.webapp on every web server, on its front address, writing through the DB VIP;
    returns once the load balancer has them all in its pool."""
    apps = [WebApp(lab, host, str(topo.addresses[host][0].ip), str(topo.db_vip.ip), passfile).launch()
            for host in topo.hosts_with_role("backend")]
    for app in apps:
        app.wait_ready()
    lb.wait_for_pool(lab, timeout=20, service_name="web")


def _start_writer(lab: Lab, topo: ThreeTierTopo, opts: ThreeTierOptions, passfile: Path, seconds: float,
                  progress: Progress) -> tuple[LabProcess, Path]:
    """The writer: on client1 through the web VIP, or on web1 straight to the DB VIP."""
    out = lab.run_dir / "writes.jsonl"
    common = ["--rate", f"{opts.rate:g}", "--seconds", f"{seconds:g}", "--out", str(out)]
    host = WRITERS[opts.writes]
    if opts.writes == "web":
        target = str(topo.vip.ip)
        argv = ["--via-web", "--host", target, "--timeout", "2", *common]
    else:
        target = str(topo.db_vip.ip)
        argv = ["--host", target, "--passfile", str(passfile), "--timeout", "1", *common]
    progress(f"writing {opts.rate:g}/s from {host} to {target} for {seconds:.1f} s")
    return lab.spawn(host, "dbwriter", [sys.executable, "-m", "harness.dbwriter", *argv]), out


def _inject(faults: Faults, opts: ThreeTierOptions, pair: ManagedPair | PatroniPair, lead: float,
            progress: Progress) -> tuple[FaultEvent, Undo]:
    kind = opts.fault
    if kind == "db-primary-crash":
        return faults.crash_host(PRIMARY), None
    if kind == "db-link-cut":
        return faults.cut_link(PRIMARY, "s2"), lambda: faults.restore_link(PRIMARY, "s2")
    if kind == "db-process-kill":
        return faults.record("process-kill", f"postgres@{PRIMARY}", pair.servers[PRIMARY].kill_postmaster()), None
    cut = faults.cut_tcp(STANDBY, PRIMARY, PORT)
    if kind == "replication-cut":
        return cut, lambda: faults.restore_tcp(STANDBY, PRIMARY)
    progress(f"replication cut; crashing {PRIMARY} in {lead:g} s")
    time.sleep(lead)
    return faults.crash_host(PRIMARY), None


def outage_parts(events: list[Event], writes: list[dbwriter.Write], fault_at: float) -> dict[str, float] | None:
    """Where the write outage went, from the standby's own log: detection (the fault until it
    declared the primary dead, or heard it give up), fencing (until the controller confirmed),
    promotion and the VIP's move (until the first write acknowledged by it). None when it did not
    take over (or, Patroni, when its log has no such steps)."""
    mine = [e for e in sorted(events, key=lambda e: e.at) if e.host == STANDBY and e.subject == STANDBY
            and e.at >= fault_at]
    detected = next((e.at for e in mine if e.state in ("FENCING", "ACTIVE")), None)
    active = next((e.at for e in mine if e.state == "ACTIVE"), None)
    first = min((w.completed for w in writes if w.outcome == "ok" and w.node == STANDBY and w.invoked >= fault_at),
                default=None)
    if detected is None or active is None or first is None:
        return None
    return {"detection": detected - fault_at, "fencing": active - detected, "promotion_and_vip": first - active}


def _replication_lag(primary: PostgreSQL) -> dict | None:
    """pg_stat_replication on the primary just before the fault: lag in seconds and bytes."""
    row = primary.sql("SELECT application_name, sync_state, extract(epoch FROM write_lag), "
                      "extract(epoch FROM flush_lag), extract(epoch FROM replay_lag), "
                      "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication")
    if not row:
        return None
    name, state, *numbers = row.splitlines()[0].split("\t")
    write, flush, replay, behind = (float(n) if n else None for n in numbers)
    return {"standby": name, "sync_state": state, "write_lag": write, "flush_lag": flush, "replay_lag": replay,
            "replay_bytes_behind": behind}


def _server_state(server: PostgreSQL) -> dict:
    """Whether the server answers, as what, on which timeline (a primary's is the one it writes)."""
    try:
        role = "standby" if server.in_recovery() else "primary"
        return {"role": role, "timeline": server.timeline()}
    except HalabError:
        return {"role": "down"}


def _primary_now(pair: ManagedPair | PatroniPair) -> PostgreSQL | None:
    """The server that is a primary now (None: none is, or none answers)."""
    return next((server for server in pair.servers.values() if is_primary(server)), None)


def _restarted_old_primary(pair: ManagedPair | PatroniPair, progress: Progress) -> PostgreSQL:
    """No server was promoted (writes stopped rather than risk losing some): what the old primary
    acknowledged is on its disk. Start it again, as its host would after a reboot (its links stay
    down: nobody else can reach it), so that the checker reads its table."""
    old = pair.servers[PRIMARY]
    progress(f"no server was promoted; restarting {PRIMARY}'s PostgreSQL, cut off, to read what it acknowledged")
    if old.alive():
        old.stop()
    old.start()
    return old


def _table(server: PostgreSQL) -> set[int]:
    return {int(i) for i in server.sql("SELECT id FROM writes", database="app").split()}


SCENARIO = Scenario("three-tier", "a replicated PostgreSQL pair behind a VIP, managed by halab's heartbeat agents; "
                    "one fault on the primary; every write checked", ThreeTierOptions, run,
                    lambda _opts: ThreeTierTopo(webs=WEBS).nodes())
