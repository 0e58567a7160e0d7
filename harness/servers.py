"""The machines a lab spreads over, with Mininet's cluster edition: named, checked, reached by ssh.

halab and its controller run on this machine ("localhost"); hosts and switches go to the servers
the placement names, and links between machines become ssh tunnels. The cluster edition reaches
a server as `user@server` with the user's own ssh keys and runs `sudo -E` there, so each server
needs: ssh without a password for that user, sudo without a password, the same Mininet and
Open vSwitch as this machine, and halab's checkout with its .venv at the same path, holding the
run directory (config files and logs are read where they were written: the two-VM Vagrant file
shares the checkout as /vagrant on both). `check` confirms all of it before anything starts.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import select
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ha.statusfile import beside_state
from harness.errors import HalabError
from harness.runstate import RUN_KEY

LOCAL = "localhost"
SSH_TIMEOUT_S = 5
#: The cluster edition's default for shared ssh connections (RemoteMixin, controlPath=True): its
#: hosts' shells and every program the lab runs over there are sessions on it.
CONTROL_PATH = "/tmp/mn-%r@%h:%p"
#: halab's own short commands (a status, a fault, a file) share a connection apart from it: sshd
#: allows 10 sessions on one connection (MaxSessions), and a lab of four hosts over there fills
#: the cluster edition's, after which every command made a connection of its own (250 ms).
COMMAND_PATH = "/tmp/halab-ssh-%r@%h:%p"
#: The environment variable that marks every process a run starts on another server.
RUN_ENV = "HALAB_RUN"
#: The first line halab's wrapper prints for a process on another server: its pid there.
REMOTE_PID = "halab-remote-pid "
#: What the check runs on a server (as root, through `sudo -n`): one ssh round trip, one
#: `key=value` line per fact.
_FACTS = r"""
echo ran=yes
command -v mnexec >/dev/null && echo mnexec=yes || echo mnexec=no
echo "mininet=$(command -v mn >/dev/null && mn --version 2>&1)"
echo "ovs=$(ovs-vsctl --version 2>/dev/null | head -1)"
ovs-vsctl --timeout=3 show >/dev/null 2>&1 && echo ovs_running=yes || echo ovs_running=no
echo "tunnel=$(sshd -T 2>/dev/null | awk '$1 == "permittunnel" {{print $2}}')"
{tun}
test -x {python} && echo python=yes || echo python=no
echo "seen=$(cat {probe} 2>/dev/null)"
for b in {switches}; do
    ovs-vsctl --timeout=3 br-exists "$b" 2>/dev/null &&
        [ -z "$(ovs-vsctl --timeout=3 br-get-external-id "$b" {key})" ] && echo "foreign=$b"
done
true
"""
_IN_NETNS = r"""
ns=$(readlink /proc/{pid}/ns/net) || exit 0
for p in /proc/[0-9]*; do
    [ "${{p#/proc/}}" = {pid} ] && continue
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && kill -{sig} "${{p#/proc/}}" 2>/dev/null
done
true
"""
#: Whether the ssh user may open tunnel devices: sshd opens its end of each link's tunnel as that
#: user (and the ssh client here its own). Debian's udev makes /dev/net/tun 0666; some machines
#: without udev keep it root's.
_TUN = "sudo -n -u {user} test -r /dev/net/tun -a -w /dev/net/tun && echo tun_open=yes || echo tun_open=no"
#: Held on each server for the whole run (LabLock's lock there): a lab started there meanwhile
#: is refused, and its clean-up cannot take this run's bridges for leftovers.
_LOCK = "mkdir -p -m 700 /run/halab && exec flock -n /run/halab/lock sh -c 'echo locked; exec cat'"
LOCK_TIMEOUT_S = 15.0

_UNDO = r"""
for p in /proc/[0-9]*; do
    if tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -qx '{env}={run}'; then
        kill -9 "${{p#/proc/}}" 2>/dev/null && echo "process ${{p#/proc/}}"
    fi
done
for b in $(ovs-vsctl --timeout=5 --bare --columns=name find Bridge 'external_ids:{key}={run}' 2>/dev/null); do
    ovs-vsctl --timeout=5 --if-exists del-br "$b"; ip link del "$b" 2>/dev/null; echo "OVS bridge $b"
done
for i in {interfaces}; do
    ip link show "$i" >/dev/null 2>&1 && ip link del "$i" && echo "interface $i"
done
for f in /tmp/halab-{run}-*.sock /run/halab/*-{run}-*.sock; do
    [ -S "$f" ] && rm -f "$f" && echo "socket $f"
done
for d in {dirs}; do
    [ -d "$d" ] && rm -rf "$d" && echo "directory $d"
done
true
"""


@dataclass(frozen=True)
class ServerPlan:
    """The servers of a lab (this machine as "localhost") and the nodes placed explicitly."""

    servers: tuple[str, ...] = ()
    place: dict[str, str] = field(default_factory=dict)

    @property
    def remote(self) -> tuple[str, ...]:
        return tuple(s for s in self.servers if s != LOCAL)

    def __bool__(self) -> bool:
        return bool(self.remote)


def parse_servers(text: str, where: str = "--servers") -> tuple[str, ...]:
    """`a,b,c` into names: each once, none empty."""
    names = tuple(s.strip() for s in text.split(","))
    return check_names(names, where)


def check_names(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.\-]*", name):
            raise HalabError(f"{where}: {name!r} is not a server name.",
                             "Give host names or IPv4 addresses separated by commas, e.g. `localhost,10.10.0.2`.")
    if len(set(names)) != len(names):
        raise HalabError(f"{where}: {', '.join(names)} names a server twice.", "Name each server once.")
    return names


def parse_place(items: list[str], servers: tuple[str, ...], nodes: list[str], where: str = "--place") -> dict[str, str]:
    """`NODE=SERVER` items into a placement; the node must exist and the server be one of the lab's."""
    place = {}
    for item in items:
        node, sep, server = item.partition("=")
        if not sep:
            raise HalabError(f"{where}: {item!r} is not NODE=SERVER.", "Write for example `--place server2=10.10.0.2`.")
        place[node.strip()] = server.strip()
    return check_place(place, servers, nodes, where)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--servers and --place, for `halab up` and the scenarios of `halab run` that spread."""
    parser.add_argument("--servers", metavar="A,B", help="spread the lab over these machines (`localhost` is this "
                                                         "one); each needs ssh, sudo, and halab's checkout at the "
                                                         "same path")
    parser.add_argument("--place", metavar="NODE=SERVER", action="append",
                        help="put a node on a server (again for more); the rest go where Mininet's cluster edition "
                             "places them")


def override(plan: ServerPlan, servers: str | None, place: list[str] | None, nodes: list[str]) -> ServerPlan:
    """`plan` with the command line's --servers (which replaces its servers and placements) and
    --place (which adds to them)."""
    if servers is None and not place:
        return plan
    names = parse_servers(servers) if servers is not None else plan.servers
    if place and not names:
        raise HalabError("--place puts nodes on servers, but the lab has none.", "Add --servers.")
    kept = {} if servers is not None else plan.place
    return ServerPlan(names, {**kept, **parse_place(place or [], names, nodes)})


def check_place(place: dict[str, str], servers: tuple[str, ...], nodes: list[str], where: str) -> dict[str, str]:
    for node, server in place.items():
        if node not in nodes:
            raise HalabError(f"{where}: {node} = {server!r}: the lab has no node {node}.",
                             f"Its nodes are: {', '.join(sorted(nodes))}.")
        if server not in servers:
            raise HalabError(f"{where}: {node} = {server!r}: {server} is not one of the lab's servers.",
                             f"Place it on one of: {', '.join(servers)}.")
    return place


def ssh_user() -> str:
    """The user the cluster edition logs in as: the one who ran sudo, else the current one."""
    from mininet.examples.cluster import findUser

    return findUser()


def ssh_argv(server: str, command: str, user: str | None = None, terminal: bool | None = None,
             forwards: tuple[str, ...] = (), shared: bool = True) -> list[str]:
    """`command` (a shell line) as root on `server`, the way the cluster edition goes there, over
    halab's shared connection when one is open (COMMAND_PATH: no new handshake per command).
    `terminal`: None, no input; True, a terminal there (`halab exec` at a prompt); False, input
    passed through. `forwards`: ssh's `-R` forwardings, on a connection of their own (they
    would live as long as the shared one), which ends if one fails. `shared` False: a connection
    of its own (a killed lab's shared one may hang on a server gone meanwhile, past any
    ConnectTimeout)."""
    user = user or ssh_user()
    io = {None: "-n", True: "-tt", False: "-T"}[terminal]
    mux = ["-q", "-o", f"ControlPath={COMMAND_PATH}", "-o", "ControlMaster=auto", "-o", "ControlPersist=1"]
    # ssh's errors kept: they say why a forwarding failed
    own = ["-o", "LogLevel=ERROR", "-o", "ExitOnForwardFailure=yes", *(w for f in forwards for w in ("-R", f))]
    return ["sudo", "-E", "-u", user, "ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_TIMEOUT_S}",
            *(own if forwards else mux if shared else ["-q", "-o", "ControlPath=none"]), io, f"{user}@{server}",
            "sudo", "-n", "sh", "-c", shlex.quote(command)]


def remote_argv(argv: list[str], run_id: str, announce_pid: bool = False, timeout: float | None = None) -> list[str]:
    """`argv` for a host on another server: marked with the run (so `halab clean` finds it there
    after a crash) and quoted (ssh joins the words into one shell line). `announce_pid`: it first
    prints its pid there (REMOTE_PID), since the local handle is only the ssh client. `timeout`:
    killed there after that many seconds."""
    script = f'echo "{REMOTE_PID}$$"; exec "$@"' if announce_pid else 'exec "$@"'
    limit = ["timeout", "-s", "KILL", f"{timeout:g}"] if timeout is not None else []
    return [shlex.quote(a) for a in ["env", f"{RUN_ENV}={run_id}", *limit, "sh", "-c", script, "sh", *argv]]


def undo_run(server: str, run_id: str, interfaces: list[str], dirs: tuple[Path, ...] = ()) -> tuple[bool, list[str]]:
    """Remove from `server` what run `run_id` left there: its processes, bridges, tunnel ends,
    and `dirs` (the run's own directories, a database's data). Whether it was reached, and a
    line per thing removed (or why it was not reached)."""
    if not re.fullmatch(r"[0-9A-Za-z-]+", run_id):
        return True, []
    names = " ".join(shlex.quote(i) for i in interfaces)
    result = run_on(server, _UNDO.format(env=RUN_ENV, run=run_id, key=RUN_KEY, interfaces=names,
                                         dirs=" ".join(shlex.quote(str(d)) for d in dirs)), timeout=30.0,
                    shared=False)
    if result.returncode != 0:
        why = (result.stderr.strip() or "no answer")[-200:]
        return False, [f"server {server}: not reached, nothing removed there ({why}); `halab clean` tries again, "
                       f"`halab clean --forget {server}` gives up on it"]
    return True, [f"{line} on {server}" for line in result.stdout.splitlines() if line]


def run_on(server: str, command: str, timeout: float = 30.0, input: str | None = None, shared: bool = True
           ) -> subprocess.CompletedProcess:
    """Run a shell line as root on `server` (this machine for "localhost") and wait for it;
    `input`, its standard input; `shared`: see `ssh_argv`."""
    argv = ["sh", "-c", command] if server == LOCAL else ssh_argv(
        server, command, terminal=None if input is None else False, shared=shared)
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, input=input,
                              start_new_session=True)  # no terminal: see `detach`
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, "", f"no answer within {timeout:.0f} s")


def local_versions() -> dict[str, str]:
    # `mn --version` prints to stderr.
    mn = subprocess.run(["mn", "--version"], capture_output=True, text=True, check=False).stderr.strip()
    ovs = subprocess.run(["ovs-vsctl", "--version"], capture_output=True, text=True, check=False).stdout
    return {"mininet": mn, "ovs": ovs.splitlines()[0] if ovs else ""}


def check(plan: ServerPlan, run_dir: Path, switches: list[str]) -> None:
    """Every remote server can run its part of the lab; else one HalabError for the first that
    cannot, naming the server, what is wrong and the fix. Nothing is started or left behind."""
    if not plan:
        return
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    probe = run_dir / f".seen-{secrets.token_hex(4)}"
    token = secrets.token_hex(8)
    probe.write_text(token)
    try:
        mine = local_versions()
        if "tun_open=yes" not in run_on(LOCAL, _TUN.format(user=shlex.quote(ssh_user()))).stdout:
            raise HalabError(f"This machine: {ssh_user()}, whom the cluster edition's ssh tunnels run as, may not "
                             "open /dev/net/tun.", _TUN_FIX)
        for server in plan.remote:
            _check_one(server, _facts(server, probe, switches), mine, token, run_dir)
        _check_between(plan.remote)
    finally:
        probe.unlink(missing_ok=True)


_TUN_FIX = "Open it to users, as Debian's udev does: `sudo chmod 666 /dev/net/tun`."


def _facts(server: str, probe: Path, switches: list[str]) -> dict[str, str]:
    script = _FACTS.format(python=shlex.quote(sys.executable), probe=shlex.quote(str(probe)), key=RUN_KEY,
                           switches=" ".join(shlex.quote(s) for s in switches),
                           tun=_TUN.format(user=shlex.quote(ssh_user())))
    result = run_on(server, script, timeout=SSH_TIMEOUT_S * 3)
    facts = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    if "password is required" in result.stderr:
        raise HalabError(f"Server {server}: sudo asks {ssh_user()} for a password.",
                         f"Let {ssh_user()} run sudo without one there (the cluster edition runs `sudo -E`).")
    if result.returncode != 0 or facts.get("ran") != "yes":
        why = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        raise HalabError(f"Server {server} cannot be reached by ssh as {ssh_user()} ({why}).",
                         f"Check that `ssh {ssh_user()}@{server} true` works without a password, "
                         "and that the name or address is right.")
    return facts


def _check_one(server: str, facts: dict[str, str], mine: dict[str, str], token: str, run_dir: Path) -> None:
    setup = "Provision it like this machine: `sudo make setup` in halab's checkout there."
    if facts["mnexec"] != "yes" or not facts.get("mininet"):
        raise HalabError(f"Server {server} has no Mininet (mnexec, mn).", setup)
    if not facts.get("ovs"):
        raise HalabError(f"Server {server} has no Open vSwitch (ovs-vsctl).", setup)
    for key, what in (("mininet", "Mininet"), ("ovs", "Open vSwitch")):
        if facts[key] != mine[key]:
            raise HalabError(f"Server {server} runs {what} {facts[key]!r}, this machine {mine[key]!r}.",
                             "Install the same version on every server (one Debian release, `sudo make setup`).")
    if facts["ovs_running"] != "yes":
        raise HalabError(f"Server {server}: Open vSwitch is not running.",
                         "Start it there with `sudo vagrant/provision.sh --start-ovs`.")
    if facts.get("tunnel") not in ("yes", "ethernet"):
        raise HalabError(f"Server {server}: its sshd does not allow ethernet tunnels (PermitTunnel "
                         f"{facts.get('tunnel') or 'unknown'}), which carry the links between servers.",
                         "Add `PermitTunnel ethernet` to /etc/ssh/sshd_config.d/halab.conf there and reload sshd "
                         "(the two-VM Vagrant file does).")
    if facts.get("tun_open") != "yes":
        raise HalabError(f"Server {server}: {ssh_user()}, as whom its sshd opens its end of each ssh tunnel, may not "
                         "open /dev/net/tun there.", _TUN_FIX)
    if facts["python"] != "yes":
        raise HalabError(f"Server {server} has no {sys.executable}.",
                         "Put halab's checkout at the same path there and run `sudo make setup` in it.")
    if facts.get("seen") != token:
        raise HalabError(f"Server {server} does not see the run directory {run_dir}.",
                         "Keep runs on storage every server mounts at the same path (the checkout's runs/, "
                         "shared as /vagrant in the two-VM Vagrant file), e.g. `--out runs/NAME`.")
    if facts.get("foreign"):
        raise HalabError(f"Server {server} has an Open vSwitch bridge named {facts['foreign']} that halab did not "
                         "create; the lab would delete it.",
                         f"If nothing uses it, remove it there with `ovs-vsctl del-br {facts['foreign']}`.")


def _check_between(remote: tuple[str, ...]) -> None:
    """A link between two servers other than this one is an ssh tunnel that one of them opens to
    the other, as the ssh user, with no one to type a password: each must reach each."""
    from mininet.examples.cluster import RemoteMixin

    user = shlex.quote(ssh_user())
    for a in remote:
        for b in remote:
            if a == b:
                continue
            # The address the cluster edition's tunnel goes to: resolved here, as it does.
            to = RemoteMixin.findServerIP(b) or b
            result = run_on(a, f"sudo -n -u {user} ssh -n -o BatchMode=yes -o ConnectTimeout={SSH_TIMEOUT_S} "
                               f"{user}@{shlex.quote(to)} true", timeout=SSH_TIMEOUT_S * 3)
            if result.returncode != 0:
                why = (result.stderr.strip().splitlines() or ["no answer"])[-1]
                raise HalabError(f"Server {a} cannot ssh to server {b} as {ssh_user()} ({why}); the links between "
                                 "them are ssh tunnels one opens to the other.",
                                 f"On {a}, as {ssh_user()}: `ssh-copy-id {ssh_user()}@{b}` (and the same from {b} "
                                 f"to {a}), then check that `ssh {ssh_user()}@{b} true` asks nothing.")


def signal_netns(server: str, pid: int, sig: int) -> None:
    """`sig` to every process on `server` in the network namespace of process `pid` (a host's
    shell), but that one: what a host crash stops and kills there."""
    run_on(server, _IN_NETNS.format(pid=int(pid), sig=int(sig)), timeout=10.0)


def hold_locks(plan: ServerPlan) -> list[subprocess.Popen]:
    """Take each remote server's lab lock for as long as the returned ssh clients live (their
    input open): a HalabError, and no lock kept, if a lab runs on one of them."""
    held: list[subprocess.Popen] = []
    try:
        for server in plan.remote:
            ssh = _session(ssh_argv(server, _LOCK, terminal=False), held)
            if _first_line(ssh) != b"locked\n":
                raise HalabError(f"Server {server} is running a halab lab of its own (its lab lock is taken).",
                                 "Stop it there (`sudo halab down`) first: labs share switch and host names.")
    except BaseException:
        release(held)
        raise
    return held


def relay_root() -> Path:
    """Beside halab's state directory (/run/halab-relay): the directories of the controller's
    sockets in labs over several servers, one per run, each the ssh user's (forward_sockets)."""
    return beside_state("relay")


def socket_dir(run_id: str) -> Path:
    """The run's directory for the controller's sockets that ssh carries to the servers: the ssh
    user's, closed to everyone else but root; made on first use."""
    root = relay_root()
    root.mkdir(mode=0o711, exist_ok=True)
    root.chmod(0o711)
    directory = root / run_id
    if not directory.is_dir():
        directory.mkdir(mode=0o700)
        shutil.chown(directory, user=ssh_user())
    return directory


def relay_path(run_id: str, kind: str) -> Path:
    """Where hosts on another server reach the controller's `kind` socket ("fence", "assist";
    forward_sockets): in /tmp, where the ssh user may make it, named by the run."""
    return Path(f"/tmp/halab-{run_id}-{kind}.sock")


def forward_sockets(plan: ServerPlan, run_id: str, relay_dir: Path, kinds: list[str],
                    log: Path) -> list[subprocess.Popen]:
    """Carry the controller's unix sockets (`relay_dir`/KIND.sock, which the ssh user may reach)
    to every remote server for as long as the returned ssh clients live: ssh's own stream
    forwarding (`-R there:here`), each at `relay_path` there. sshd makes them as the ssh user;
    root then takes them over, since the agents trust only a socket of root's. A HalabError, and
    nothing kept, if a server refuses."""
    held: list[subprocess.Popen] = []
    user = ssh_user()
    try:
        for server in plan.remote:
            relays = {k: relay_path(run_id, k) for k in kinds}
            paths = [shlex.quote(str(p)) for p in relays.values()]
            there = " ".join(paths)
            wait = " && ".join(f"test -S {p}" for p in paths)
            # Only sockets sshd bound as the user become root's: another user's, made at the name
            # before, would then be trusted by the agents.
            theirs = " && ".join(f'[ "$(stat -c %u {p})" = "$(id -u {shlex.quote(user)})" ]' for p in paths)
            # They are removed when the session ends.
            command = (f"i=0; until {wait}; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done; "
                       f"{theirs} && chown 0:0 {there} && chmod 600 {there} && echo forwarding || exit 1; "
                       f"cat; rm -f {there}")
            argv = ssh_argv(server, command, user, terminal=False,
                            forwards=tuple(f"{p}:{relay_dir / k}.sock" for k, p in relays.items()))
            with log.open("ab") as err:
                ssh = _session(argv, held, stderr=err)
            if _first_line(ssh) != b"forwarding\n":
                why = (log.read_text(errors="replace").strip().splitlines() or ["no answer"])[-1]
                raise HalabError(f"Server {server} did not take the controller's sockets over ssh ({why}).",
                                 "Let its sshd forward unix sockets: `AllowStreamLocalForwarding yes` (the "
                                 "default) in its sshd_config.")
    except BaseException:
        release(held)
        raise
    return held


def _session(argv: list[str], held: list[subprocess.Popen], stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """An ssh client whose command runs as long as its input stays open (`release` ends it)."""
    ssh = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                           start_new_session=True)
    held.append(ssh)
    return ssh


def _first_line(ssh: subprocess.Popen) -> bytes:
    """The first line the command there says, or b"" if it says none within LOCK_TIMEOUT_S."""
    assert ssh.stdout is not None
    ready, _, _ = select.select([ssh.stdout], [], [], LOCK_TIMEOUT_S)
    return ssh.stdout.readline() if ready else b""


def release(held: list[subprocess.Popen]) -> None:
    """Give the servers' locks back: end each holder's input, and it ends."""
    for ssh in held:
        if ssh.stdin is not None:
            ssh.stdin.close()
    for ssh in held:
        try:
            ssh.wait(5)
        except subprocess.TimeoutExpired:
            ssh.kill()
            ssh.wait(5)


def address_towards(server: str) -> str:
    """This machine's address on the way to `server`: where switches there reach the controller."""
    try:
        address = socket.gethostbyname(server)  # `ip route get` takes addresses only
    except OSError:
        raise HalabError(f"Server {server}: no such host.", "Check its name or address.") from None
    route = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True,
                           check=False).stdout
    found = re.search(r"\bsrc (\S+)", route)
    if found is None or found.group(1).startswith("127."):
        raise HalabError(f"No route from this machine to server {server}.", "Check its name or address.")
    return found.group(1)


def controller_address(plan: ServerPlan) -> str:
    """The one address of this machine that every remote server's switches reach the controller
    at: it listens on one address (never on all of them)."""
    found = {server: address_towards(server) for server in plan.remote}
    if len(set(found.values())) > 1:
        ways = ", ".join(f"{server} through {address}" for server, address in found.items())
        raise HalabError(f"This machine reaches its servers through different addresses of its own ({ways}), "
                         "and halab's controller listens on one address only.",
                         "Put every server on one network with this machine (or route them through one "
                         "address of it).")
    return next(iter(found.values()))


def is_remote(node) -> bool:
    """Whether a Mininet node runs on another server (the cluster edition's RemoteMixin says)."""
    return bool(getattr(node, "isRemote", False))


def local_pid(node) -> int:
    """The process on this machine that stands for a node: its shell, or, for a node on another
    server, the ssh client that carries its shell (node.pid is then a pid over there)."""
    return node.shell.pid if is_remote(node) else node.pid


def detach() -> None:
    """Run a node's ssh client in a session of its own, without the terminal (the cluster
    edition's own choice, a process group, keeps it): Debian's sudo runs commands in a new pty
    (`use_pty`), which a process in the background of the user's terminal cannot set up; it
    would stop at once (SIGTTOU), and `halab up` in a terminal would hang."""
    os.setsid()


def _cluster_host_class():
    from mininet.examples.cluster import RemoteHost

    class LabRemoteHost(RemoteHost):
        _ignoreSignal = staticmethod(detach)  # noqa: N815 (the cluster edition's name)

    return LabRemoteHost


def cluster_net(topo, plan: ServerPlan, **classes):
    """The cluster edition's Mininet for `topo`, not yet built: nodes in `plan.place` where it
    says, the others where the cluster edition's placer puts them (switches binned evenly over
    the servers, each host with its switch: the placer does not look at explicit placements),
    links between servers as ssh tunnels."""
    from mininet.examples.cluster import MininetCluster, SwitchBinPlacer

    for node, server in plan.place.items():
        topo.nodeInfo(node)["server"] = server
    host = partial(_cluster_host_class(), controlPath=CONTROL_PATH)
    switch = partial(classes.pop("switch"), controlPath=CONTROL_PATH)
    # This machine first, so that the first bin of switches (and the hosts with them) stays here:
    # a client here measures on this machine's clock. halab has checked the servers (precheck).
    ordered = [s for s in plan.servers if s == LOCAL] + list(plan.remote)
    return MininetCluster(topo=topo, servers=ordered, user=ssh_user(), placement=SwitchBinPlacer, precheck=False,
                          host=host, switch=switch, build=False, **classes)
