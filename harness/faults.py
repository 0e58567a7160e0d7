"""Faults to inject into a running lab, each stamped on the monotonic clock when it is applied.

Every fault has its undo (restore, continue, heal, clear); all of them end with the lab, since
they live in the lab's own interfaces and host namespaces. Partition and packet loss use
nftables inside the hosts (netdev ingress/egress hooks), which work on kernels without netem.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from harness import servers
from harness.errors import HalabError
from harness.lab import Lab, start_thread
from harness.process import LabProcess, RemoteProcess
from harness.procs import kill, pids_in_netns

PARTITION_TABLE = "halab_partition"
LOSS_TABLE = "halab_loss"
REPLICATION_TABLE = "halab_replication"
#: How long a crashed host stays frozen, its links cut, before the lab kills and clears it. On one
#: machine that clean-up (commands in the host, the teardown of its processes) takes the CPU from
#: the survivors in the very milliseconds they react, which on separate machines it never would.
CRASH_SETTLE_S = 0.05


class Signalable(Protocol):
    """A process to signal: a LabProcess, or a daemon's child known by its pid file."""

    name: str

    def signal(self, sig: int) -> float: ...


@dataclass(frozen=True)
class FaultEvent:
    """A fault as it happened: what, on what, and when (time.monotonic())."""

    kind: str
    target: str
    at: float


class Faults:
    """Inject and undo faults in `lab`; every event is kept in `events` in order."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.events: list[FaultEvent] = []
        from pyroute2 import IPRoute  # here, not at the top: `halab` reads FaultEvent without it (0.1 s)

        with IPRoute() as ipr:  # pyroute2 builds its message classes on first use: not during a cut
            ipr.link("get", index=1)

    def record(self, kind: str, target: str, at: float) -> FaultEvent:
        event = FaultEvent(kind, target, at)
        self.events.append(event)
        return event

    # --- links --------------------------------------------------------------------------

    def cut_link(self, a: str, b: str) -> FaultEvent:
        """Take both ends of every a-b link down (a pulled cable)."""
        return self._set_link(a, b, "down", "cut-link")

    def restore_link(self, a: str, b: str) -> FaultEvent:
        return self._set_link(a, b, "up", "restore-link")

    def _set_link(self, a: str, b: str, status: str, kind: str) -> FaultEvent:
        at = self._set_intfs([i for pair in self._connections(a, b) for i in pair], status)
        return self.record(kind, f"{a}-{b}", at)

    @staticmethod
    def _set_intfs(intfs: list, status: str, first: Callable[[], None] = lambda: None, settle: float = 0.0) -> float:
        """Set link ends up or down; return the moment the first root-namespace end had changed.
        `first` runs once the ends are looked up (milliseconds of netlink), just before the first
        change: a crash stops the host's processes there, so that they stop as its links go.
        `settle`: seconds to wait between the root-namespace ends and the others.

        Switch-side ends (root namespace) go first, by one netlink call each: a veth whose
        peer is down carries nothing, so the link is cut once that call returns, which is the
        time we stamp (a request sent just before may still get through; none sent after
        can). Host-side ends follow through Mininet (a shell command each, milliseconds).
        """
        from pyroute2 import IPRoute  # imported already by Faults()

        root = [i for i in intfs if not i.node.inNamespace and not servers.is_remote(i.node)]
        others = [i for i in intfs if i not in root]
        at = None
        with IPRoute() as ipr:
            indexes = [ipr.link_lookup(ifname=i.name)[0] for i in root]
            first()
            for index in indexes:
                ipr.link("set", index=index, state=status)
                at = at or time.monotonic()
        if root and others:
            time.sleep(settle)
        for intf in others:
            # Not through the host's Mininet shell: the interactive prompt may be using it.
            result = _in_node(intf.node, ["ip", "link", "set", "dev", intf.name, status])
            if result.returncode != 0:
                raise HalabError(f"Could not set {intf.name} {status}: {result.stderr.strip()}",
                                 "Check that the lab is still running (`ovs-vsctl show`).")
            at = at or time.monotonic()
        return at or time.monotonic()

    def _connections(self, a: str, b: str) -> list:
        net = self.lab.net
        for name in (a, b):
            if net is None or name not in net:
                raise HalabError(f"There is no node {name!r} in this lab.",
                                 f"Use one of: {', '.join(sorted(self.lab.topo.nodes()))}.")
        pairs = net[a].connectionsTo(net[b])
        if not pairs:
            raise HalabError(f"{a} and {b} are not linked directly.",
                             "Cut a link between a host and its switch, or between two switches.")
        return pairs

    def flap(self, a: str, b: str, period: float, count: int, background: bool = False) -> FaultEvent:
        """Cut and restore the a-b link `count` times, down half of each `period` (a loose cable,
        a port that keeps renegotiating); returns when the link is up again for good, or with
        `background` as soon as it is first cut (the rest goes on in a thread)."""
        if not (0.02 <= period <= 60 and 1 <= count <= 1000):
            raise HalabError(f"A flap of {count} x {period:g} s is out of range.",
                             "Choose a period of 0.02 to 60 s and a count of 1 to 1000.")
        first = self.cut_link(a, b)

        def rest() -> None:
            for i in range(count):
                if i:
                    self.cut_link(a, b)
                time.sleep(period / 2)
                self.restore_link(a, b)
                time.sleep(period / 2)

        if background:
            start_thread(threading.Thread(target=rest, name="flap", daemon=True))
        else:
            rest()
        return self.record("flap", f"{a}-{b}:{count}x{period:g}s", first.at)

    # --- processes ----------------------------------------------------------------------

    def kill(self, proc: Signalable) -> FaultEvent:
        """SIGKILL: the process dies without a word (a crashed server)."""
        event = self.record("kill", proc.name, proc.signal(signal.SIGKILL))
        process = getattr(proc, "process", proc)   # a daemon's, or a lab process itself
        if isinstance(process, LabProcess):
            self._reap([process])
        return event

    def terminate(self, proc: Signalable) -> FaultEvent:
        """SIGTERM: a clean shutdown, where the process may say goodbye (VRRP priority 0)."""
        return self.record("terminate", proc.name, proc.signal(signal.SIGTERM))

    def freeze(self, proc: Signalable) -> FaultEvent:
        """SIGSTOP: the process hangs, its sockets stay open (a hung server)."""
        return self.record("freeze", proc.name, proc.signal(signal.SIGSTOP))

    def thaw(self, proc: Signalable) -> FaultEvent:
        return self.record("thaw", proc.name, proc.signal(signal.SIGCONT))

    # --- hosts --------------------------------------------------------------------------

    def crash_host(self, host: str) -> FaultEvent:
        """Take every link of `host` down and kill every process on it, as if it lost power (and
        forget the addresses its agents added, as its reboot would).

        Everything on the host is stopped (SIGSTOP) before the first link goes: the links go down
        one by one, and an agent left running would see its service link go and tell its peer
        "I am in FAULT" over a link not yet cut, which a host without power never does. Frozen and
        cut off, the host is as good as dead; the rest (its own ends of the links, killing its
        processes, forgetting its VIPs) waits CRASH_SETTLE_S, out of the survivors' way."""
        node = self.lab.host(host)
        inode = self.lab.state.netns.get(host) if self.lab.state else None
        # Mininet's shell is the host itself, not a process on it.
        pids = [pid for pid in pids_in_netns(inode) if pid != node.pid] if inode else []
        # On another server: everything in the host's namespace there, then the lab's processes
        # with their groups (the sudo each runs under, which would hold on to it stopped).
        remote = [p for p in self.lab.processes if p.host == host and isinstance(p, RemoteProcess) and p.alive()]
        def stop() -> None:
            for pid in pids:
                kill(pid, signal.SIGSTOP)
            if servers.is_remote(node):
                servers.signal_netns(node.server, node.pid, signal.SIGSTOP)

        at = self._set_intfs(self._link_ends(host), "down", first=stop, settle=CRASH_SETTLE_S)
        for pid in pids:
            kill(pid)
        if servers.is_remote(node):
            servers.signal_netns(node.server, node.pid, signal.SIGKILL)
        for p in remote:
            p.signal(signal.SIGKILL)
        self._reap([p for p in self.lab.processes if p.host == host])
        self._forget_added_addresses(host)
        return self.record("crash-host", host, at)

    def _forget_added_addresses(self, host: str) -> None:
        """What a reboot loses: the addresses its agents added (a VIP). A crashed host restored
        with them would answer ARP for a VIP its peer now holds."""
        own = {str(a) for a in self.lab.topo.addresses[host]}
        for intf in self._intfs(host):
            shown = self.lab.run(host, ["ip", "-o", "addr", "show", "dev", intf, "scope", "global"]).stdout
            for address in (line.split()[3] for line in shown.splitlines()):
                if address not in own:
                    self.lab.run(host, ["ip", "addr", "del", address, "dev", intf])

    def _reap(self, processes: list[LabProcess], timeout: float = 2.0) -> None:
        """Collect killed processes of the lab. Until then they are zombies, children of this one,
        which a real crash leaves nothing of: a PostgreSQL data directory whose postmaster.pid names
        one counts as in use, and a rejoin would wait for it for ever."""
        deadline = time.monotonic() + timeout
        for p in processes:
            while p.popen.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)

    def restore_host(self, host: str) -> FaultEvent:
        """Bring a crashed host's links back up (its processes are the scenario's to restart)."""
        return self.record("restore-host", host, self._set_intfs(self._link_ends(host), "up"))

    def _link_ends(self, host: str) -> list:
        return [end for intf in self.lab.host(host).intfList() if intf.link is not None
                for end in (intf.link.intf1, intf.link.intf2)]

    # --- partitions and loss (nftables in the hosts) ------------------------------------

    def partition(self, side_a: list[str], side_b: list[str]) -> FaultEvent:
        """Make every host in side_a unreachable from every host in side_b and back.

        Each host drops, at the ingress of its interfaces, every frame whose source MAC or IP
        belongs to the other side: ARP, unicast, broadcast and VRRP multicast alike.
        """
        if set(side_a) & set(side_b):
            raise HalabError(f"Hosts {sorted(set(side_a) & set(side_b))} are on both sides of the "
                             "partition.", "Put each host on one side only.")
        rulesets = {h: self._drop_from(h, side_b if h in side_a else side_a) for h in side_a + side_b}
        at = time.monotonic()
        for host, ruleset in rulesets.items():
            self._nft(host, ruleset)
        return self.record("partition", f"{','.join(side_a)}|{','.join(side_b)}", at)

    def heal(self, hosts: list[str] | None = None) -> FaultEvent:
        """Undo every partition; only on `hosts` if given, so that it heals one way first (those
        hosts hear the other side again, the other side does not hear them yet)."""
        at = time.monotonic()
        for host in hosts or self.lab.topo.roles:
            self._nft(host, f"delete table netdev {PARTITION_TABLE}\n", check=False)
        return self.record("heal", ",".join(hosts) if hosts else "all", at)

    def loss(self, a: str, b: str, percent: float) -> FaultEvent:
        """Drop `percent` % of the frames in each direction on the a-b link (one end a host)."""
        if not 0 < percent <= 100:
            raise HalabError(f"Packet loss {percent}% is out of range.", "Choose more than 0 and up to 100.")
        host, intfs = self._host_end(a, b)
        per_mille = round(percent * 10)
        # numgen's values are 0..999: "< 1000" is out of nftables' range, and 100 % needs no dice.
        rule = "drop" if per_mille >= 1000 else f"numgen random mod 1000 < {per_mille} drop"
        chains = [f'  chain {hook}_{intf} {{ type filter hook {hook} device "{intf}" priority 0; '
                  f"{rule}; }}"
                  for intf in intfs for hook in ("ingress", "egress")]
        at = time.monotonic()
        self._nft(host, f"table netdev {LOSS_TABLE} {{\n" + "\n".join(chains) + "\n}\n")
        return self.record("loss", f"{a}-{b}:{percent:g}%", at)

    def clear_loss(self, a: str, b: str) -> FaultEvent:
        host, _intfs = self._host_end(a, b)
        at = time.monotonic()
        self._nft(host, f"delete table netdev {LOSS_TABLE}\n", check=False)
        return self.record("clear-loss", f"{a}-{b}", at)

    def cut_tcp(self, host: str, peer: str, port: int) -> FaultEvent:
        """Drop, inside `host`, every TCP segment to or from `peer`'s port `port`, both ways, and
        nothing else: a standby that stops hearing its primary's WAL stream (and the primary its
        replies) while heartbeats and clients still pass."""
        addresses = ", ".join(sorted(str(a.ip) for a in self.lab.topo.addresses[peer]))
        chains = [f'  chain in_{intf} {{ type filter hook ingress device "{intf}" priority 0; '
                  f"ip saddr {{ {addresses} }} tcp sport {port} drop; }}\n"
                  f'  chain out_{intf} {{ type filter hook egress device "{intf}" priority 0; '
                  f"ip daddr {{ {addresses} }} tcp dport {port} drop; }}"
                  for intf in self._intfs(host)]
        at = time.monotonic()
        self._nft(host, f"table netdev {REPLICATION_TABLE} {{\n" + "\n".join(chains) + "\n}\n")
        return self.record("tcp-cut", f"{host}-{peer}:{port}", at)

    def restore_tcp(self, host: str, peer: str) -> FaultEvent:
        at = time.monotonic()
        self._nft(host, f"delete table netdev {REPLICATION_TABLE}\n", check=False)
        return self.record("tcp-restore", f"{host}-{peer}", at)

    def _host_end(self, a: str, b: str) -> tuple[str, list[str]]:
        """The host of an a-b link and its interfaces on that link (nftables runs in the host)."""
        pairs = self._connections(a, b)
        for end, index in ((a, 0), (b, 1)):
            if end in self.lab.topo.roles:
                return end, [pair[index].name for pair in pairs]
        raise HalabError(f"{a}-{b} links two switches; loss is emulated inside a host.",
                         "Choose a link between a host and its switch.")

    def delay(self, host: str, ms: float) -> FaultEvent:
        """Add latency with netem, which this kernel may lack: then say so rather than pretend."""
        at = time.monotonic()
        for intf in self._intfs(host):
            result = self.lab.run(host, ["tc", "qdisc", "replace", "dev", intf, "root", "netem",
                                         "delay", f"{ms}ms"])
            if result.returncode != 0:
                raise HalabError(
                    f"Delay needs the kernel's netem queueing discipline (sch_netem), which this "
                    f"kernel does not have ({result.stderr.strip()}).",
                    "Run delay scenarios in the Vagrant VM, whose kernel has netem; loss, cuts, "
                    "partitions and bandwidth limits work here.",
                )
        return self.record("delay", f"{host}:{ms:g}ms", at)

    def _drop_from(self, host: str, others: list[str]) -> str:
        macs = sorted(self.lab.host(o).intf(i).MAC() for o in others for i in self._intfs(o))
        ips = sorted(str(a.ip) for o in others for a in self.lab.topo.addresses[o])
        chains = [f'  chain in_{intf} {{ type filter hook ingress device "{intf}" priority 0; '
                  f"ether saddr {{ {', '.join(macs)} }} drop; ip saddr {{ {', '.join(ips)} }} drop; }}"
                  for intf in self._intfs(host)]
        return f"table netdev {PARTITION_TABLE} {{\n" + "\n".join(chains) + "\n}\n"

    def _intfs(self, host: str) -> list[str]:
        return [i.name for i in self.lab.host(host).intfList() if i.name != "lo"]

    def _nft(self, host: str, ruleset: str, check: bool = True) -> None:
        path = self.lab.run_dir / f"nft-{host}.rules"
        path.write_text(ruleset)
        result = self.lab.run(host, ["nft", "-f", str(path)])
        if check and result.returncode != 0:
            raise HalabError(f"nftables refused the rules for {host}: {result.stderr.strip()}",
                             "Install nftables (`sudo make setup`); the kernel needs nf_tables.")


def _in_node(node, argv: list[str]) -> subprocess.CompletedProcess:
    """Run a short command in a node's namespace, on whichever server it is."""
    if servers.is_remote(node):
        line = shlex.join(["mnexec", "-a", str(node.pid), *argv] if node.inNamespace else argv)
        return servers.run_on(node.server, line, timeout=10)
    return subprocess.run(["mnexec", "-a", str(node.pid), *argv], capture_output=True, text=True, check=False,
                          timeout=10)
