"""The lessons as a student follows them: every command of lessons 1 to 5 and 9 (their English text;
the Korean one has the same commands, tests/unit/test_lessons.py), in order, each must succeed,
and every check passes with the lesson's own answers; typical wrong answers fail with the
lesson's words. Lessons 6 to 8 grade the student's runs: tests/lab/test_three_tier.py and
tests/lab/test_compare.py check them on the runs of `halab run three-tier` and `halab compare --quick`
those tests make anyway."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest
import tomli_w

from harness.lessons import model, variant
from harness.report import master_down
from tests.lab.helpers import wait_until
from tests.lab.test_up import HALAB, REPO, Terminal, nothing_left
from tests.unit.test_lessons import student_lines

pytestmark = [pytest.mark.mininet, pytest.mark.slow]


class Student:
    """Types what the lesson says, in a directory of their own, with their own progress file."""

    def __init__(self, home, student: str = "") -> None:
        self.home = home
        self.env = {**os.environ, "HALAB_LESSON_PROGRESS": str(home / "progress.json"), "PYTHONPATH": str(REPO),
                    "LANG": "C.UTF-8", "HALAB_STUDENT": student}

    def halab(self, *args: str, rc: int | None = 0) -> str:
        done = subprocess.run([*HALAB, *args], capture_output=True, text=True, timeout=180, cwd=self.home,
                              env=self.env)
        out = done.stdout + done.stderr
        assert rc is None or done.returncode == rc, f"`halab {' '.join(args)}` -> {done.returncode}:\n{out}"
        return out

    def type(self, line: str) -> str:
        argv = shlex.split(line)
        assert argv[:2] == ["sudo", "halab"], line
        return self.halab(*argv[2:])



class TerminalStudent(Student):
    """The same student at a real terminal (tmux, bash): types the lesson's lines as they are,
    reads the screen. `sudo` is a no-op (the suite runs as root) and `halab` this checkout's."""

    def __init__(self, home, student: str = "") -> None:
        super().__init__(home, student)
        rc = home / "bashrc"
        rc.write_text(f"PS1='[$?]$ '\nsudo() {{ \"$@\"; }}\nhalab() {{ {sys.executable} -m harness.entry \"$@\"; }}\n"
                      f"export PYTHONPATH={REPO} HALAB_LESSON_PROGRESS={home / 'progress.json'} LANG=C.UTF-8 "
                      f"HALAB_STUDENT={student}\ncd {home}\n")
        self.term = Terminal(["bash", "--noprofile", "--rcfile", str(rc), "-i"])
        self.term.wait_for("[0]$", timeout=10)

    def type(self, line: str) -> str:
        """Type the line; wait for the next prompt; what the command printed (its exit code must be 0)."""
        start = len(self.term.screen())
        self.term.type(line)
        found = {}

        def prompt_back() -> bool:
            shown = self.term.screen()[start:]
            match = re.search(r"\n\[(\d+)\]\$$", shown)
            found.update(shown=shown, rc=match and int(match.group(1)))
            return match is not None

        assert wait_until(prompt_back, 180, 0.2), f"`{line}` did not finish:\n{found.get('shown')}"
        assert found["rc"] == 0, f"`{line}` -> {found['rc']}:\n{found['shown']}"
        return found["shown"]

    def close(self) -> None:
        self.term.close()


def claims_are_holders(student: Student) -> list[str]:
    """Who holds the VIP as the live view shows it (the agents' own word, cheap) is who has it on
    its interface (`vip` asks every host): the holders."""
    claimed = json.loads(student.halab("status", "--json"))["vip"]["claimed_by"]
    assert claimed == json.loads(student.halab("vip", "--json"))["holders"]
    return claimed


def follow(lesson: model.Lesson, student: Student, aside, at_end: bool = False) -> list[str]:
    """Every command line of the lesson in order, its answers filled in; `aside` (wrong answers, a
    fault left standing) once its lab is up or, `at_end`, once every line has run: then a fault
    it leaves needs no mending, nor the lab time to recover from it, before the next check."""
    said = []
    try:
        for i, line in enumerate(student_lines(lesson)):
            said.append(student.type(line))
            if i == 0 and not at_end:
                aside()
        if at_end:
            aside()
    finally:
        student.halab("down", rc=None)
    return said


def test_lesson_1_the_single_point_of_failure(tmp_path):
    student = Student(tmp_path)
    lesson = model.find(1)

    def wrong_answers() -> None:
        out = student.halab("lesson", "check", "downtime", "--value", "6", rc=1)
        assert "Work it out again: 4 failures a year" in out and "your answer: 6 h" in out

    said = follow(lesson, student, wrong_answers)
    checks = [s for s in said if "✓" in s]
    assert len(checks) == 3 and "that is a single point of failure" in checks[0]
    assert "outages: never (watched 3 s)" in checks[0]
    assert "You passed every stage of this lesson." in checks[-1]
    assert nothing_left() == []


def test_lesson_2_vrrp_from_start_to_the_last_check_typed_at_a_terminal(tmp_path):
    """The student kim, whose teacher gave each student a lab of their own (HALAB_STUDENT): the
    VRID and priorities are kim's, and so is the window a prediction is graded against."""
    student = TerminalStudent(tmp_path, student="kim")
    lesson = model.find(2)
    mine = {a["hosts"][0]: a["config"]["vrrp_instance"][0] for a in tomllib.loads(
        variant.make(lesson.lab, "kim", 2))["agent"] if a["program"] == "halab-vrrp"}
    down = master_down(1.0, mine["server2"]["priority"])

    def wrong_answers() -> None:
        out = student.halab("lesson", "check", "predict", "--quick", rc=1)
        assert "Record your prediction first" in out
        assert student.halab("diagnose").strip() == "Nothing wrong found: server1 MASTER, server2 BACKUP."
        # (a prediction outside the window, graded and worded, is tests/unit/test_lessons.py's: it costs a measurement)

    try:
        said = follow(lesson, student, wrong_answers)
    finally:
        student.close()
    checks = [s for s in said if "✓" in s]
    assert len(checks) == 4, said
    assert f"you predicted 3.2 s; the protocol says {down - 1:.2f} to {down:.2f} s; measured" in checks[1]
    row = next(line for s in said for line in s.splitlines() if "server2-eth0" in line)  # halab-vrrp status
    assert f" {mine['server2']['virtual_router_id']} " in row and f" {mine['server2']['priority']} " in row, row
    assert "server2 took over within 4 s" in checks[2] and "a goodbye is faster than silence" in checks[3]
    assert "outage" in said[-1]  # the keepalived exercise ran and reported
    assert nothing_left() == []


def test_lesson_3_heartbeat_fencing_and_quorum(tmp_path):
    student = Student(tmp_path)

    def healthy_then_a_fault_left_standing() -> None:
        healthy = "Nothing wrong found: node1 ACTIVE, node2 STANDBY."  # once node2 hears node1 again
        assert wait_until(lambda: student.halab("diagnose").strip() == healthy, timeout=10)
        assert claims_are_holders(student) == ["node1"]
        student.halab("fault", "link-cut", "node1", "s1")  # node1 cannot serve its VIP: node2 takes over
        assert wait_until(lambda: "node2" in student.halab("vip"), timeout=10)
        out = student.halab("lesson", "check", "active", rc=1)
        assert "node1 does not hold the VIP. Is a fault still standing?" in out
        assert "halab diagnose:" in out and "node1 is in FAULT: a VIP's interface is down" in out

    said = follow(model.find(3), student, healthy_then_a_fault_left_standing, at_end=True)
    checks = [s for s in said if "✓" in s]
    assert len(checks) == 5 and "✗" not in "".join(said), said
    assert "one cut link is a degraded link, not a failover" in checks[1]
    assert "node2 fenced node1 and took over within 1.5 s" in checks[2]
    assert "answered by one node at a time, never by both in turn" in checks[3]
    assert "node2 had no quorum and did not take over" in checks[4]
    assert "You passed every stage of this lesson." in checks[-1]
    assert nothing_left() == []


def test_lesson_4_load_balancing_spread_link_cut_and_health_checks(tmp_path):
    student = Student(tmp_path)

    def wrong_answers() -> None:
        out = student.halab("lesson", "check", "share", "--value", "33", rc=1)
        assert "Think again: how many backends are left" in out and "your answer: 33 %" in out
        student.halab("fault", "kill", "backend1", "responder")
        assert wait_until(lambda: "backend1 (probe) is out of the balancer's pool: its health check fails"
                          in student.halab("diagnose"), timeout=10)

    said = follow(model.find(4), student, wrong_answers, at_end=True)
    checks = [s for s in said if "✓" in s]
    assert len(checks) == 4, said
    assert "All three backends answered" in checks[0] and re.search(r"backend3 \d+ % of \d+ answers, 0 lost", checks[0])
    assert "The switch took backend1 out at once" in checks[1] and "last failure after the fault" in checks[1]
    assert "The health checks took backend1 out within 1 s" in checks[2]
    assert "You passed every stage of this lesson." in checks[-1]
    assert nothing_left() == []


def test_lesson_5_haproxy_and_keepalived_each_tier_and_each_fault(tmp_path):
    student = Student(tmp_path)

    def a_web_server_left_cut() -> None:
        assert claims_are_holders(student) == ["lb1"]
        student.halab("fault", "link-cut", "web1", "s2")
        assert wait_until(lambda: "web1 (HAProxy on lb1) is out of the balancer's pool: its link is down"
                          in student.halab("diagnose"), timeout=10)  # HAProxy's own checks, read from it
        assert "probe: 1/2 in pool (out: web1)" in student.halab("status")
        said = {}  # the check reads the last seconds of answers: once they all come after the cut, it fails

        def check_fails() -> bool:
            said["out"] = student.halab("lesson", "check", "tiers", rc=None)
            return "✗" in said["out"]

        assert wait_until(check_fails, timeout=15, interval=0.5), said
        assert "The two web servers did not share the answers." in said["out"] and "web2 100 %" in said["out"]

    said = follow(model.find(5), student, a_web_server_left_cut, at_end=True)
    checks = [s for s in said if "✓" in s]
    assert len(checks) == 4 and "✗" not in "".join(said), said
    assert "web1 and web2 both answered" in checks[0]
    assert "HAProxy took web1 out within 1 s, and the VIP did not move" in checks[1]
    assert "lb2 took the VIP over" in checks[2] and "The track script saw HAProxy die" in checks[3]
    assert "You passed every stage of this lesson." in checks[-1]
    assert nothing_left() == []


def test_lesson_9_a_mistake_of_the_students_own_found_fixed_in_the_lab_file_and_proved(tmp_path):
    """The student lee's lab (tests/unit/test_lessons.py: each student draws one of the mistakes)
    has a track script on server2 that cannot succeed: server2 sits in FAULT and would never take
    over. lee reads it off `diagnose`, deletes it from the lab file, and the checks pass only once
    the lab runs the fixed file."""
    student = Student(tmp_path, student="lee")
    lines = student_lines(model.find(9))
    reset = lines.index("sudo halab lesson reset")
    said = []
    try:
        for line in lines[:reset]:
            said.append(student.type(line))
        lab_file = tmp_path / "labs" / "lesson-9-lee.toml"
        assert f"Your lab file: {lab_file}" in said[0] and "one mistake to find" in lab_file.read_text()
        assert "server2's check ping -c 1 -W 1 10.0.0.254 fails" in said[-1]  # diagnose
        out = student.halab("lesson", "check", "healthy", rc=1)
        assert "✗ server2 is not backup" in out and "server2/halab-vrrp: VI_1 FAULT" in out, out
        assert "✓ Both servers send and hear adverts the same way (multicast)." in out

        raw = tomllib.loads(lab_file.read_text())  # the fix, as the stage's answer says: delete the check
        backup = next(a for a in raw["agent"] if a.get("hosts") == ["server2"] and a["program"] == "halab-vrrp")
        del backup["config"]["vrrp_instance"][0]["track_script"]
        lab_file.write_text(tomli_w.dumps(raw))
        out = student.halab("lesson", "check", "healthy", rc=1)  # fixed, but not what runs yet
        assert f"Your lab file ({lab_file}) changed after the lab came up: what runs is the old one" in out, out

        said += [student.type(line) for line in lines[reset:]]
    finally:
        student.halab("down", rc=None)
    checks = [s for s in said if "✓" in s]
    assert len(checks) == 2 and "✗" not in "".join(said), said
    assert "server2 is backup, listening to server1's adverts" in checks[0]
    assert "server2 took over within 4 s: with your fix, the pair fails over" in checks[1]
    assert "You passed every stage of this lesson." in checks[-1]
    assert nothing_left() == []
