"""The running lab's descriptor (state directory, root-only): what `halab ls` shows and `halab exec` uses.

Kept free of heavy imports: `halab exec HOST -- CMD` starts here and replaces itself with the
command in the host's namespaces, so it costs little more than the bare command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

from ha.statusfile import state_root
from harness import servers
from harness.errors import HalabError
from harness.procs import is_same_process

DESCRIPTOR = "lab.json"
CONTROL_SOCKET = "lab.sock"
NO_LAB = HalabError("No halab lab is running.", "Start one with `sudo halab up active-standby --detach`.")


def descriptor_path() -> Path:
    return state_root() / DESCRIPTOR


def control_socket() -> Path:
    return state_root() / CONTROL_SOCKET


def read_descriptor() -> dict | None:
    """The descriptor of the lab brought up last (running, or crashed), or None."""
    try:
        return json.loads(descriptor_path().read_text())
    except (OSError, ValueError):
        return None


def file_digest(path: Path) -> str | None:
    """The lab file's SHA-256 (None: it cannot be read): whether it changed since the lab came up."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def running() -> dict | None:
    """The descriptor of the lab that is up now, or None."""
    d = read_descriptor()
    if d is None or not is_same_process(d["pid"], d["ticks"] or 0):
        return None
    return d


def exec_in(host: str, command: list[str]) -> int:
    """Run COMMAND in HOST's namespaces; replaces this process, so its exit code is the command's."""
    d = running()
    if d is None:
        raise NO_LAB
    if host not in d["hosts"]:
        raise HalabError(f"The running lab has no host {host!r}.", f"Choose one of: {', '.join(sorted(d['hosts']))}.")
    if not command:
        raise HalabError("No command to run.", f"Give one after `--`: `halab exec {host} -- ip addr`.")
    h = d["hosts"][host]
    if not is_same_process(h["pid"], h["ticks"] or 0):
        raise HalabError(f"{host}'s namespace is gone (its shell, pid {h['pid']}, exited).",
                         "`sudo halab down`, then bring the lab up again.")
    if "server" in h:
        line = shlex.join(["mnexec", "-a", str(h["remote_pid"]), *command])
        argv = servers.ssh_argv(h["server"], line, terminal=sys.stdin.isatty())
    else:
        argv = ["mnexec", "-a", str(h["pid"]), *command]
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise HalabError(f"Cannot run {command[0]!r} on {host}: {exc.strerror}.", "Check the command.") from None
