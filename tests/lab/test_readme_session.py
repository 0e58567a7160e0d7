"""The README's lab session, run as printed (as root: without the `sudo`): up --detach, ls, exec,
fault, vip, status, down, and the agents' own commands through the wrappers `make setup` installs."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.labinfo import descriptor_path
from tests.lab.helpers import halab_leftovers

pytestmark = [pytest.mark.mininet, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
#: Needs a terminal (the prompt), or is the foreground prompt itself: driven in tests/lab/test_up.py.
INTERACTIVE = ("cli", "up active-standby")


def session() -> list[str]:
    """The commands of the README's first code block under "Enter a lab"."""
    text = (REPO / "README.md").read_text()
    block = text[text.index("### Enter a lab"):]
    lines = []
    for line in block.splitlines()[1:]:
        if line.startswith("    sudo "):
            lines.append(line.strip().removeprefix("sudo ").split("  #")[0].strip())
        elif lines and not line.strip():
            break
    return lines


def test_the_readme_lab_session_works_as_printed():
    commands = [c for c in session() if c.split("halab ", 1)[1] not in INTERACTIVE]
    assert commands[0].endswith("up cluster --detach") and commands[-1].endswith("down"), commands
    try:
        for command in commands:
            done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=180, cwd=REPO)
            assert done.returncode == 0, f"{command}: {done.stderr}"
            if command.endswith("vip"):
                assert re.search(r"answers udp from client1: node\d", done.stdout), done.stdout
    finally:
        subprocess.run([str(REPO / ".venv/bin/halab"), "down"], capture_output=True, timeout=120, cwd=REPO)
    assert halab_leftovers() == [] and not descriptor_path().exists()


@pytest.mark.skipif(not Path("/usr/local/bin/halab").exists(), reason="make setup's wrappers are not installed")
def test_the_agents_commands_run_as_printed_through_the_wrappers():
    """`sudo halab-vrrp status` and the like, as the README prints them (sudo's secure_path has
    /usr/local/bin, not .venv/bin). 0: agents found; 1: none running here; never 'not found'."""
    for argv in (["halab", "--version"], ["halab-vrrp", "status"], ["halab-heartbeat", "status"],
                 ["halab-controller", "--help"]):
        assert shutil.which(argv[0]) == f"/usr/local/bin/{argv[0]}"
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")
        assert done.returncode in (0, 1), f"{argv}: {done.stderr}"
