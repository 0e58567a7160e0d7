"""The two VRRP daemons a lab host can run, behind one interface: halab's agent and keepalived.

Both take the same instance (ha.vrrp.config.InstanceConfig, in keepalived's vocabulary) and
report their state changes in halab's event schema, so a scenario runs either, or both.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path

from ha.configcheck import ConfigError
from ha.statusfile import ensure_private
from ha.vrrp import config as vrrp_config
from ha.vrrp.config import AgentConfig, InstanceConfig
from harness import events
from harness.daemons.base import AGENT_REALTIME_PRIORITY, Daemon, Lab
from harness.errors import HalabError
from topologies.base import LabTopo

VRRP = [sys.executable, "-u", "-m", "ha.vrrp"]


def instance(topo: LabTopo, host: str, priority: int, advert_int: float = 1.0,
             vip: IPv4Interface | IPv6Interface | None = None,
             **more: object) -> InstanceConfig:
    """One instance for `host` on the interface in the VIP's subnet (the topology's VIP by default),
    checked as a configuration file would be: a bad value is a HalabError naming it."""
    vip = vip or topo.vip
    assert vip is not None, f"{type(topo).__name__} has no VIP"
    # The topologies are IPv4: an IPv6 VIP goes on the host's first interface.
    interface = topo.interface_on(host, vip.network)[0] if vip.version == 4 else topo.interfaces(host)[0][0]
    inst = InstanceConfig(name=str(more.pop("name", "VI_1")), interface=str(more.pop("interface", interface)),
                          virtual_router_id=int(more.pop("virtual_router_id", 51)), priority=priority,
                          advert_int=advert_int, virtual_ipaddress=(vip,))
    try:
        return vrrp_config.check(AgentConfig((replace(inst, **more),))).instances[0]
    except ConfigError as exc:
        raise HalabError(f"VRRP instance for {host}: {exc}", "Choose a value in the range it names.") from None


class VrrpDaemon(Daemon):
    """What a scenario needs of either daemon."""

    def states(self) -> dict[str, str]:
        """Each instance's latest state, from the event log."""
        return {e.subject: e.state for e in self.events()}

    def masters(self) -> list[str]:
        """The instances whose latest state is MASTER."""
        return [name for name, state in self.states().items() if state == "MASTER"]

    @property
    def configured(self) -> tuple[InstanceConfig, ...]:
        raise NotImplementedError

    def addresses(self) -> list[str]:
        """Every virtual address it may hold."""
        return [str(a.ip) for i in self.configured for a in i.virtual_ipaddress]

    def held(self) -> list[str]:
        """The virtual addresses of the instances it is master of: what it says it holds now."""
        masters = set(self.masters())
        return [str(a.ip) for i in self.configured if i.name in masters for a in i.virtual_ipaddress]

    def advertiser(self) -> Daemon:
        """What sends the adverts, to freeze or kill (keepalived: its VRRP child)."""
        return self


class HalabVrrp(VrrpDaemon):
    program = "halab-vrrp"
    pattern = r"-m ha\.vrrp( |$)"

    def __init__(self, lab: Lab, host: str, instances: InstanceConfig | tuple[InstanceConfig, ...],
                 tag: str = "", realtime_priority: int | None = AGENT_REALTIME_PRIORITY) -> None:
        super().__init__(lab, host, tag)
        self.instances = (instances,) if isinstance(instances, InstanceConfig) else instances
        self.realtime_priority = realtime_priority

    @property
    def configured(self) -> tuple[InstanceConfig, ...]:
        return self.instances

    @property
    def event_log(self) -> Path:
        return self.base.with_suffix(".events.jsonl")

    def files(self) -> dict[Path, str]:
        self.event_log.unlink(missing_ok=True)
        assist = {}
        if any(i.assist for i in self.instances):
            if self.lab.assist_socket is None:
                raise HalabError(f"{self.host}: assist = true, but this lab's controller does not assist.",
                                 "Start the lab with assist (`--assist`).")
            assist = {"assist_socket": self.lab.socket_for(self.host, "assist")}
        return {self.base.with_suffix(".toml"): vrrp_config.dump(
            AgentConfig(self.instances, self.event_log, self.realtime_priority, **assist))}

    def argv(self) -> list[str]:
        return [*VRRP, "--config", str(self.base.with_suffix(".toml"))]

    def ready(self) -> bool:
        return self.event_log.exists()

    def events(self) -> list[events.Event]:
        return self.read_events(self.event_log)

    def status(self) -> list[dict]:
        """This agent's instances, as `halab-vrrp status --json` shows them on its host."""
        shown = self.lab.run(self.host, [*VRRP, "status", "--json"])
        mine = [a for a in json.loads(shown.stdout or "[]") if self.process and a["pid"] == self.process.pid]
        return mine[0]["instances"] if mine else []


NOTIFY_SCRIPT = r"""#!/bin/bash
# keepalived runs this with the FIFO it writes each state change to, in order, one a line:
#   INSTANCE "<name>" <MASTER|BACKUP|FAULT|STOP> <priority>
# Each is stamped as it is read (bash's own clock: no process per line) and logged in halab's schema.
export LC_ALL=C
while read -r kind name state priority; do
    [ "$kind" = INSTANCE ] || continue
    printf '{"wall": %s, "source": "keepalived", "subject": "%s", "to": "%s", "reason": "notify, priority %s"}\n' \
        "$EPOCHREALTIME" "${name//\"/}" "$state" "$priority" >> {events}
done < "${@: -1}"
"""


class Keepalived(VrrpDaemon):
    """keepalived, the VRRP daemon people run in production, as the baseline on lab hosts.

    Its configuration is written in keepalived's own syntax from the same instance; it runs in
    the foreground with pid files of its own, and a script reading its notify FIFO logs each
    state change in halab's event schema (wall clock only: the reader places it on the monotonic
    clock).
    """

    program = "keepalived"
    pattern = r"^keepalived( |$)"

    def __init__(self, lab: Lab, host: str, instances: InstanceConfig | tuple[InstanceConfig, ...],
                 realtime_priority: int | None = AGENT_REALTIME_PRIORITY) -> None:
        super().__init__(lab, host)
        self.instances = (instances,) if isinstance(instances, InstanceConfig) else instances
        self.realtime_priority = realtime_priority

    @property
    def configured(self) -> tuple[InstanceConfig, ...]:
        return self.instances

    @property
    def track_scripts(self) -> list:
        """Every instance's track scripts, in order: keepalived names them chk_0, chk_1, ..."""
        return [t for i in self.instances for t in i.track_script]

    def pid_file(self, kind: str) -> Path:
        return self.base.with_suffix(f".{kind}.pid")

    @property
    def event_log(self) -> Path:
        return self.base.with_suffix(".events.jsonl")

    def files(self) -> dict[Path, str]:
        if any(i.assist for i in self.instances):
            raise HalabError(f"{self.host}: keepalived has no failover assist (assist = true).",
                             "Run halab's agent (halab-vrrp) for assist, or remove assist.")
        for kind in ("main", "vrrp", "checkers"):
            self.pid_file(kind).unlink(missing_ok=True)
        self.event_log.unlink(missing_ok=True)
        notify = self.notify_script
        checks = {self.track_script(i): f"#!/bin/sh\nexec {shlex.join(t.argv)}\n"
                  for i, t in enumerate(self.track_scripts)}
        return {notify: NOTIFY_SCRIPT.replace("{events}", shlex.quote(str(self.event_log))), **checks,
                self.base.with_suffix(".conf"): render_keepalived(self.host or "", self.instances, notify,
                                                                     list(checks), self.realtime_priority)}

    def track_script(self, index: int) -> Path:
        return self.base.with_suffix(f".track-{index}.sh")

    @property
    def notify_script(self) -> Path:
        return self.base.with_suffix(".notify.sh")

    def write_files(self) -> None:
        super().write_files()
        ensure_private(self.dump_dir)
        os.chmod(self.notify_script, 0o700)  # keepalived runs it
        fifo = notify_fifo(self.notify_script)
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo, 0o600)
        for i in range(len(self.track_scripts)):
            os.chmod(self.track_script(i), 0o700)

    @property
    def dump_dir(self) -> Path:
        """Where keepalived writes what it is asked to dump ($TMPDIR; /tmp would be every lab host's)."""
        return self.base.with_suffix(".tmp")

    def counters(self, timeout: float = 1.0) -> dict[str, dict[str, int]]:
        """Each instance's counters (advert_rcvd, ip_ttl_err, addr_list_err, ...), as keepalived
        dumps them on its JSON signal; {} when it cannot (frozen, gone, a build without JSON, no
        dump in time). The dump holds the instance's whole state: read, then removed."""
        dump = self.dump_dir / "keepalived.json"
        if self.frozen():
            return {}
        try:
            dump.unlink(missing_ok=True)
            self.signal(_json_signal())
        except (OSError, subprocess.SubprocessError, ValueError):
            return {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                dumped = json.loads(dump.read_text())
            except (OSError, ValueError):  # not there, or not whole yet
                time.sleep(0.02)
                continue
            dump.unlink(missing_ok=True)
            try:
                return {i["data"]["iname"]: i["stats"] for i in dumped}
            except (KeyError, TypeError):
                return {}
        return {}

    def argv(self) -> list[str]:
        return ["env", f"TMPDIR={self.dump_dir}",
                "keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
                "--use-file", str(self.base.with_suffix(".conf")), "--pid", str(self.pid_file("main")),
                "--vrrp_pid", str(self.pid_file("vrrp")), "--checkers_pid", str(self.pid_file("checkers"))]

    def ready(self) -> bool:
        return self.vrrp_pid() is not None

    def vrrp_pid(self) -> int | None:
        """PID of the VRRP child, the process that actually sends adverts."""
        try:
            text = self.pid_file("vrrp").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def events(self) -> list[events.Event]:
        return self.read_events(self.event_log)

    def advertiser(self) -> Daemon:
        return _VrrpChild(self)

    def crash(self) -> float:
        """Kill keepalived as a crash would, and return when its VRRP process died.

        The parent is frozen first: it would otherwise restart a dead child, and a child told
        of its parent's death would leave cleanly with a priority-0 advert.
        """
        child = self._child()
        assert self.process is not None
        self.process.signal(signal.SIGSTOP)
        at = time.monotonic()
        self.process.signal_pid(child, signal.SIGKILL)
        self.process.signal(signal.SIGKILL)
        return at

    def _child(self) -> int:
        pid = self.vrrp_pid()
        if pid is None:
            raise HalabError(f"keepalived on {self.host} wrote no VRRP pid file.", f"See {self.base}.conf and its log.")
        return pid


@functools.cache
def _json_signal() -> int:
    """The signal that makes keepalived dump its state as JSON (its number depends on the build)."""
    return int(subprocess.run(["keepalived", "--signum=JSON"], capture_output=True, text=True, check=True,
                              timeout=5).stdout)


class _VrrpChild(Daemon):
    """keepalived's VRRP process as a fault target (it is the one that sends adverts)."""

    program = "keepalived-vrrp"
    pattern = Keepalived.pattern

    def __init__(self, parent: Keepalived) -> None:
        super().__init__(parent.lab, parent.host)
        self.parent = parent

    def signal(self, sig: int) -> float:
        pid = self.parent._child()
        assert self.parent.process is not None
        at = time.monotonic()
        self.parent.process.signal_pid(pid, sig)
        return at


#: The CPU keepalived's VRRP process may use at realtime priority between two blocking calls
#: before the kernel kills it (RLIMIT_RTTIME; keepalived's default, 10 ms, is spent by the
#: gratuitous ARPs of 16 VIPs on a 2-core machine: benchmarks/vrrp_instances.py).
KEEPALIVED_RT_LIMIT_US = 100_000


def notify_fifo(notify_script: Path) -> Path:
    """Where keepalived writes its state changes for `notify_script` to read."""
    return notify_script.with_suffix(".fifo")


def render_keepalived(host: str, instances: InstanceConfig | tuple[InstanceConfig, ...], notify: Path,
                      checks: list[Path] | None = None, realtime_priority: int | None = None) -> str:
    """keepalived.conf for one host and its instances, VRRP version 3 (fractional advert_int); each
    track script runs from its file in `checks`, the instances' scripts in order (keepalived runs
    no shell of its own). State changes go, in order, to a FIFO next to `notify`, the script that
    reads it: keepalived runs a `notify` script per change, at once, and two changes close together
    (a backup that preempted, then yields) were logged in either order."""
    instances = (instances,) if isinstance(instances, InstanceConfig) else instances
    checks = checks or []
    scripts = [t for inst in instances for t in inst.track_script]
    defined = "".join(f"""vrrp_script chk_{i} {{
    script "{path}"
    interval {t.interval:g}
    timeout {max(1, round(t.timeout))}
    weight {t.weight}
    fall {t.fall}
    rise {t.rise}
}}

""" for i, (path, t) in enumerate(zip(checks, scripts, strict=True)))
    realtime = (f"\n    vrrp_rt_priority {realtime_priority}\n    vrrp_rlimit_rttime {KEEPALIVED_RT_LIMIT_US}"
                if realtime_priority is not None else "")
    blocks, first = [], 0
    for inst in instances:
        mine = range(first, first + len(inst.track_script))
        first += len(inst.track_script)
        blocks.append(_keepalived_instance(inst, [f"chk_{i}" for i in mine]))
    return f"""global_defs {{
    router_id {host}
    vrrp_version 3
    script_user root
    enable_script_security{realtime}
    vrrp_notify_fifo "{notify_fifo(notify)}"
    vrrp_notify_fifo_script "{notify}"
}}

{defined}{"".join(blocks)}"""


def _keepalived_instance(inst: InstanceConfig, tracked: list[str]) -> str:
    vips = "\n        ".join(str(v) for v in inst.virtual_ipaddress)
    track = ("\n    track_script {\n" + "".join(f"        {name}\n" for name in tracked) + "    }"
             if tracked else "")
    return f"""vrrp_instance {inst.name} {{
    state BACKUP
    interface {inst.interface}
    virtual_router_id {inst.virtual_router_id}
    priority {inst.priority}
    advert_int {inst.advert_int:g}
    {"" if inst.preempt else "nopreempt"}
    virtual_ipaddress {{
        {vips}
    }}{track}
}}
"""


#: The VRRP daemons a scenario can choose, by the name the command line uses.
VRRP_DAEMONS: dict[str, type[VrrpDaemon]] = {"halab": HalabVrrp, "keepalived": Keepalived}
