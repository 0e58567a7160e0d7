"""Checks before a lab starts, each failing with the command that fixes it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness import servers
from harness.errors import HalabError
from harness.servers import LOCAL

SETUP = "sudo make setup"

#: Programs the lab runs, with the Debian package that brings each.
REQUIRED_PROGRAMS = {
    "mnexec": "mininet",
    "ovs-vsctl": "openvswitch-switch",
    "ovs-ofctl": "openvswitch-switch",
    "ip": "iproute2",
    "ethtool": "ethtool",
}


def require_root() -> None:
    if os.geteuid() != 0:
        raise HalabError(
            "halab builds virtual networks (network namespaces, Open vSwitch bridges), which "
            "needs root.",
            "Run the same command with sudo, for example `sudo .venv/bin/halab demo`.",
        )


def require_programs(programs: dict[str, str] = REQUIRED_PROGRAMS, server: str = LOCAL) -> None:
    """`programs` (name: Debian package) on this machine, or on `server` over ssh."""
    if server == LOCAL:
        missing = sorted({pkg for prog, pkg in programs.items() if shutil.which(prog) is None})
    else:
        found = servers.run_on(server, " ".join(f"command -v {p} >/dev/null || echo {p};" for p in programs),
                               timeout=15)
        missing = sorted({programs[p] for p in found.stdout.split() if p in programs})
    if missing:
        where = "" if server == LOCAL else f" on server {server}"
        raise HalabError(
            f"Missing program(s) from the Debian package(s) {', '.join(missing)}{where}.",
            f"Install everything halab needs with `{SETUP}` (or `apt-get install {' '.join(missing)}`){where}.",
        )


def require_mininet() -> None:
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        raise HalabError(
            "The Python package mininet cannot be imported: it comes from Debian's python3-mininet, "
            "which only the system Python 3 sees.",
            f"Run `{SETUP}`, which installs it and creates .venv with --system-site-packages.",
        ) from None


def require_ovs() -> None:
    """Open vSwitch must be up; halab does not start system services behind the user's back."""
    try:
        ok = subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True,
                            check=False).returncode == 0
    except FileNotFoundError:
        ok = False
    if not ok:
        raise HalabError(
            "Open vSwitch is not running (ovs-vsctl cannot reach ovsdb-server).",
            "Start it with `sudo vagrant/provision.sh --start-ovs` (or `sudo make setup`).",
        )


def ovs_datapath() -> str:
    """'kernel' when the openvswitch kernel module is loaded or loadable, else 'user'.

    The userspace (netdev) datapath works everywhere but is slower; the Vagrant VM has the
    module, CI machines do not. Detect, never assume.
    """
    if Path("/sys/module/openvswitch").exists():
        return "kernel"
    if shutil.which("modprobe") and subprocess.run(["modprobe", "-q", "openvswitch"],
                                                   capture_output=True, check=False).returncode == 0:
        return "kernel"
    return "user"


def check_all() -> None:
    """Everything a lab needs, in the order a newcomer would fix it."""
    require_root()
    require_programs()
    require_mininet()
    require_ovs()
