"""The lab network at run time: a topology on Open vSwitch, the controller, and host processes.

`Lab` is a context manager. Whatever ends the block (normal exit, exception, Ctrl-C, SIGTERM,
a failing test), everything it started is stopped and everything it created is removed; and
what an earlier run could not remove (it was SIGKILLed) is removed when the next one starts.
Both paths go through the same code: runstate records, cleanup.undo removes.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from controller import api
from controller.lb_config import LbConfig
from ha.assist import DEFAULT_DEBOUNCE_S
from ha.heartbeat import fencing
from ha.statusfile import state_root
from harness import cleanup, clocks, preflight, probe, servers
from harness.clocks import ClockOffset
from harness.daemons.controller import Controller
from harness.daemons.responder import Responder
from harness.errors import HalabError
from harness.process import LabProcess, RemoteProcess
from harness.procs import netns_inode
from harness.runstate import LabLock, RunState
from harness.servers import ServerPlan
from topologies.base import LabTopo

log = logging.getLogger("halab.lab")

CONTROLLER_START_TIMEOUT_S = 20.0
SWITCH_CONNECT_TIMEOUT_S = 20.0
CONNECT_CHECK_TIMEOUT_S = 2.0
_TERMINATING_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def start_thread(thread: threading.Thread) -> threading.Thread:
    """Start a helper thread that never receives SIGINT, SIGTERM or SIGHUP (it inherits them blocked).

    A signal for the process may land on any thread that does not block it; Python then runs
    the handler only when the main thread next runs Python code. If the main thread is waiting
    in C (the prompt's readline), the lab would not hear `halab down` or a closed terminal.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATING_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return thread


def _hear_terminating_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERMINATING_SIGNALS)


def heard_signals() -> dict:
    """Popen's arguments for a long-running program: a child inherits its thread's signal mask,
    so one started from a helper thread (an agent that `fault restore` restarts, a probe, a
    capture) would ignore SIGTERM and be killed after the stop's grace, an agent without its
    goodbye. Only then a `preexec_fn` unblocks them: it makes Python fork instead of vfork, which
    costs (measured here, with Mininet and the lab imported) 4 ms a program instead of 1."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return {"preexec_fn": _hear_terminating_signals} if blocked & _TERMINATING_SIGNALS else {}


def _lab_switch_class(cluster: bool = False):
    """The lab's switch; `cluster`: one that may run on another server (the cluster edition's)."""
    if cluster:
        from mininet.examples.cluster import RemoteOVSSwitch as Base
    else:
        from mininet.node import OVSSwitch as Base

    class LabSwitch(Base):
        """An OVS bridge marked with the run that created it, so clean-up can find it and only it."""

        if cluster:
            _ignoreSignal = staticmethod(servers.detach)  # noqa: N815 (the cluster edition's name)

        def __init__(self, name: str, run_id: str = "", **params: object) -> None:
            self.run_id = run_id
            super().__init__(name, **params)

        def bridgeOpts(self) -> str:  # noqa: N802 (Mininet's name)
            return super().bridgeOpts() + f" external_ids:{cleanup.RUN_KEY}={self.run_id}"

    return LabSwitch


def _tunnel_link_class():
    """A link that is an ssh tunnel when its ends are on two servers, configured like TCLink
    (the lab's link options, bw, delay, loss, txo and rxo, apply to both ends)."""
    from mininet.examples.cluster import RemoteSSHLink
    from mininet.link import TCIntf

    class LabTunnelLink(RemoteSSHLink):
        def __init__(self, *args, **kwargs) -> None:
            # As TCLink does: each end's own parameters (params1: a host's address on its second
            # network) kept, the link's options added to both.
            kwargs.setdefault("cls1", TCIntf)
            kwargs.setdefault("cls2", TCIntf)
            super().__init__(*args, **kwargs)

    return LabTunnelLink


def lab_controller_class():
    from mininet.node import RemoteController

    class LabController(RemoteController):
        """The lab's os-ken controller, checked with a plain TCP connect.

        Mininet's own check pipes `telnet` to the port and decodes the answer as UTF-8; the
        controller's OpenFlow HELLO often arrives first, and its random transaction id is not
        valid UTF-8 (UnicodeDecodeError at start-up). This confirms it without reading a byte;
        a lab passes `checked_by_lab`, since it builds the network while the controller starts
        and waits until it listens before any switch starts (`Lab.wait_for_controller`).
        """

        def __init__(self, name: str, *args, checked_by_lab: bool = False, **kwargs) -> None:
            self.checked_by_lab = checked_by_lab
            super().__init__(name, *args, **kwargs)

        def stop(self) -> None:
            """Mininet's RemoteController.stop does nothing, which leaves the node's shell (an
            interactive bash, deaf to SIGTERM) for the teardown to wait on and then kill: end it."""
            self.terminate()

        def checkListening(self) -> None:  # noqa: N802 (Mininet's name)
            if self.checked_by_lab:
                return
            try:
                socket.create_connection((self.ip, self.port), timeout=CONNECT_CHECK_TIMEOUT_S).close()
            except OSError as exc:
                self.terminate()  # the node's shell started before this check
                raise HalabError(f"The controller does not listen on {self.ip}:{self.port} "
                                 f"({exc.strerror or exc}).",
                                 "See controller.log in the run directory.") from None

    return LabController


class Lab:
    """A topology running on OVS with an os-ken controller; use as `with Lab(topo, run_dir) as lab:`."""

    def __init__(self, topo: LabTopo, run_dir: Path, lb: LbConfig | None = None, fencing: bool = False,
                 assist: bool = False, assist_debounce: float = DEFAULT_DEBOUNCE_S,
                 servers: ServerPlan | None = None) -> None:
        """`lb`: the controller runs the load balancer with these services (besides the L2 switch).
        `fencing`: the controller serves fencing requests on `fence_socket`, signed with
        `cluster_secret`, which is made for this lab alone and never leaves its run directory.
        `assist`: it tells the agents on `assist_socket` when their peer's port goes down (and has
        stayed down for `assist_debounce` seconds). `servers`: spread the lab over these machines
        (harness.servers); the controller then listens on the address they reach this one at, and
        ssh carries its sockets to them (`socket_for`)."""
        self.topo = topo
        self.run_dir = run_dir
        self.lb = lb
        self.cluster_secret = secrets.token_hex(16) if fencing else None
        self.fence_socket: Path | None = None
        self.assist, self.assist_debounce = assist, assist_debounce
        self.assist_socket: Path | None = None
        self.controller: Controller | None = None
        self.servers = servers or ServerPlan()
        if self.servers:  # its files are named to daemons on other servers: by full path
            self.run_dir = run_dir.resolve()
        self.controller_host = "127.0.0.1"
        self._sessions: list[subprocess.Popen] = []  # ssh to the servers: their locks, the sockets' relays
        self.clocks: dict[str, ClockOffset] = {}     # each remote server's monotonic clock against ours
        self.openflow_port = 0
        self.api_port = 0
        self.net = None
        self.state: RunState | None = None
        self.processes: list[LabProcess] = []
        self.datapath = "user"
        self._lock = LabLock()
        self._old_handlers: dict[int, object] = {}

    # --- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        preflight.check_all()
        self._lock.acquire()
        try:
            self._catch_termination()
            for line in cleanup.clean_leftovers():
                log.warning("removed a leftover of an earlier run: %s", line)
            self._refuse_foreign_bridges()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            servers.check(self.servers, self.run_dir, list(self.topo.switches()))
            self._sessions = servers.hold_locks(self.servers)
            if self.servers:
                self.controller_host = servers.controller_address(self.servers)
                self.clocks = {server: clocks.measure(server) for server in self.servers.remote}
                for server, offset in self.clocks.items():
                    log.info("server %s: its clock is %+.6f s from ours (within %.6f s)", server, offset.seconds,
                             offset.uncertainty)
            self.state = RunState.new()
            self.state.servers = list(self.servers.remote)
            for lock in self._sessions:
                self.state.track(lock.pid, "lab lock on another server")
            self.datapath = preflight.ovs_datapath()
            # The status API on its usual port when it is free, so that `halab-controller status`
            # finds the running lab as printed; any free port otherwise.
            self.openflow_port, self.api_port = _free_tcp_port(), _free_tcp_port(api.DEFAULT_PORT)
            self.start_controller(wait=False)  # its imports take as long as building the network: both at once
            self._forward_sockets()
            self._start_network(self.openflow_port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything and remove what was created; safe to call twice and after a failed start.

        A second Ctrl-C or SIGTERM during teardown waits until the teardown is done.
        """
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATING_SIGNALS)
        try:
            self._stop_processes()
            if self.net is not None:
                try:
                    self.net.stop()
                except Exception as exc:
                    log.warning("Mininet stop: %s", exc)
                self.net = None
            if self.state is not None:
                cleanup.undo(self.state)
                self.state = None
            servers.release(self._sessions)
            self._sessions = []
        finally:
            self.processes.clear()
            self._restore_signals()
            self._lock.release()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _stop_processes(self) -> None:
        """The hosts' programs all at once (keepalived alone takes a second to leave; a lab of
        many took as many seconds), then the root namespace's (the controller), which agents
        may still ask to fence while they stop."""

        def stop(proc: LabProcess) -> None:
            try:
                proc.stop()
            except OSError as exc:
                log.warning("stopping %s: %s", proc.name, exc)

        on_hosts = [p for p in self.processes if p.host != "root"]
        with ThreadPoolExecutor(max_workers=32) as pool:  # its threads inherit the blocked signals
            list(pool.map(stop, on_hosts))
        for proc in reversed([p for p in self.processes if p.host == "root"]):
            stop(proc)

    # --- using the lab ------------------------------------------------------------------

    def host(self, name: str):
        if self.net is None or name not in self.net:
            raise KeyError(f"no host {name!r} in this lab")
        return self.net[name]

    def spawn(self, host: str | None, name: str, argv: list[str]) -> LabProcess:
        """Start a long-running process on `host` (None: the root namespace, in a session of its
        own), output to <run_dir>/<host>-<name>.log (<name>.log in the root namespace)."""
        log_path = self.run_dir / (f"{host}-{name}.log" if host else f"{name}.log")
        out = log_path.open("ab")
        if host is None:
            out.write(f"$ {' '.join(argv)}\n".encode())  # several starts share the log: say which is which
            out.flush()
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, **heard_signals())
            return self._adopt(LabProcess(name, "root", popen, log_path, out))
        node = self.host(host)
        offset = log_path.stat().st_size
        popen = self._popen(node, argv, announce_pid=True, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, **heard_signals())
        if servers.is_remote(node):
            return self._adopt(RemoteProcess(name, host, popen, log_path, out, server=node.server, log_offset=offset))
        return self._adopt(LabProcess(name, host, popen, log_path, out))

    def _popen(self, node, argv: list[str], announce_pid: bool = False, timeout: float | None = None,
               **kwargs) -> subprocess.Popen:
        """Start `argv` in a host's namespace. A host of a cluster lab (the cluster edition's
        RemoteHost, even on this machine) is entered with `mnexec -a`, not Mininet's `-da`: its
        popen already puts the process in a group of its own, and `-d` then forks and exits,
        so the handle would end at once. On another server, the words are quoted for ssh, and a
        `timeout` ends the command there too (killing the ssh client here would not)."""
        if not self.servers:
            return node.popen(argv, **kwargs)
        if servers.is_remote(node):
            assert self.state is not None
            argv = servers.remote_argv(argv, self.state.run_id, announce_pid, timeout)
        return node.popen(argv, mncmd=["mnexec", "-a", str(node.pid)], **kwargs)

    def server_of(self, host: str) -> str:
        """The server `host` runs on ("localhost": this machine)."""
        node = self.host(host)
        return node.server if servers.is_remote(node) else servers.LOCAL

    def clock_of(self, host: str) -> ClockOffset:
        """How the monotonic clock of `host`'s machine stands against this one's: what turns the
        times its programs write into this machine's."""
        return self.clocks.get(self.server_of(host), clocks.SAME)

    def responder(self, host: str) -> Responder:
        """Start the probe responder on `host` (it answers with the host's name) and wait until it serves."""
        return Responder(self, host).start()

    def who_answers(self, src: str, targets: list[str], proto: str = "udp", port: int = probe.PORT) -> dict:
        """Which server answers at each target address, as seen from host `src` (None: nobody)."""
        result = self.run(src, probe.command("check", "--proto", proto, "--port", str(port), *targets), timeout=30)
        try:
            return json.loads(result.stdout)
        except ValueError:
            raise HalabError(f"The probe on {src} failed: {result.stderr.strip()[-500:]}",
                             f"See the logs in {self.run_dir}.") from None

    def wait_for_answer(self, src: str, target: str, timeout: float, expect: str | None = None,
                        proto: str = "udp") -> str:
        """Poll `target` from `src` until a server (or the one named `expect`) answers; its name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.who_answers(src, [target], proto).get(target)
            if answer is not None and expect in (None, answer):
                return answer
            time.sleep(0.2)
        raise HalabError(f"{expect or 'No server'} did not answer on {target} from {src} within {timeout:.0f} s.",
                         f"See the daemons' logs in {self.run_dir}.")

    def fence(self, action: str, host: str) -> dict:
        """Fence or unfence `host` through the lab's controller, signed with the cluster's secret;
        the controller's answer ({"ok": ..., ...})."""
        if self.fence_socket is None or self.cluster_secret is None or self.state is None:
            raise HalabError("This lab has no fencing.", "Start it with Lab(..., fencing=True).")
        return fencing.request(self.fence_socket, self.cluster_secret.encode(), action, host, self.state.hosts[host])

    def run(self, host: str, argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a short command on `host` and wait for it (killed after `timeout` seconds)."""
        popen = self._popen(self.host(host), argv, timeout=timeout, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
        try:
            out, err = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            out, err = popen.communicate()
        return subprocess.CompletedProcess(argv, popen.returncode, out, err)

    def record_dir(self, path: Path) -> None:
        """A directory this run made outside its run directory (PostgreSQL's data): the teardown,
        or `halab clean` after a crash, deletes it."""
        assert self.state is not None
        if str(path) not in self.state.dirs:
            self.state.dirs.append(str(path))
            self.state.save()

    # --- internals ----------------------------------------------------------------------

    def _adopt(self, proc: LabProcess) -> LabProcess:
        self.processes.append(proc)
        assert self.state is not None
        self.state.track(proc.popen.pid, f"{proc.host}:{proc.name}")  # on another server: the ssh client
        return proc

    def start_controller(self, wait: bool = True) -> Controller:
        """Start the controller (again, after a fault killed it) and wait until it listens (or,
        `wait` False, leave that to `wait_for_controller`)."""
        if self.cluster_secret is not None and self.fence_socket is None:
            assert self.state is not None
            # Unix socket paths are short (108 bytes): not in a test's deep run directory.
            self.fence_socket = state_root() / f"fence-{self.state.run_id}.sock"
        if self.assist and self.assist_socket is None:
            assert self.state is not None
            self.assist_socket = state_root() / f"assist-{self.state.run_id}.sock"
        self.controller = Controller(self, self.openflow_port, self.api_port, self.lb, self.fence_socket,
                                     self.cluster_secret, self.assist_socket, self.assist_debounce,
                                     host=self.controller_host, relay_dir=self._relay_dir())
        if self.state is not None:
            if self.fence_socket is not None:
                self.state.fence_socket = str(self.fence_socket)
                self.state.fence_secret_file = str(self.controller.secret_file)
            kept = [s for s in (self.fence_socket, self.assist_socket) if s is not None]
            kept += [api.token_path(self.api_port)] if self.lb is not None else []
            self.state.files = sorted(set(self.state.files) | {str(f) for f in kept})
            self.state.save()
        self.controller.launch()
        if wait:
            self.wait_for_controller()
        return self.controller

    def _relay_dir(self) -> Path | None:
        """Over several servers, with fencing or assist: the run's directory where the controller
        serves a second copy of its sockets for the ssh user who carries them to the servers (the
        agents here trust only root's)."""
        if not self.servers or (self.fence_socket is None and self.assist_socket is None):
            return None
        assert self.state is not None
        directory = servers.socket_dir(self.state.run_id)
        self.record_dir(directory)
        return directory

    def _forward_sockets(self) -> None:
        """Over several servers: ssh carries the controller's sockets to each (`socket_for`)."""
        relay_dir = self.controller.relay_dir if self.controller is not None else None
        if relay_dir is None:
            return
        assert self.state is not None
        kinds = [k for k, s in (("fence", self.fence_socket), ("assist", self.assist_socket)) if s is not None]
        relays = servers.forward_sockets(self.servers, self.state.run_id, relay_dir, kinds,
                                         self.run_dir / "ssh-forward.log")
        self._sessions += relays
        for relay in relays:
            self.state.track(relay.pid, "controller's sockets carried to another server")

    def socket_for(self, host: str, kind: str) -> Path | None:
        """Where agents on `host` reach the controller's `kind` socket ("fence", "assist"; None if
        this lab has none): on this machine, its own; on another server, the copy ssh carries there."""
        path = {"fence": self.fence_socket, "assist": self.assist_socket}[kind]
        if path is None or self.server_of(host) == servers.LOCAL:
            return path
        assert self.state is not None
        return servers.relay_path(self.state.run_id, kind)

    def wait_for_controller(self) -> None:
        assert self.controller is not None
        try:
            self.controller.wait_ready(CONTROLLER_START_TIMEOUT_S)
        except HalabError as exc:
            raise HalabError(exc.problem, f"{exc.fix} `sudo make setup` reinstalls os-ken.") from None

    def _start_network(self, controller_port: int) -> None:
        from mininet.link import TCLink
        from mininet.log import setLogLevel
        from mininet.net import Mininet

        assert self.state is not None
        setLogLevel("warning")
        # batch: Mininet starts the switches with one ovs-vsctl process. Without it (Mininet sets it
        # only for a class, not a partial) each switch's command is typed into its shell's pty,
        # whose line ends at 4095 bytes: a switch of 64 ports lost every port past the 55th.
        cluster = bool(self.servers)
        switch = partial(_lab_switch_class(cluster), run_id=self.state.run_id, protocols="OpenFlow13,OpenFlow15",
                         datapath=self.datapath, failMode="secure", batch=True)
        # With the userspace datapath, TX checksum offload on veths makes OVS forward TCP/UDP
        # with bad checksums, which receivers drop silently (ICMP still works): turn it off.
        link = _tunnel_link_class() if cluster else TCLink
        if self.datapath == "user":
            link = partial(link, txo=False, rxo=False)
        controller = partial(lab_controller_class(), ip=self.controller_host, port=controller_port,
                             checked_by_lab=True)
        if cluster:
            self.net = servers.cluster_net(self.topo, self.servers, switch=switch, link=link, controller=controller)
        else:
            self.net = Mininet(topo=self.topo, switch=switch, link=link, build=False, controller=controller)
        self.state.bridges = list(self.topo.switches())
        self.state.hosts = {h: [str(a.ip) for a in addrs] for h, addrs in self.topo.addresses.items()}
        if cluster:  # the cluster edition makes each tunnel's end as tap9, then renames it
            self.state.interfaces.append("tap9")
        self.state.save()
        if cluster:
            try:
                self.net.build()
            except Exception as exc:  # the cluster edition raises plain Exceptions (a tunnel that failed)
                where = ", ".join(self.servers.servers)
                raise HalabError(f"Building the lab over {where} failed: {str(exc).strip()[-400:]}",
                                 "Fix what it says; the lab was taken down.") from None
            for link in self.net.links:
                if getattr(link, "tunnel", None) is not None:
                    self.state.track(link.tunnel.pid, f"ssh tunnel {link.intf1}-{link.intf2}")
        else:
            self.net.build()
        for host in (h for h in self.net.hosts if not servers.is_remote(h)):
            inode = netns_inode(host.pid)
            if inode is not None:
                self.state.netns[host.name] = inode
        for node in self.net.hosts + self.net.switches + self.net.controllers:
            self.state.track(servers.local_pid(node), f"mininet shell {node.name}")
        self.state.interfaces += [i.name for s in self.net.switches for i in s.intfList() if i.name != "lo"]
        self.state.save()
        self.wait_for_controller()
        log = self._controller_log()
        seen = log.stat().st_size if log.exists() else 0
        self.net.start()
        self._wait_connected(log, seen)

    def _controller_log(self) -> Path:
        assert self.controller is not None and self.controller.process is not None
        return self.controller.process.log_path

    def _wait_connected(self, log: Path, offset: int) -> None:
        """Wait until the controller has set up every switch, as its log says: connected (the L2
        switch's flows sent), or with the load balancer, ready (its pools in the switch too).

        Not Mininet's waitConnected: it reads the Controller table's is_connected, which
        ovs-vswitchd refreshes only every few seconds, so it waited 0 to 5 s after the
        handshake (most of a lab's start-up time). The controller knows at once.
        """
        assert self.net is not None
        word = "ready" if self.lb is not None else "connected"
        wanted = {f"switch {sw.dpid} {word}" for sw in self.net.switches}
        deadline = time.monotonic() + SWITCH_CONNECT_TIMEOUT_S
        while True:
            with log.open("rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
            if all(w in text for w in wanted):
                return
            if time.monotonic() > deadline:
                raise HalabError("The switches did not connect to the controller within "
                                 f"{SWITCH_CONNECT_TIMEOUT_S:.0f} s.", f"See {log} and `ovs-vsctl show`.")
            time.sleep(0.01)

    def _refuse_foreign_bridges(self) -> None:
        """Mininet deletes a bridge of the same name before it creates its own: never let it."""
        ours = set(cleanup.bridges_of_run(None))
        for name in self.topo.switches():
            exists = subprocess.run(["ovs-vsctl", "--timeout=5", "br-exists", name],
                                    capture_output=True, check=False).returncode == 0
            if exists and name not in ours:
                raise HalabError(
                    f"An Open vSwitch bridge named {name} exists and halab did not create it; "
                    "starting the lab would delete it.",
                    f"If nothing uses it, remove it with `ovs-vsctl del-br {name}`; otherwise stop "
                    "whatever owns it first.",
                )

    def _catch_termination(self) -> None:
        """Turn SIGTERM and SIGHUP into SystemExit so the `with` block unwinds and tears down.

        Only the first one: a closed terminal (tmux) sends SIGHUP then SIGTERM, and a second
        SystemExit raised while the first unwinds would cut the teardown short.
        """
        exiting: list[int] = []

        def exit_on(signum: int, _frame: object) -> None:
            if not exiting:
                exiting.append(signum)
                raise SystemExit(128 + signum)

        for sig in _TERMINATING_SIGNALS - {signal.SIGINT}:  # SIGINT already raises KeyboardInterrupt
            try:
                self._old_handlers[sig] = signal.signal(sig, exit_on)
            except ValueError:  # not the main thread: the caller handles signals
                return

    def _restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()


def _free_tcp_port(preferred: int = 0) -> int:
    """`preferred` if nothing listens there, else a free port the kernel picks."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise AssertionError("the kernel had no free port")

