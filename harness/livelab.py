"""A lab that stays up: a lab file brought to life, its agents running, faults applied and undone on demand.

`LiveLab` is what `halab up` holds: the Lab (network, controller, certain teardown) plus every
agent the lab file names, the faults standing right now (so `restore` can undo all of them), and
the probe that `watch` follows. Every operation takes one lock: the prompt and the control socket
may ask at the same time. It also writes the lab's descriptor (`halab ls`, `halab exec` read it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from controller.lb_config import LbConfig
from ha.eventlog import EventLog
from ha.heartbeat import config as heartbeat_config
from ha.statusfile import write_atomically
from ha.vrrp import config as vrrp_config
from harness import lb, probe
from harness.daemons import Controller, Daemon, HalabHeartbeat, HalabVrrp, HAProxy, Keepalived, Responder, WebApp
from harness.daemons.postgresql import PostgreSQL, require_postgresql
from harness.daemons.vrrp import VrrpDaemon
from harness.dbtier import is_primary
from harness.dbwriter import WEB_PORT
from harness.errors import HalabError
from harness.faults import Faults
from harness.lab import Lab, start_thread
from harness.labfile import AgentSpec, LabSpec, agent_tables
from harness.labinfo import control_socket, descriptor_path, file_digest
from harness.process import LabProcess
from harness.procs import start_ticks
from harness.servers import is_remote, local_pid
from harness.verbgrammar import SIGNALS

VIP_TIMEOUT_S = 30.0
#: The live probe runs at most this long; `probe start` again for more.
PROBE_MAX_S = 3600.0
#: How old a status row that is slow to get (a database's role, the balancer's pool) may be.
SLOW_STATUS_S = 2.0


@dataclass
class StandingFaults:
    """What is broken now, so that `restore` can mend all of it."""

    cut: set[tuple[str, str]] = field(default_factory=set)
    loss: set[tuple[str, str]] = field(default_factory=set)
    partitioned: bool = False
    frozen: set[str] = field(default_factory=set)  # daemon names
    crashed: set[str] = field(default_factory=set)  # hosts


class LiveLab:
    def __init__(self, spec: LabSpec, run_dir: Path, mode: str = "foreground") -> None:
        self.spec = spec
        self.topo = spec.topo()
        self.run_dir = run_dir.resolve()
        self.mode = mode
        self.lab = Lab(self.topo, run_dir, lb=self._lb_config(),
                       fencing=self._has("halab-heartbeat") or spec.database is not None, assist=spec.assisted,
                       servers=spec.servers)
        self.app_passfile: Path | None = None   # the web tier's password for the database
        self.daemons: list[Daemon] = []
        self.faults: Faults | None = None
        self.standing = StandingFaults()
        self.probe: LabProcess | None = None
        self.lock = threading.RLock()
        self.started = time.time()
        self.lab_digest = file_digest(Path(spec.source))  # a lesson's config check: is the file still what runs?
        self.fences_seen_at = time.monotonic()  # the agents' fencing events up to here are in `fenced`
        self.fenced: set[str] = set()           # nodes an agent fenced, not yet let back
        #: What was done to the lab (faults, restores), from the prompt, the control socket or the page.
        self.actions = EventLog(self.run_dir / "lab-events.jsonl", "halab")
        self._timers: list[threading.Timer] = []
        self._slow_status: dict[str, tuple[float, dict]] = {}

    @property
    def vip(self) -> str | None:
        """The service's virtual address: the topology's, or the address the probe aims at when an
        agent of the lab holds it in its place (a student's own VIP)."""
        target = self.spec.probe.target
        if target != "vip" and any(target in d.addresses() for d in self._vip_agents()):
            return target
        return str(self.topo.vip.ip) if self.topo.vip is not None else None

    # --- life cycle ---------------------------------------------------------------------

    def start(self, progress=lambda _m: None) -> None:
        if self.spec.database is not None:
            require_postgresql()   # before anything starts
        progress("starting the lab network")
        self.lab.start()
        try:
            self.faults = Faults(self.lab)
            self._shape_links()
            if self.spec.database is not None:
                db = self.spec.database
                progress(f"starting the database tier ({db.replication} replication, managed by {db.manager})")
                pair = db.start(self.lab, self.topo.db_vip)  # type: ignore[attr-defined]
                self.daemons += pair.daemons()
                self.app_passfile = pair.cluster.write_app_passfile(self.run_dir / "app.pgpass")
            progress("starting the agents")
            self.daemons += [self._daemon(agent, host).launch() for agent in self.spec.agents
                             for host in agent.hosts_in(self.topo)]
            for d in self.daemons:  # all at once: each one's start-up overlaps the others'
                if d.process is not None:
                    d.wait_ready()
            if self.spec.lb == "haproxy":
                self._haproxy_on_proxy()
            if self.spec.lb == "sdn":
                progress("waiting until every backend is in the pool")
                lb.wait_for_pool(self.lab, timeout=20)
            target = self.probe_target()
            progress(f"waiting for {target} to answer")
            self.lab.wait_for_answer(self.spec.probe.source, target, VIP_TIMEOUT_S, proto=self.spec.probe.proto)
            self._write_descriptor()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        with self.lock:
            self.lab.stop()  # stops every process it spawned, agents and probe included
            descriptor_path().unlink(missing_ok=True)

    # --- what the lab is running --------------------------------------------------------

    def probe_target(self) -> str:
        target = self.spec.probe.target
        if target == "vip":
            if self.vip is None:
                raise HalabError(f"{self.spec.source}: probe target \"vip\", but this topology has no VIP.",
                                 "Give the probe an address as its target.")
            return self.vip
        return target

    def daemon(self, host: str, program: str) -> Daemon:
        if program == "controller":
            assert self.lab.controller is not None
            return self.lab.controller
        self.require_host(host)
        found = [d for d in self.daemons if d.host == host and d.program == program]
        if not found:
            mine = [*sorted({d.program for d in self.daemons if d.host == host}), "controller"]
            raise HalabError(f"{host} runs no {program}.", f"{host} runs: {', '.join(mine)}.")
        return found[0]

    def require_host(self, host: str) -> None:
        if host not in self.topo.roles:
            raise HalabError(f"This lab has no host {host!r}.", f"Choose one of: {', '.join(sorted(self.topo.roles))}.")

    def switches_of(self, host: str) -> list[str]:
        return sorted({b if a == host else a for a, b in self.topo.links() if host in (a, b)})

    def switch_of(self, host: str, switch: str | None) -> str:
        """The switch of `host`'s link: the one named, or its only one."""
        self.require_host(host)
        switches = self.switches_of(host)
        if switch is None:
            if len(switches) == 1:
                return switches[0]
            raise HalabError(f"{host} has links to {' and '.join(switches)}.",
                             f"Name one: e.g. `{host} {switches[0]}`.")
        if switch not in switches:
            raise HalabError(f"{host} has no link to {switch!r}.", f"Its switches: {', '.join(switches)}.")
        return switch

    # --- looking at it ------------------------------------------------------------------

    def vip_report(self) -> dict:
        """Who holds the VIP (has the address configured) and who answers it, seen from the probe's host."""
        with self.lock:
            target = self.probe_target()
            holders = [h for h in sorted(self.topo.roles) if h not in self.standing.crashed
                       and self.lab.run(h, ["ip", "-4", "-o", "addr", "show", "to", target], timeout=5).stdout.strip()]
            answer = self.lab.who_answers(self.spec.probe.source, [target], self.spec.probe.proto).get(target)
            return {"address": target, "holders": holders, "answers": answer, "from": self.spec.probe.source,
                    "proto": self.spec.probe.proto}

    def status(self) -> dict:
        with self.lock:
            claims = self.vip_claims()
            agents = [self._agent_status(d) for d in [self.lab.controller, *self.daemons] if d is not None]
            standing = {"cut": sorted("-".join(c) for c in self.standing.cut),
                        "loss": sorted("-".join(c) for c in self.standing.loss),
                        "partitioned": self.standing.partitioned, "frozen": sorted(self.standing.frozen),
                        "crashed": sorted(self.standing.crashed)}
            return {"topology": self.spec.topology, "lab_file": self.spec.source, "run_dir": str(self.run_dir),
                    "agents": agents, "faults": standing, "hosts": dict(self.topo.roles), "links": self.links(),
                    "vip": self._vip(claims), "vips": claims,
                    "probe": {"running": self.probe is not None and self.probe.alive(),
                              "log": str(self.probe.log_path) if self.probe else None, "rate": self.spec.probe.rate,
                              "from": self.spec.probe.source, "proto": self.spec.probe.proto}}

    def _agent_status(self, d: Daemon) -> dict:
        """agent_status, but a database's role (a query in its host) and a balancer's pool (a
        request to the controller or HAProxy) at most every SLOW_STATUS_S: the live view asks twice a second."""
        if not isinstance(d, PostgreSQL | Controller | HAProxy):
            return agent_status(d)
        now = time.monotonic()
        kept = self._slow_status.get(d.name)
        if kept is None or now - kept[0] > SLOW_STATUS_S:
            kept = self._slow_status[d.name] = (now, agent_status(d))
        return kept[1]

    def links(self) -> list[dict]:
        """Every link and its state now: up, cut, lossy, or down with its crashed host."""
        out = []
        for a, b in self.topo.links():
            host, sw = (a, b) if a in self.topo.roles else (b, a)
            state = ("down" if host in self.standing.crashed else "cut" if (host, sw) in self.standing.cut
                     else "lossy" if (host, sw) in self.standing.loss else "up")
            out.append({"a": host, "b": sw, "state": state})
        return out

    def vip_claims(self) -> dict[str, list[str]]:
        """Each virtual address, and the hosts whose agent says it holds it now (a VRRP master, an
        active heartbeat node): cheap (their event logs), where `vip_report` asks every host. Two
        hosts for one address is a split brain."""
        claims: dict[str, set[str]] = {}
        for d in self._vip_agents():
            if d.host not in self.standing.crashed and d.alive():
                for address in d.held():
                    claims.setdefault(address, set()).add(d.host or "root")
        return {address: sorted(hosts) for address, hosts in sorted(claims.items())}

    def _vip(self, claims: dict[str, list[str]]) -> dict:
        """The probe's address: who claims it, who may (the page moves the badge on their events), the balancer."""
        target = self.probe_target()
        may = sorted({d.host or "root" for d in self._vip_agents() if target in d.addresses()})
        return {"address": target, "claimed_by": claims.get(target, []), "candidates": may,
                "balancer": self.spec.lb}

    def _vip_agents(self) -> list[VrrpDaemon | HalabHeartbeat]:
        return [d for d in self.daemons if isinstance(d, VrrpDaemon | HalabHeartbeat)]

    # --- the probe that `watch` follows -------------------------------------------------

    def start_probe(self) -> LabProcess:
        with self.lock:
            self.stop_probe()
            p = self.spec.probe
            self.probe = self.lab.spawn(p.source, "probe-live", probe.command(
                "client", "--target", self.probe_target(), "--port", str(probe.PORT), "--proto", p.proto,
                "--rate", f"{p.rate:g}", "--duration", f"{PROBE_MAX_S:g}", "--live",
                "--out", str(self.run_dir / "probe-live.json")))
            self.probe.wait_for("sending", timeout=15)
            return self.probe

    def stop_probe(self) -> None:
        with self.lock:
            if self.probe is not None:
                self.probe.stop()
                self.probe = None

    # --- captures -----------------------------------------------------------------------

    def capture(self, host: str, switch: str | None = None) -> str:
        """tcpdump on the host's end of its link to `switch`, to a pcap in the run directory."""
        with self.lock:
            sw = self.switch_of(host, switch)
            intf = self.lab.host(host).connectionsTo(self.lab.host(sw))[0][0].name
            pcap = self.run_dir / f"capture-{intf}.pcap"
            # --immediate-mode: each packet as it comes (else libpcap hands them over in blocks,
            # up to a second late, and a short capture stopped by `capture stop` is empty)
            proc = self.lab.spawn(host, f"capture-{intf}", ["tcpdump", "-i", intf, "--immediate-mode", "-U",
                                                             "-w", str(pcap), "-c", "1000000"])
            proc.wait_for("listening on", timeout=10)
            return f"capturing {intf} to {pcap} (`capture stop` ends it)"

    def stop_captures(self) -> str:
        with self.lock:
            stopped = [p for p in self.lab.processes if p.name.startswith("capture-") and p.alive()]
            for p in stopped:
                p.popen.send_signal(signal.SIGINT)  # tcpdump writes its last packets out
                try:
                    p.popen.wait(5)
                except subprocess.TimeoutExpired:
                    p.stop()
            return "\n".join(f"stopped {p.name} on {p.host}" for p in stopped) or "no capture was running"

    # --- faults -------------------------------------------------------------------------

    def cut(self, host: str, switch: str | None = None) -> str:
        with self.lock:
            sw = self.switch_of(host, switch)
            self._faults().cut_link(host, sw)
            self.standing.cut.add((host, sw))
            return f"cut {host}-{sw}"

    def restore_link(self, host: str, switch: str | None = None) -> str:
        with self.lock:
            sw = self.switch_of(host, switch)
            self._faults().restore_link(host, sw)
            self.standing.cut.discard((host, sw))
            return f"restored {host}-{sw}"

    def partition(self, side_a: list[str], side_b: list[str]) -> str:
        with self.lock:
            for h in side_a + side_b:
                self.require_host(h)
            self._faults().partition(side_a, side_b)
            self.standing.partitioned = True
            return f"partitioned {','.join(side_a)} | {','.join(side_b)}"

    def heal(self) -> str:
        with self.lock:
            self._faults().heal()
            self.standing.partitioned = False
            return "healed the partition"

    def loss(self, host: str, percent: float, switch: str | None = None) -> str:
        with self.lock:
            sw = self.switch_of(host, switch)
            if percent == 0:
                self._faults().clear_loss(host, sw)
                self.standing.loss.discard((host, sw))
                return f"no more loss on {host}-{sw}"
            self._faults().clear_loss(host, sw)
            self._faults().loss(host, sw, percent)
            self.standing.loss.add((host, sw))
            return f"{percent:g}% loss each way on {host}-{sw}"

    def flap(self, host: str, switch: str | None, period: float, count: int) -> str:
        with self.lock:
            sw = self.switch_of(host, switch)
            self._faults().flap(host, sw, period, count)
            return f"flapped {host}-{sw} {count} times, every {period:g} s; it is up"

    def signal(self, action: str, host: str, program: str) -> str:
        with self.lock:
            d = self.daemon(host, program)
            target = d.advertiser() if isinstance(d, VrrpDaemon) and action in ("stop", "cont") else d
            if not d.alive():
                raise HalabError(f"{d.name} is not running.", "`fault restore` starts it again.")
            faults = self._faults()
            if action == "kill" and isinstance(d, VrrpDaemon):
                faults.record("kill", d.name, d.crash())  # keepalived's VRRP child too, as a crash would
            else:
                send = {"kill": faults.kill, "term": faults.terminate, "stop": faults.freeze, "cont": faults.thaw}
                send[action](target)
            if action == "stop":
                self.standing.frozen.add(d.name)
            elif action == "cont":
                self.standing.frozen.discard(d.name)
            return f"sent SIG{SIGNALS[action].name[3:]} to {d.name}"

    def crash(self, host: str) -> str:
        with self.lock:
            self.require_host(host)
            self._faults().crash_host(host)
            self.standing.crashed.add(host)
            return f"crashed {host}: its links are down and its processes killed"

    def restore(self) -> list[str]:
        """Undo every standing fault and start every agent that is not running."""
        with self.lock:
            done = []
            for host, sw in sorted(self.standing.cut):
                done.append(self.restore_link(host, sw))
            for host, sw in sorted(self.standing.loss):
                done.append(self.loss(host, 0, sw))
            if self.standing.partitioned:
                done.append(self.heal())
            for host in sorted(self.standing.crashed):
                self._faults().restore_host(host)
                done.append(f"{host} is powered on again")
            self.standing.crashed.clear()
            done += self._unfence()
            for d in self.daemons:
                if d.name in self.standing.frozen:
                    (d.advertiser() if isinstance(d, VrrpDaemon) else d).signal(signal.SIGCONT)
                    done.append(f"continued {d.name}")
            self.standing.frozen.clear()
            for d in self.daemons:
                if not d.alive():
                    d.start()
                    done.append(f"started {d.name} again")
            return done or ["nothing to restore"]

    def _unfence(self) -> list[str]:
        """Let back onto the network the nodes a heartbeat agent fenced: a restored lab is a healthy
        one, and the agents settle again who serves (a database tier's old primary is left to its own
        rejoin). A node whose unfencing failed is tried again at the next restore."""
        if self.spec.database is not None:
            return []
        now = time.monotonic()
        for d in self.daemons:
            if isinstance(d, HalabHeartbeat) and any(
                    e.at > self.fences_seen_at and e.state == "ACTIVE" and e.reason.startswith(f"{d.cfg.peer} fenced")
                    for e in d.events()):
                self.fenced.add(d.cfg.peer)
        self.fences_seen_at = now
        done = []
        for peer in sorted(self.fenced):
            answer = self.lab.fence("unfence", peer)
            if answer.get("ok"):
                self.fenced.discard(peer)
                done.append(f"unfenced {peer}")
            else:
                done.append(f"could not unfence {peer}: {answer.get('error')}")
        return done

    def later(self, seconds: float, undo) -> None:
        """Run `undo` after `seconds` (a fault given `--for`)."""

        def run() -> None:
            try:
                undo()
            except HalabError:
                pass  # the lab is going down, or the user mended it first

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        self._timers.append(timer)
        start_thread(timer)

    # --- internals ----------------------------------------------------------------------

    def _faults(self) -> Faults:
        assert self.faults is not None, "start() first"
        return self.faults

    def _has(self, program: str) -> bool:
        return any(a.program == program for a in self.spec.agents)

    def _lb_config(self) -> LbConfig | None:
        if self.spec.lb != "sdn":
            return None
        interval = self.spec.check_interval
        services = [lb.service(self.topo, protocol=self.spec.probe.proto, check=self.spec.probe.proto,
                               interval=interval)]
        if self._has("webapp"):
            services.append(lb.service(self.topo, name="web", port=WEB_PORT, interval=interval))
        return lb.config(*services, switches=self.topo.balanced_switches)

    def _daemon(self, agent: AgentSpec, host: str) -> Daemon:
        where = f"{self.spec.source}: {agent.program} on {host}"
        if agent.program == "responder":
            return Responder(self.lab, host)
        if agent.program in ("halab-vrrp", "keepalived"):
            vrrp = vrrp_config.parse(agent.config, where)
            if agent.program == "halab-vrrp":
                return HalabVrrp(self.lab, host, vrrp.instances, realtime_priority=vrrp.realtime_priority)
            return Keepalived(self.lab, host, vrrp.instances, realtime_priority=vrrp.realtime_priority)
        if agent.program == "webapp":
            db_vip = getattr(self.topo, "db_vip", None)
            if db_vip is None or self.app_passfile is None:
                raise HalabError(f"{where}: the web application needs a database tier.",
                                 "Use it in a three-tier lab, which has a [database] table.")
            return WebApp(self.lab, host, str(self.topo.addresses[host][0].ip), str(db_vip.ip), self.app_passfile)
        if agent.program == "halab-heartbeat":
            assert self.lab.cluster_secret is not None and self.lab.fence_socket is not None
            raw = {**agent.config, "secret": self.lab.cluster_secret,
                   "fencing": {"socket": str(self.lab.socket_for(host, "fence"))},
                   "event_log": str(self.run_dir / f"heartbeat-{host}.jsonl")}
            if self.lab.assist_socket is not None:
                raw["assist"] = {"socket": str(self.lab.socket_for(host, "assist"))}
            return HalabHeartbeat(self.lab, host, heartbeat_config.parse(raw, where))
        # haproxy: on a node that may not hold the VIP yet, so it may bind an address it does not have
        self.lab.run(host, ["sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"])
        cfg = agent.config  # defaults filled in by labfile
        return HAProxy(self.lab, host, self.probe_target(), {"probe": (cfg["port"], cfg["balance"])},
                       backend_role=cfg["backends"])

    def _haproxy_on_proxy(self) -> None:
        """active-active with `--lb haproxy`: proxy1 holds the VIP and HAProxy balances the backends."""
        listeners = {"probe": (probe.PORT, "roundrobin")}
        if self._has("webapp"):
            listeners["web"] = (WEB_PORT, "roundrobin")
        self.daemons.append(HAProxy.on_proxy(self.lab, listeners, interval=self.spec.check_interval))

    def _shape_links(self) -> None:
        links = self.spec.links
        for host in sorted(self.topo.roles):
            if links.delay:
                self._faults().delay(host, links.delay)
            if links.loss:
                for sw in self.switches_of(host):
                    self._faults().loss(host, sw, links.loss)

    def _write_descriptor(self) -> None:
        state = self.lab.state
        assert state is not None and self.lab.net is not None
        hosts = {h.name: {"pid": local_pid(h), "ticks": start_ticks(local_pid(h)),
                          "addresses": state.hosts.get(h.name, []),
                          **({"server": h.server, "remote_pid": h.pid} if is_remote(h) else {})}
                 for h in self.lab.net.hosts}
        agents = [{"host": d.host, "program": d.program} for d in self.daemons]
        logs = [{"host": d.host or "root", "path": str(d.event_log)}
                for d in [self.lab.controller, *self.daemons] if d is not None and d.event_log is not None]
        logs.append({"host": "root", "path": str(self.actions.path)})
        descriptor = {"topology": self.spec.topology, "lab_file": self.spec.source, "pid": os.getpid(),
                      "ticks": start_ticks(os.getpid()), "started": self.started, "mode": self.mode,
                      "lab_digest": self.lab_digest, "configs": agent_tables(self.spec),
                      "run_dir": str(self.run_dir.resolve()), "hosts": hosts, "agents": agents, "vip": self.vip,
                      "socket": str(control_socket()), "event_logs": logs}
        state.files = sorted(set(state.files) | {str(descriptor_path()), str(control_socket())})
        state.save()
        write_atomically(descriptor_path(), json.dumps(descriptor, indent=1))


def agent_status(d: Daemon) -> dict:
    """One line of `status`: where it runs, whether it runs, and its state in its own words."""
    pid = d.process.pid if d.process is not None else None
    row = {"host": d.host or "root", "program": d.program, "pid": pid, "running": d.alive()}
    if isinstance(d, VrrpDaemon):
        row["state"] = ", ".join(f"{k} {v}" for k, v in sorted(d.states().items())) or "starting"
    elif isinstance(d, HalabHeartbeat):
        row["state"] = d.role() or "starting"
    elif isinstance(d, PostgreSQL):
        row["state"] = "primary" if is_primary(d) else "standby or down"
    elif isinstance(d, Controller) and d.lb is not None:
        try:
            row["state"] = "; ".join(_pool(service["name"], len(service["backends"]),
                                           [lb.backend_host(d.lab.topo, b["backend"]) for b in service["backends"]
                                            if not b["in_pool"]])
                                     for service in lb.status(d.lab)["switches"][0]["services"])  # type: ignore[arg-type]
        except Exception as exc:  # status must show, not fail
            row["state"] = f"no answer ({exc})"
    elif isinstance(d, HAProxy) and d.alive() and not d.frozen():
        try:
            listeners: dict[str, list[dict]] = {}
            for server in d.servers(timeout=0.5):
                listeners.setdefault(server["listener"], []).append(server)
            row["state"] = "; ".join(_pool(name, len(servers), [s["server"] for s in servers if not s["in_pool"]])
                                     for name, servers in listeners.items())
        except OSError as exc:
            row["state"] = f"no answer ({exc})"
    if d.frozen():
        row["state"] = "frozen (SIGSTOP)"
    return row


def _pool(name: str, size: int, out: list[str]) -> str:
    return f"{name}: {size - len(out)}/{size} in pool" + (f" (out: {', '.join(out)})" if out else "")



