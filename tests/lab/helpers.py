"""Plumbing the Mininet tests share: responders on hosts and reachability checks."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from harness.cleanup import bridges_of_run
from harness.lab import Lab
from harness.probe import PORT
from harness.probe import command as probe_cmd
from harness.runstate import state_dir

__all__ = ["PORT", "answers", "halab_leftovers", "probe_cmd", "start_responders", "wait_until"]


def start_responders(lab: Lab, hosts: list[str]) -> dict:
    procs = {h: lab.spawn(h, "responder", probe_cmd("serve", "--name", h, "--port", str(PORT))) for h in hosts}
    for proc in procs.values():
        proc.wait_for("serving", timeout=15)
    return procs


def answers(lab: Lab, src: str, targets: list[str], proto: str = "udp") -> dict[str, str | None]:
    """Which server answers each target address, as seen from host `src`."""
    result = lab.run(src, probe_cmd("check", "--proto", proto, "--port", str(PORT), *targets), timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Bounded retry: True as soon as predicate() holds, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def halab_leftovers() -> list[str]:
    """Everything of halab's that is still there: state files, marked bridges, lab processes."""
    found = [f"state file {p.name}" for p in sorted(state_dir().glob("run-*.json"))]
    found += [f"bridge {b}" for b in bridges_of_run(None)]
    ours = r"-m harness\.probe|-m controller\.launcher|-m ha\.vrrp|^bash .* mininet:"
    ps = subprocess.run(["pgrep", "-a", "-f", "--", ours], capture_output=True, text=True, check=False).stdout
    ps += subprocess.run(["pgrep", "-a", "-x", "keepalived"], capture_output=True, text=True, check=False).stdout
    found += [f"process {line}" for line in ps.splitlines() if _running(line)]
    return found


def _running(pgrep_line: str) -> bool:
    stat = Path(f"/proc/{pgrep_line.split()[0]}/stat")
    try:
        text = stat.read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"
