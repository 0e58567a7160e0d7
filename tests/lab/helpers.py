"""Plumbing the Mininet tests share: responders on hosts, bounded waits, leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.cleanup import leftovers as halab_leftovers
from harness.lab import Lab
from harness.probe import PORT
from harness.probe import command as probe_cmd

REPO = Path(__file__).resolve().parents[2]

__all__ = ["PORT", "answers", "halab_leftovers", "probe_cmd", "start_responders", "stayed_share", "wait_until"]


def start_responders(lab: Lab, hosts: list[str]) -> dict:
    return {h: lab.responder(h) for h in hosts}


def answers(lab: Lab, src: str, targets: list[str], proto: str = "udp") -> dict[str, str | None]:
    """Which server answers each target address, as seen from host `src`."""
    return lab.who_answers(src, targets, proto)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Bounded retry: True as soon as predicate() holds, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def stayed_share(before: dict, after: dict, removed: str) -> float:
    """Of the flows that were not on the removed backend, the share that kept their backend."""
    kept = [flow for flow, server in before.items() if server not in (None, removed)]
    return sum(after[flow] == before[flow] for flow in kept) / len(kept)


def lesson(runs: Path, *args: str, rc: int = 0) -> str:
    """`halab lesson ARGS --lang en` as a student whose progress file and runs are in `runs`: how the
    suite grades the lessons that read a student's runs on the runs a test made anyway."""
    env = {**os.environ, "HALAB_LESSON_PROGRESS": str(runs / "progress.json"), "LANG": "C.UTF-8"}
    if args[0] == "check":
        args = (*args, "--runs-dir", str(runs))
    done = subprocess.run([sys.executable, "-m", "harness.entry", "lesson", *args, "--lang", "en"],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert done.returncode == rc, done.stdout + done.stderr
    return done.stdout


def fast_lab(tmp_path: Path, name: str = "active-standby", extra: str = "") -> str:
    """A built-in VRRP lab file at advert_int 0.1 s, for tests that need a lab, not its timing:
    its master is elected in 0.4 s, not 3.6 (and fails over as fast). `extra`: tables to add."""
    lab = tmp_path / f"fast-{name}.toml"
    text = (REPO / "labs" / f"{name}.toml").read_text()
    assert text.count("advert_int = 1.0") == 2
    lab.write_text(text.replace("advert_int = 1.0", "advert_int = 0.1") + extra)
    return str(lab)
