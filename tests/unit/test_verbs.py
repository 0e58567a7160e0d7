"""The verb grammar shared by the prompt and `halab fault|vip|status|probe|capture`: what parses,
what is refused (exit 2 with the usage), and that `--for` mends a fault (on a fake lab)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ha import eventlog
from ha.eventlog import EventLog
from harness import verbgrammar, verbs


@pytest.mark.parametrize("argv", [
    ["fault", "link-cut", "server1"], ["fault", "link-cut", "node1", "s2", "--for", "5"],
    ["fault", "partition", "node1", "node2,gateway"], ["fault", "kill", "server1", "halab-vrrp"],
    ["fault", "loss", "server1", "20%"], ["fault", "loss", "server1", "0"],
    ["fault", "flap", "server1", "--period", "0.5", "--count", "10"], ["fault", "restore"], ["fault", "heal"],
    ["vip", "--json"], ["status"], ["probe", "start"], ["capture", "server1"], ["capture", "stop"],
])
def test_the_verbs_of_the_issue_parse(argv):
    verbgrammar.parser().parse_args(argv)


@pytest.mark.parametrize("argv, says", [
    (["fault"], "required"),
    (["fault", "melt", "server1"], "invalid choice: 'melt'"),
    (["fault", "loss", "server1", "101%"], "choose 0 to 100"),
    (["fault", "link-cut", "server1", "--for", "0"], "more than 0"),
    (["fault", "kill", "server1"], "required: program"),
    (["probe", "go"], "invalid choice: 'go'"),
    (["dance"], "invalid choice: 'dance'"),
])
def test_bad_verbs_are_refused_with_the_usage(argv, says):
    with pytest.raises(verbgrammar.VerbError) as caught:
        verbgrammar.parser().parse_args(argv)
    assert says in str(caught.value) and "usage:" in str(caught.value)


class FakeLive:
    """Records what the verbs ask of the lab."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.calls: list[tuple] = []
        self.lock = threading.RLock()
        self.actions = EventLog(run_dir / "lab-events.jsonl" if run_dir else None, "halab")

    def cut(self, host, switch):
        self.calls.append(("cut", host, switch))
        return f"cut {host}"

    def restore_link(self, host, switch):
        self.calls.append(("restore", host, switch))
        return f"restored {host}"

    def later(self, seconds, undo):
        self.calls.append(("later", seconds))
        undo()


def test_a_fault_for_some_seconds_is_mended_by_its_own_undo(tmp_path):
    live = FakeLive(tmp_path)
    rc, text = verbs.execute(live, ["fault", "link-cut", "server1", "--for", "2.5"])
    assert rc == 0 and text == "cut server1; mended in 2.5 s"
    assert live.calls == [("cut", "server1", None), ("later", 2.5), ("restore", "server1", None)]
    # the live view's event feed hears of it, whoever sent it
    [action] = eventlog.read(tmp_path / "lab-events.jsonl")
    assert (action["source"], action["subject"], action["to"], action["reason"]) == (
        "halab", "lab", "fault link-cut server1 --for 2.5", "cut server1; mended in 2.5 s")


def test_help_is_an_answer_not_an_error():
    rc, text = verbs.execute(FakeLive(), ["fault", "--help"])
    assert rc == 0 and "link-cut" in text


def test_a_bug_in_a_verb_keeps_the_lab_and_says_where_the_traceback_is(tmp_path):
    live = FakeLive()
    live.run_dir = tmp_path

    def broken(host, switch):
        raise RuntimeError("boom")

    live.cut = broken
    rc, text = verbs.execute(live, ["fault", "link-cut", "server1"])
    assert rc == 1 and "the lab is still up" in text
    assert "RuntimeError: boom" in (tmp_path / "halab-errors.log").read_text()


def test_a_verb_from_a_shell_imports_neither_the_lab_nor_mininet():
    """`halab status` and friends go through harness.entry to harness.verbclient, which must stay
    light: a teacher's status and every wait of the lab tests pay for what it imports."""
    probe = ("import sys, harness.entry, harness.verbclient; "
             "print(' '.join(m for m in ('mininet', 'rich', 'harness.livelab', 'harness.lab', 'harness.cli') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == ""
