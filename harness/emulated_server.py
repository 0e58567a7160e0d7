"""A second machine on this one, for trying and testing labs over several servers without one.

It is a container made of plain namespaces: its own network (reached over a veth pair, at
169.254.77.4k+2), mount and PID namespaces, its own sshd, and its own Open vSwitch database and
daemon under a private /run. /tmp, /run, Open vSwitch's directories and the home directories
are its own; the rest of the file system (the programs, halab's checkout) is shared, as two
machines provisioned alike with the checkout on shared storage would be. So the cluster
edition's ssh, `mnexec` and `ovs-vsctl` calls really cross a machine boundary, and what the lab
leaves there is really there.

    sudo .venv/bin/python -m harness.emulated_server start     # prints the server's address
    sudo .venv/bin/python -m harness.emulated_server stop

Everything it makes has a name with "halab" in it and is removed by `stop`, even after a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HalabError
from harness.preflight import require_root
from harness.servers import ssh_user


def q(path: object) -> str:
    """A path or word, quoted for the machine's shell scripts."""
    return shlex.quote(str(path))

ROOT = Path("/var/lib/halab/machines")
CHECKOUT = Path(__file__).resolve().parent.parent
SSH_SNIPPETS = Path("/etc/ssh/ssh_config.d")
START_TIMEOUT_S = 15.0
#: What the machine keeps to itself (the rest of the file system is shared).
#: Its own, empty: runtime state, temporary files, Open vSwitch's, and home directories (the shell
#: startup files of this machine's users, run by sshd's shell for every command, are not its).
PRIVATE_DIRS = ("/run", "/tmp", "/etc/openvswitch", "/var/log/openvswitch", "/var/lib/openvswitch", "/root", "/home")

_INIT = r"""#!/bin/bash
# The emulated machine's first process: private directories, Open vSwitch, then sshd on eth0.
set -eu
{keep}
for d in {private}; do mount -t tmpfs -o mode=0755 halab-machine "$d"; done
chmod 1777 /tmp
{share}
mkdir -p /run/sshd /run/openvswitch
{sudoers}
{overrides}
if [ {with_ovs} = 1 ]; then
    ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server /etc/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
        --pidfile=/run/openvswitch/ovsdb-server.pid --detach --log-file=/var/log/openvswitch/ovsdb-server.log
    ovs-vsctl --no-wait init
    ovs-vswitchd unix:/run/openvswitch/db.sock --pidfile=/run/openvswitch/ovs-vswitchd.pid --detach \
        --log-file=/var/log/openvswitch/ovs-vswitchd.log
fi
ip link set lo up
while ! ip link show eth0 >/dev/null 2>&1; do sleep 0.02; done
ip addr add {address}/30 dev eth0
ip link set eth0 up
# Its own configuration where sshd (and `sshd -T`, which halab's check runs) looks for it.
mount --bind {dir}/sshd_config /etc/ssh/sshd_config
/usr/sbin/sshd -E {dir}/sshd.log
echo machine-ready
# The machine's init: it adopts every orphan and, unlike `sleep`, reaps it (bash waits for any child).
while true; do sleep 3600 & wait $!; done
"""

_SSHD = """ListenAddress {address}
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitTunnel {tunnel}
UseDNS no
StrictModes no
PidFile none
# Through PAM, as Debian's sshd: a user without a password (locked, as useradd makes one) may log in by key.
UsePAM yes
"""

_SSH_CLIENT = """# halab: the emulated machine {name} (harness.emulated_server); removed when it stops.
Host {address}
    IdentityFile {dir}/client_key
    IdentitiesOnly yes
    UserKnownHostsFile {dir}/known_hosts
    StrictHostKeyChecking yes
"""


@dataclass
class EmulatedServer:
    """A container playing a second machine; `with EmulatedServer(1) as server: server.address`.

    `with_ovs` False: a machine where Open vSwitch is not running. `overrides`: executables that
    are different there (path -> script text; an empty text hides the program): a machine with
    another Mininet, or none. `permit_tunnel`: "no" for an sshd that refuses tunnels.
    """

    index: int = 1
    with_ovs: bool = True
    overrides: dict[str, str] | None = None
    #: Its sshd's PermitTunnel (a machine set up without tunnels: "no").
    permit_tunnel: str = "ethernet"
    #: Who logs in (harness.servers.ssh_user: the user who ran sudo, as halab does).
    user: str = field(default_factory=lambda: ssh_user())
    #: Shared with this machine at the same path even inside a private directory (halab's checkout
    #: in /tmp, say), as the Vagrant VMs share theirs.
    shared: tuple[Path, ...] = (CHECKOUT,)

    def __post_init__(self) -> None:
        if not 1 <= self.index <= 60:
            raise ValueError(f"index={self.index}: choose 1 to 60")
        self.name = f"halab-m{self.index}"
        self.dir = ROOT / self.name
        self.address = f"169.254.77.{4 * self.index + 2}"
        self.gateway = f"169.254.77.{4 * self.index + 1}"
        self.snippet = SSH_SNIPPETS / f"{self.name}.conf"
        self._unshare: subprocess.Popen | None = None

    def __enter__(self) -> EmulatedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EmulatedServer:
        self.stop()  # what a crashed earlier one left
        try:
            self._write_files()
            with (self.dir / "init.log").open("wb") as log:
                # --kill-child: the machine's first process, and with it the machine, dies with `unshare`.
                self._unshare = subprocess.Popen(
                    ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                     "--propagation", "private", str(self.dir / "init.sh")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self._wire()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End the machine (its `unshare`, and with it its first process: the kernel then ends
        every process in it), and remove its link, its ssh settings and its files, whatever fails."""
        try:
            running = [self._unshare] if self._unshare is not None else []
            for popen in running:
                popen.kill()
                popen.wait(10)
            for pid in [] if running else _pids_of(f"unshare .*{self.dir}/init.sh"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid)
        finally:
            self._unshare = None
            subprocess.run(["ip", "link", "del", self.name], capture_output=True, check=False)
            self.snippet.unlink(missing_ok=True)
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- internals ----------------------------------------------------------------------

    def _init_pid(self) -> int | None:
        """The machine's PID 1 (as this machine numbers it): the child of its `unshare`."""
        assert self._unshare is not None
        try:
            kids = Path(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def _write_files(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True)
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f",
                            str(self.dir / key)], check=True, capture_output=True)
        if self.user != "root":  # the user's ssh reads its key: the directory opens for that alone
            shutil.chown(self.dir / "client_key", user=self.user)
            os.chmod(self.dir, 0o711)
        (self.dir / "authorized_keys").write_text((self.dir / "client_key.pub").read_text())
        host_key = (self.dir / "host_key.pub").read_text().split()
        (self.dir / "known_hosts").write_text(f"{self.address} {host_key[0]} {host_key[1]}\n")
        (self.dir / "sshd_config").write_text(_SSHD.format(address=self.address, dir=self.dir,
                                                           tunnel=self.permit_tunnel))
        overrides = []
        for i, (path, text) in enumerate(sorted((self.overrides or {}).items())):
            stand_in = self.dir / f"override-{i}"
            stand_in.write_text(text)
            stand_in.chmod(0o755 if text else 0o644)
            overrides.append(f"mount --bind {q(stand_in)} {q(path)}")
        sudoers = ""
        if self.user != "root":
            sudoers = (f"mount -t tmpfs -o mode=0755 halab-machine /etc/sudoers.d\n"
                       f"echo '{self.user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/halab\n"
                       f"chmod 0440 /etc/sudoers.d/halab\n"
                       f"install -d -o {self.user} -m 700 \"$(getent passwd {self.user} | cut -d: -f6)\"")
        keep, share = [], []
        for i, path in enumerate(self.shared):  # parked outside the private directories, then put back
            parked = self.dir / f"shared-{i}"
            parked.mkdir()
            keep.append(f"mount --bind {q(path)} {q(parked)}")
            share.append(f"mkdir -p {q(path)} && mount --bind {q(parked)} {q(path)}")
        init = self.dir / "init.sh"
        init.write_text(_INIT.format(private=" ".join(PRIVATE_DIRS), keep="\n".join(keep), share="\n".join(share),
                                     sudoers=sudoers, overrides="\n".join(overrides),
                                     with_ovs=int(self.with_ovs), address=self.address, dir=q(self.dir)))
        init.chmod(0o700)
        self.snippet.write_text(_SSH_CLIENT.format(name=self.name, address=self.address, dir=self.dir))

    def _wire(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (init := self._init_pid()) is None:
            if time.monotonic() > deadline or (self._unshare and self._unshare.poll() is not None):
                raise HalabError(f"The emulated machine {self.name} did not start.", f"See {self.dir}/init.log.")
            time.sleep(0.01)
        for argv in (["ip", "link", "add", self.name, "type", "veth", "peer", "name", "eth0", "netns", str(init)],
                     ["ip", "addr", "add", f"{self.gateway}/30", "dev", self.name],
                     ["ip", "link", "set", self.name, "up"]):
            subprocess.run(argv, check=True, capture_output=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        log = self.dir / "init.log"
        while "machine-ready" not in log.read_text(errors="replace"):
            assert self._unshare is not None
            if self._unshare.poll() is not None or time.monotonic() > deadline:
                raise HalabError(f"The emulated machine {self.name} did not start:\n"
                                 f"{log.read_text(errors='replace')[-1000:]}", f"See {log}.")
            time.sleep(0.02)


def _pids_of(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in found.split()]


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.emulated_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--index", type=int, default=1, help="which one (1 to 60): its address is 169.254.77.4k+2")
    args = parser.parse_args(argv)
    try:
        require_root()
        server = EmulatedServer(args.index)
        if args.action == "start":
            server.start()
            print(server.address)
        else:
            server.stop()
    except HalabError as exc:
        print(f"halab: {exc.problem}\nFix: {exc.fix}", file=sys.stderr)
        return 1
    except (subprocess.CalledProcessError, ValueError) as exc:
        print(f"halab: the emulated machine did not start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
