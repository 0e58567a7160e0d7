"""Every program a lab runs, one class each (harness.daemons.base.Daemon), and the registry that
the leftover checks and `halab clean` build their process patterns from."""

from __future__ import annotations

import subprocess

from harness.daemons.base import Daemon
from harness.daemons.contentsync import Lsyncd, RsyncDaemon, SyncPush, TarReceiver
from harness.daemons.controller import Controller
from harness.daemons.haproxy import HAProxy
from harness.daemons.heartbeat import HalabHeartbeat
from harness.daemons.patroni import Patroni, PatroniRouter, RaftWitness
from harness.daemons.postgresql import PostgreSQL
from harness.daemons.responder import Responder
from harness.daemons.vrrp import HalabVrrp, Keepalived
from harness.daemons.webapp import WebApp
from harness.procs import is_running

DAEMONS: dict[str, type[Daemon]] = {cls.program: cls for cls in
                                    (Controller, Responder, HalabVrrp, Keepalived, HalabHeartbeat, HAProxy,
                                     PostgreSQL, Patroni, RaftWitness, PatroniRouter, WebApp, SyncPush, TarReceiver,
                                     RsyncDaemon, Lsyncd)}
#: What else a lab starts that could outlive it: the shell Mininet keeps in every host, and the
#: measuring programs scenarios and benchmarks run on hosts.
OTHER_PATTERNS = {"mininet host shell": r"^bash .* mininet:",
                  "lab measurement":
                      r"-m harness\.(advert_watch|holder_watch|dbwriter|contentsync\.(writer|reader))( |$)",
                  "live view": r"(-m harness\.(cli|entry)|/halab) web( |$)"}


def process_patterns() -> dict[str, str]:
    return {**{name: cls.pattern for name, cls in DAEMONS.items()}, **OTHER_PATTERNS}


def running() -> list[str]:
    """`pid command line` of every live process a halab lab would have started."""
    found: dict[int, str] = {}
    for pattern in process_patterns().values():
        out = subprocess.run(["pgrep", "-a", "-f", "--", pattern], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            pid = int(line.split()[0])
            if is_running(pid):
                found[pid] = line
    return [found[pid] for pid in sorted(found)]


__all__ = ["DAEMONS", "Controller", "Daemon", "HAProxy", "HalabHeartbeat", "HalabVrrp", "Keepalived", "Lsyncd",
           "Patroni",
           "PatroniRouter", "PostgreSQL", "RaftWitness", "Responder", "RsyncDaemon", "SyncPush",
           "TarReceiver", "WebApp", "process_patterns", "running"]
