"""Facts about processes from /proc: identity that survives PID reuse, and namespace membership."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None if it is gone.

    A PID plus its start time names one process for good: a reused PID has a later start.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 22; the command name (field 2) may hold spaces, so count from its closing paren.
    return int(stat[stat.rindex(")") + 2:].split()[19])


def cpu_seconds(pid: int) -> float | None:
    """CPU time of a process and of the children it has waited for (tar, rsync), in seconds;
    None if it is gone."""
    try:
        return stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def stat_cpu_seconds(stat: str) -> float:
    """The CPU seconds in a /proc/PID/stat line: utime stime cutime cstime."""
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of these processes (and of the children they waited for); a gone one counts 0."""
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)


def is_same_process(pid: int, ticks: int) -> bool:
    """True while `pid` is still the process that started at `ticks` and has not exited."""
    return start_ticks(pid) == ticks and is_running(pid)


def netns_inode(pid: int) -> int | None:
    """The inode of the network namespace of `pid`, or None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:  # gone, or not ours to inspect (PID 1 in some sandboxes)
        return None


def pids_in_netns(inode: int) -> list[int]:
    """Every live process whose network namespace is `inode`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and netns_inode(int(entry.name)) == inode:
            found.append(int(entry.name))
    return found


def kill(pid: int, sig: int = signal.SIGKILL) -> bool:
    """Send `sig`; False if the process was already gone."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive (reaped or zombie counts as gone); return the survivors."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if is_running(p)]
        if alive:
            time.sleep(0.02)
    return alive


def is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def processes() -> dict[int, tuple[int, str]]:
    """Every process now: pid -> (parent pid, command name)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            out[int(entry)] = (int(rest[1]), name)
    return out


def descendants(root: int) -> list[int]:
    """`root` and every process below it, as they are now."""
    table = processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _name) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
            todo += children.get(pid, [])
    return found


def vswitchd() -> int | None:
    """The PID of Open vSwitch's daemon, or None if it is not running."""
    return next((pid for pid, (_p, name) in processes().items() if name == "ovs-vswitchd"), None)
