"""Undo what a finished or crashed run recorded in its state file, and nothing else.

Unlike `mn -c`, which kills every process named controller or ping and deletes every OVS
bridge on the machine, this removes only the processes, namespaces, bridges and links that a
halab run wrote down (runstate), each checked against its recorded identity first, and the
connections its load balancer left in conntrack.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

from controller import conntrack, ids
from ha.statusfile import state_root
from harness import daemons, servers
from harness.contentsync import sync_root
from harness.daemons.postgresql import pg_root
from harness.procs import is_same_process, kill, pids_in_netns, start_ticks, wait_gone
from harness.runstate import RUN_KEY, RunState, leftover_states


def undo(state: RunState, term_grace: float = 1.0) -> list[str]:
    """Remove what `state` recorded; return a line per thing removed (for `halab clean`)."""
    removed: list[str] = []
    unreached = []
    for server in state.servers:  # first: its processes there log through ssh clients here
        reached, lines = servers.undo_run(server, state.run_id, state.interfaces,
                                          tuple(root / state.run_id for root in _data_roots()))
        removed += lines
        if not reached:
            unreached.append(server)
    removed += _kill_processes(state, term_grace)
    # Before the bridges: conntrack lives in their datapath (after a lab's own teardown, Mininet
    # has removed them already, and the datapath went with its last bridge, conntrack with it).
    removed += _forget_connections()
    removed += _delete_bridges(state.run_id)
    removed += _delete_interfaces(state.interfaces)
    removed += _delete_files(state.files)
    removed += _delete_dirs(state.dirs)
    if unreached:
        # What is left is over there: keep only that, so that the next clean-up tries again.
        RunState(state.run_id, state.started_ticks, interfaces=state.interfaces, servers=unreached).save()
    else:
        state.forget()
    return removed


def forget_server(server: str) -> list[str]:
    """Give up on what earlier runs left on `server` (gone for good): drop it from their records
    (caller holds the lab lock)."""
    dropped = []
    for path in leftover_states():
        try:
            state = RunState.load(path)
        except (ValueError, TypeError, KeyError):
            continue  # unreadable: the clean-up that follows removes it
        if server in state.servers:
            state.servers.remove(server)
            state.save()
            dropped.append(f"the record of run {state.run_id} on {server}")
    return dropped


def clean_leftovers() -> list[str]:
    """Undo every earlier run whose state file is still here (caller holds the lab lock)."""
    removed: list[str] = []
    for path in leftover_states():
        try:
            state = RunState.load(path)
        except (ValueError, TypeError, KeyError):
            path.unlink(missing_ok=True)
            removed.append(f"unreadable state file {path.name}")
            continue
        removed += undo(state)
    # Holding the lock, any bridge still marked by a halab run is a leftover too (its state
    # file was lost, or the run died between creating the bridge and saving its state).
    removed += _delete_bridges(None)
    # Likewise any database or socket directory: no lab runs, so none is in use.
    removed += _delete_dirs([str(p) for p in _run_dirs()])
    return removed


def leftovers() -> list[str]:
    """Everything of halab's that is still here: state files, marked bridges, lab processes, the
    directories of databases and of the controller's sockets."""
    found = [f"state file {p.name}" for p in sorted(state_root().glob("run-*.json"))]
    bridges = marked_bridges()
    found += [f"bridge {b}" for b in bridges] if bridges is not None else ["bridges unknown: ovs-vsctl failed"]
    found += [f"process {line}" for line in daemons.running()]
    found += [f"directory {p}" for p in _run_dirs()]
    return found


def _data_roots() -> tuple[Path, ...]:
    """halab's own roots of the runs' data on each host's machine: PostgreSQL's, the web roots."""
    return pg_root(), sync_root()


def _own_roots() -> tuple[Path, ...]:
    """Every root of halab's own for the runs' directories: their data, the controller's sockets."""
    return *_data_roots(), servers.relay_root()


def _run_dirs() -> list[Path]:
    """The runs' directories under halab's own roots."""
    return [p for root in _own_roots() if root.is_dir() for p in sorted(root.glob("*"))]


def _kill_processes(state: RunState, term_grace: float) -> list[str]:
    """Recorded processes (if still the same ones) and anything else living in the run's hosts.

    The namespace sweep catches what recorded processes spawned (keepalived's children, say).
    It only takes processes that started after the run did, so a namespace inode that the
    kernel reused for an older, unrelated namespace is never mistaken for one of ours.
    """
    victims: dict[int, str] = {}
    for p in state.processes:
        if is_same_process(p.pid, p.ticks):
            victims[p.pid] = p.what
    for host, inode in state.netns.items():
        for pid in pids_in_netns(inode):
            ticks = start_ticks(pid)
            if ticks is not None and ticks >= state.started_ticks and is_same_process(pid, ticks):
                victims.setdefault(pid, f"process in host {host}")
    # Daemons with a stop signal of their own (PostgreSQL: SIGINT, a fast shutdown that releases its
    # shared memory) get it first, recorded as "<host>:<program>".
    gentle = []
    for pid, what in victims.items():
        cls = daemons.DAEMONS.get(what.rpartition(":")[2])
        if cls is not None and cls.stop_signal != signal.SIGTERM and kill(pid, cls.stop_signal):
            gentle.append(pid)
    wait_gone(gentle, 5.0)
    for pid in victims:
        kill(pid, signal.SIGTERM)
    for pid in wait_gone(list(victims), term_grace):
        kill(pid, signal.SIGKILL)
    wait_gone(list(victims), 2.0)
    return [f"process {pid} ({what})" for pid, what in sorted(victims.items())]


def _forget_connections() -> list[str]:
    """The balanced connections the load balancer committed to conntrack, and the zone's limit
    (one lab at a time: all of halab's zone is this run's)."""
    try:
        left = len(conntrack.dump().splitlines())
        if left:
            conntrack.forget_all()
        conntrack.unlimit()
    except conntrack.ConntrackError:
        return []  # no datapath (no bridge left, or Open vSwitch not running): no zone either
    return [f"{left} connection(s) in conntrack zone {ids.CT_ZONE}"] if left else []


def _delete_bridges(run_id: str | None) -> list[str]:
    """Delete the OVS bridges that carry this run's mark (any halab run's, for None)."""
    removed = []
    for name in bridges_of_run(run_id):
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", name], check=False,
                       capture_output=True)
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
        removed.append(f"OVS bridge {name}")
    return removed


def marked_bridges() -> dict[str, str] | None:
    """{bridge: run id} of every OVS bridge a halab run marked; None when ovs-vsctl cannot tell."""
    try:
        out = subprocess.run(["ovs-vsctl", "--timeout=5", "--format=json", "--columns=name,external_ids",
                              "list", "Bridge"], capture_output=True, text=True, check=False)
    except OSError:  # no Open vSwitch on this machine
        return None
    if out.returncode != 0:
        return None
    marked = {}
    for name, (_kind, pairs) in json.loads(out.stdout)["data"]:
        ids = dict(pairs)
        if RUN_KEY in ids:
            marked[name] = ids[RUN_KEY]
    return marked


def bridges_of_run(run_id: str | None) -> list[str]:
    """Names of OVS bridges marked by `run_id`, or by any halab run when run_id is None."""
    return [name for name, run in (marked_bridges() or {}).items() if run_id is None or run == run_id]


def _delete_interfaces(names: list[str]) -> list[str]:
    """Root-namespace link ends the run recorded (switch-to-switch veths outlive the hosts)."""
    removed = []
    for name in names:
        if Path(f"/sys/class/net/{name}").exists():
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
            removed.append(f"interface {name}")
    return removed


def _delete_files(paths: list[str]) -> list[str]:
    """Files the run kept in the state directory (a socket, a token); nothing outside it."""
    removed = []
    root = state_root().resolve()
    for name in paths:
        path = Path(name)
        if path.parent.resolve() == root and (path.exists() or path.is_symlink()):
            path.unlink()
            removed.append(f"file {path.name}")
    return removed


def _delete_dirs(paths: list[str]) -> list[str]:
    """Directories the run made right under halab's own roots for its data and for the
    controller's sockets in a lab over several servers; nothing else."""
    removed = []
    roots = {root.resolve() for root in _own_roots()}
    for name in paths:
        path = Path(name)
        inside = path.resolve().parent in roots and path.name not in ("", ".", "..")
        if inside and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"directory {path}")
    return removed
