"""The lessons: their files (both languages, the same stages and commands), the grading arithmetic,
a student's progress, and bad lesson files. tests/lab/test_lessons.py runs them on a lab."""

import csv
import json
import os
import re
import shlex
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import labfile, verbgrammar
from harness.about import SCHEMA_VERSION
from harness.errors import HalabError
from harness.lessons import checks, model, progress, runs
from harness.lessons.model import Check, Words
from harness.livemeasure import LiveOutcome
from harness.probe import Request
from topologies import TOPOLOGIES

LESSONS = model.all_lessons()


def command_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def stage_markers(text: str) -> list[str]:
    return re.findall(r"<!-- stage: (\w+) -->", text)


#: Where a lesson's command asks for the student's own answer.
PLACEHOLDERS = ("SECONDS", "HOURS", "PERCENT", "COUNT")


def student_lines(lesson: model.Lesson) -> list[str]:
    """Every command line of the lesson's English text, in order, each placeholder filled with the
    answer its stage gives (`halab lesson answer`), as a student who worked it out would type it."""
    lines, stage = [], None
    for part in re.split(r"(<!-- stage: \w+ -->)", lesson.text("en").read_text()):
        marker = re.fullmatch(r"<!-- stage: (\w+) -->", part)
        if marker:
            stage = lesson.stage(marker.group(1))
            continue
        for line in filter(str.strip, "".join(command_blocks(part)).splitlines()):
            if any(word in line for word in PLACEHOLDERS):
                assert stage is not None, line
                value = re.search(r"(?:predict|--value) ([\d.]+)", stage.answer("en")).group(1)
                line = re.sub("|".join(PLACEHOLDERS), value, line)
            lines.append(line)
    return lines


def lesson_line(number: int, command: str) -> list[str]:
    """The argv of a command lesson `number` tells its students to type (from `halab` on), which
    must be one of its lines: a test that runs it runs the lesson's own command, adding only where
    the output goes and how long to watch."""
    assert f"sudo halab {command}" in student_lines(model.find(number)), command
    return shlex.split(command)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_run_and_compare_a_lesson_has_its_students_type_is_one_halab_takes(lesson):
    """Lessons 6 to 8's runs take minutes and run in tests/lab with output and timing flags added;
    here each line as typed is parsed, and a scenario's options checked, as `halab` would."""
    from harness import cli
    from harness.scenarios import SCENARIOS
    from harness.scenarios.common import options_from

    for line in student_lines(lesson):
        argv = cli.expand(shlex.split(line)[2:])
        if argv[0] in ("run", "compare"):
            args = cli._parser().parse_args(argv)
            if argv[0] == "run":
                options_from(args, SCENARIOS[args.scenario].options)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_both_languages_have_the_same_stages_and_the_same_commands(lesson):
    ko, en = (lesson.text(lang).read_text() for lang in ("ko", "en"))
    assert stage_markers(ko) == stage_markers(en) == [s.name for s in lesson.stages]
    assert command_blocks(ko) == command_blocks(en) and command_blocks(en)
    assert ko.startswith(f"# {lesson.number}강") and en.startswith(f"# Lesson {lesson.number}")


def test_the_numbers_worked_out_apart_pass_and_the_answers_say_them():
    """Lesson 1's arithmetic, done here on its own: 4 failures x 2 h; (8760 - 8) / 8760."""
    lesson = model.find(1)
    downtime, availability = (lesson.stage(n).checks[0] for n in ("downtime", "availability"))
    assert checks.numeric(downtime.params, 4 * 2)[0] and not checks.numeric(downtime.params, 4 * 2 + 0.1)[0]
    exact = (8760 - 8) / 8760 * 100
    assert checks.numeric(availability.params, round(exact, 3))[0]
    assert not checks.numeric(availability.params, round(exact, 2))[0]  # 99.91: not to three decimals
    assert "--value 8`" in lesson.stage("downtime").answer("en")
    assert f"--value {exact:.3f}`" in lesson.stage("availability").answer("en")


def test_the_predicted_window_of_lesson_2_follows_its_lab_and_takes_the_lessons_rounding():
    """Master_Down_Interval from labs/active-standby.toml's own numbers, worked out here."""
    lab = tomllib.loads(model.find(2).lab.read_text())
    backup = min((a["config"]["vrrp_instance"][0] for a in lab["agent"] if a["program"] == "halab-vrrp"),
                 key=lambda i: i["priority"])
    adv = backup["advert_int"]
    down = 3 * adv + (256 - backup["priority"]) / 256 * adv
    assert (down - adv, down) == pytest.approx((2.609375, 3.609375))
    predict = model.find(2).stage("predict").checks[0]
    slack = predict.params["slack_s"]
    for said, ok in ((2.61, True), (3.61, True), (3.2, True), (2.5, False), (3.7, False)):
        assert checks.predicted(said, (down - adv, down), [3.4], slack)[0] is ok, said
    assert "predict 3.2`" in model.find(2).stage("predict").answer("en")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_placeholder_of_a_lesson_is_answered_by_its_stage(lesson):
    lines = student_lines(lesson)
    assert lines and all(line.startswith("sudo halab ") for line in lines)
    assert not any(word in line for line in lines for word in PLACEHOLDERS)


def test_state_checks_read_the_vip_the_agents_state_and_whether_it_runs():
    status = {"vip": {"address": "10.0.0.100", "claimed_by": ["server1"]},
              "agents": [{"host": "server2", "program": "halab-vrrp", "running": True, "state": "VI_1 BACKUP"},
                         {"host": "server1", "program": "responder", "running": False}]}
    assert checks.state({"vip_holder": "server1"}, status) == (True, "VIP 10.0.0.100 held by server1")
    assert checks.state({"vip_holder": "server2"}, status)[0] is False
    split = {**status, "vip": {"address": "10.0.0.100", "claimed_by": ["server1", "server2"]}}
    assert checks.state({"vip_holder": "server1"}, split) == (False, "VIP 10.0.0.100 held by server1, server2")
    assert checks.state({"agent": "server2/halab-vrrp", "state": "BACKUP"}, status) == (
        True, "server2/halab-vrrp: VI_1 BACKUP")
    assert checks.state({"agent": "server2/halab-vrrp", "state": "MASTER"}, status)[0] is False
    assert checks.state({"agent": "server2/halab-vrrp", "state": "BACK"}, status)[0] is False  # a word, not a part
    assert checks.state({"agent": "server1/responder", "running": False}, status) == (
        True, "server1/responder does not run")
    assert checks.state({"agent": "server1/halab-vrrp", "running": True}, status) == (
        False, "server1 runs no halab-vrrp")


@pytest.mark.parametrize(("params", "outages", "passed", "detail"), [
    ({"budget_s": 4.0}, [3.5, 3.9, 4.5], True, "outage: median 3.90 s of 3.50 s, 3.90 s, 4.50 s; budget 4 s"),
    ({"budget_s": 3.8}, [3.5, 3.9, 4.5], False, "outage: median 3.90 s of 3.50 s, 3.90 s, 4.50 s; budget 3.8 s"),
    ({"budget_s": 4.0, "statistic": "max"}, [3.5, 3.9, 4.5], False, "outage: max 4.50 s"),
    ({"budget_s": 4.5, "statistic": "max"}, [3.5, 3.9, 4.5], True, "outage: max 4.50 s"),
    ({"budget_s": 4.0, "statistic": "p95"}, [1.0, 2.0, 4.5], False, "outage: p95 4.50 s"),
    ({"budget_s": 4.0}, [3.0, None], False, "outages: 3.00 s, never; the service did not come back"),
    ({"recovers": False, "watch_s": 5.0}, [None, None], True, "outages: never, never (watched 5 s)"),
    ({"recovers": False}, [None, 2.0], False, "outages: never, 2.00 s (watched 8 s)"),
])
def test_measure_checks_hold_a_statistic_to_the_budget_or_want_no_recovery(params, outages, passed, detail):
    ok, said = checks.measure(params, [run_of(o) for o in outages])
    assert ok is passed and said.startswith(detail)


def run_of(outage, after="server2", last_failure=None, **more):
    return LiveOutcome(fault_at=0.0, outage=outage, first_good_after=None, lost=0, lost_after_fault=0, requests=0,
                       server_before="server1", server_after=after if outage is not None else None, outage_start=None,
                       outage_end=None, last_failure_after=last_failure, **more)


def test_a_spread_service_is_held_to_when_its_last_request_failed_not_to_its_silence():
    """Active-Active: a dead backend costs its share, so the client's longest silence stays short
    even when the balancer never takes it out; what counts is when the failures stopped."""
    p = {"budget_s": 0.5, "figure": "last_failure", "fault": "kill backend1 responder"}
    served = ("backend1", "backend2")
    ok, said = checks.measure(p, [run_of(0.1, last_failure=0.32, answered_before=served),
                                  run_of(0.1, last_failure=None, answered_before=served)])
    assert ok and said == "last failure after the fault: median 0.16 s of 0.32 s, 0.00 s; budget 0.5 s"
    assert not checks.measure(p, [run_of(0.1, last_failure=3.9, answered_before=served)])[0]
    assert checks.measure({"budget_s": 0.5}, [run_of(0.1, last_failure=3.9)])[0]  # the silence alone: short
    # backend1 was out already (drained, a fault left standing): killing it changed nothing, whatever the figure
    assert checks.measure(p, [run_of(0.1, last_failure=None, answered_before=("backend2",))]) == (
        False, "the fault changed nothing: backend1 was not answering before it")
    assert checks.fault_host("link-cut backend1 s1") == "backend1" and checks.fault_host("partition a b") is None


def test_a_check_can_want_an_agents_reason_after_the_fault():
    p = {"budget_s": 2.0, "moves_to": "node2", "reason": "node1 fenced"}
    fenced = run_of(0.5, after="node2", reasons=("node2 node2: ACTIVE (node1 fenced: ports [1])",))
    assert checks.measure(p, [fenced])[0] is True
    unfenced = run_of(0.5, after="node2", reasons=("node2 node2: ACTIVE (node1 is in FAULT)",))
    assert checks.measure(p, [fenced, unfenced]) == (
        False, 'outages: 0.50 s, 0.50 s; no agent said "node1 fenced" after the fault')


def test_a_fault_that_moved_nothing_passes_no_check_that_wants_a_move():
    p = {"budget_s": 4.0, "moves_to": "server2"}
    assert checks.measure(p, [run_of(3.4), run_of(3.5)])[0] is True
    ok, said = checks.measure(p, [run_of(3.4), run_of(0.05, after="server1")])
    assert not ok and said == "outages: 3.40 s, 0.05 s; answered after the fault by server2, server1"


def test_a_takeover_without_a_gap_moves_the_service_to_who_answers_at_the_end():
    """The client's longest silence may end with the old server's answer when the new one takes
    over seamlessly (fenced first, then the VIP): what counts is who answers at the end."""
    p = {"budget_s": 1.5, "moves_to": "node2"}
    seamless = run_of(0.05, after="node1", answered_after=("node1", "node2"))
    assert checks.measure(p, [seamless])[0] is True
    stayed = run_of(0.05, after="node1", answered_after=("node1",))
    assert checks.measure(p, [stayed]) == (False, "outages: 0.05 s; answered after the fault by node1")


def test_two_servers_answering_in_turn_after_the_fault_is_a_split_brain_not_a_failover():
    p = {"budget_s": 4.0, "moves_to": "server2"}
    failover = run_of(3.4, answered_after=("server1", "server2"))
    assert checks.measure(p, [failover])[0] is True
    both = run_of(0.3, answered_after=("server1", "server2", "server1", "server2"))
    assert checks.measure(p, [failover, both]) == (
        False, "outages: 3.40 s, 0.30 s; after the fault server1, server2, server1, server2 answered in turn: "
               "two servers at once")
    assert checks.measure({"budget_s": 4.0}, [both])[0] is True  # a spread service answers from several


def test_numeric_answers_are_within_the_tolerance_or_not_and_one_is_needed():
    p = {"expect": 8.0, "tolerance": 0.01, "unit": "h"}
    assert checks.numeric(p, 8.01) == (True, "your answer: 8.01 h")
    assert checks.numeric(p, 8.02)[0] is False and checks.numeric(p, 7.99)[0] is True
    assert checks.numeric(p, None) == (False, "no value given: `halab lesson check --value NUMBER`")


@pytest.mark.parametrize(("prediction", "slack", "passed"), [(3.2, 0, True), (2.61, 0, True), (3.61, 0, True),
                                                            (2.5, 0, False), (3.7, 0, False), (3.7, 0.1, True),
                                                            (1.0, 0.5, False)])
def test_a_prediction_is_graded_against_the_protocol_not_against_one_measurement(prediction, slack, passed):
    ok, said = checks.predicted(prediction, (2.61, 3.61), [3.4, None], slack)
    assert ok is passed
    if passed:
        assert said == (f"you predicted {prediction:g} s; the protocol says 2.61 to 3.61 s; measured 3.40 s, never "
                        "(1 of 2 within it)")
    else:  # the window is not given away: the next prediction would be a copy of it
        assert said == f"you predicted {prediction:g} s; measured 3.40 s, never"


class FakeLab:
    def __init__(self, outages=(3.3,)):
        self.outages = list(outages)
        self.faults = []

    def status(self):
        return {"vip": {"address": "10.0.0.100", "claimed_by": ["server2"]}, "agents": []}

    def measure(self, fault, watch_s, whole=False, expect=None):
        self.faults.append((fault, watch_s))
        outage = self.outages.pop(0)
        return run_of(outage, diagnosis="- two masters" if outage is None else "")

    def vrrp_window(self):
        return 2.61, 3.61

    def save_timeline(self, outcome, fault):
        self.drawn = (outcome.outage, fault)
        return "/runs/x/check.svg"

    def diagnose(self):
        return self.findings

    findings = ""


WORDS = Words("통과", "passed"), Words("실패", "failed")


def test_a_check_speaks_the_students_language_and_runs_as_often_as_asked():
    measure = Check("measure", *WORDS, {"fault": "link-cut server1", "runs": 3, "quick_runs": 1, "budget_s": 4.0})
    lab = FakeLab([3.3, 3.5, 3.4])
    verdict = checks.run(measure, lab, "ko", checks.Answers())
    assert verdict == checks.Verdict(True, "통과", "outage: median 3.40 s of 3.30 s, 3.50 s, 3.40 s; budget 4 s")
    assert lab.faults == [("link-cut server1", 8.0)] * 3
    lab = FakeLab([5.0])
    failed = checks.run(measure, lab, "en", checks.Answers(), quick=True)
    assert failed.message == "failed" and len(lab.faults) == 1
    assert failed.detail.endswith("\n    timeline of the worst run: /runs/x/check.svg") and lab.drawn == (
        5.0, "link-cut server1")
    lab = FakeLab([3.0, None, 3.5])  # the worst run is drawn, and what diagnose saw while it stood is told
    failed = checks.run(measure, lab, "en", checks.Answers())
    assert lab.drawn == (None, "link-cut server1")
    assert failed.detail.endswith(
        "timeline of the worst run: /runs/x/check.svg\n    halab diagnose:\n      - two masters")
    lab = FakeLab([5.0])
    lab.save_timeline = lambda *_: (_ for _ in ()).throw(OSError("disk full"))  # a help, not the verdict
    assert checks.run(measure, lab, "en", checks.Answers(), quick=True).detail == (
        "outage: median 5.00 s of 5.00 s; budget 4 s")
    state = Check("state", *WORDS, {"vip_holder": "server1"})
    assert checks.run(state, FakeLab(), "en", checks.Answers()) == checks.Verdict(
        False, "failed", "VIP 10.0.0.100 held by server2")
    lab = FakeLab()
    lab.findings = "- server1's halab-vrrp does not run.\n  `fault restore` starts it again."
    assert checks.run(state, lab, "en", checks.Answers()).detail == (
        "VIP 10.0.0.100 held by server2\n    halab diagnose:\n      - server1's halab-vrrp does not run.\n"
        "        `fault restore` starts it again.")


def test_a_predict_check_wants_the_prediction_first():
    predict = Check("predict", *WORDS, {"fault": "link-cut server1", "runs": 1})
    lab = FakeLab()
    verdict = checks.run(predict, lab, "en", checks.Answers())
    assert verdict.passed is False and "halab lesson predict" in verdict.message and lab.faults == []
    assert checks.run(predict, lab, "en", checks.Answers(prediction=3.0)).passed is True


def test_progress_is_kept_and_a_broken_file_is_a_fresh_start(tmp_path, monkeypatch):
    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "p" / "lessons.json"))
    assert progress.load() == progress.Progress()
    mine = progress.Progress(lesson=2, predictions={"2/predict": 3.2})
    mine.mark("2/master")
    mine.mark("2/master")
    mine.save()
    assert progress.load() == progress.Progress(2, ["2/master"], {"2/predict": 3.2})
    (tmp_path / "p" / "lessons.json").write_text("{not json")
    assert progress.load() == progress.Progress()


def lesson_dir(tmp_path, toml: str, texts=("ko", "en")):
    folder = tmp_path / "07-x"
    folder.mkdir()
    (folder / "lesson.toml").write_text(toml)
    for lang in texts:
        (folder / f"{lang}.md").write_text("# x\n")
    return folder


GOOD = '''number = 7
title = { ko = "가", en = "a" }
lab = "active-standby"
[[stage]]
name = "one"
title = { ko = "가", en = "a" }
hint = { ko = "가", en = "a" }
answer = { ko = "가", en = "a" }
[[stage.check]]
kind = "numeric"
expect = 1.0
tolerance = 0.1
pass = { ko = "가", en = "a" }
fail = { ko = "가", en = "a" }
'''




@pytest.mark.parametrize(("change", "said"), [
    (("kind = \"numeric\"", "kind = \"guess\""), "kind = 'guess' is not allowed; expected state | spread | measure"),
    (("expect = 1.0", "expect = \"one\""), "expect = 'one' is not allowed; expected a number"),
    (("number = 7", "number = 100"), "number = 100 is not allowed; expected a number from 1 to 99"),
    (("lab = \"active-standby\"", "lab = \"nowhere.toml\""), "lab = 'nowhere.toml' is not allowed"),
    (("title = { ko = \"가\", en = \"a\" }\nlab", "title = { ko = \"가\" }\nlab"), "missing key 'en'"),
    (("tolerance = 0.1", "tolerance = 0.1\nbudget_s = 3"), "unknown key 'budget_s'"),
    (("name = \"one\"", "name = \"two words\""), "name = 'two words' is not allowed"),
])
def test_a_bad_lesson_file_is_one_error_naming_the_file_and_the_key(tmp_path, change, said):
    folder = lesson_dir(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(HalabError) as caught:
        model.load(folder)
    assert said in caught.value.problem and str(folder / "lesson.toml") in caught.value.problem


def test_a_good_lesson_loads_and_one_without_its_korean_text_does_not(tmp_path):
    assert model.load(lesson_dir(tmp_path, GOOD)).stage("one").checks[0].params == {"expect": 1.0, "tolerance": 0.1}
    (tmp_path / "b").mkdir()
    with pytest.raises(HalabError) as caught:
        model.load(lesson_dir(tmp_path / "b", GOOD, texts=("en",)))
    assert "ko.md is missing" in caught.value.problem


MEASURE = GOOD.replace('''kind = "numeric"
expect = 1.0
tolerance = 0.1''', '''kind = "measure"
fault = "link-cut server1"
budget_s = 4.0''')
PREDICT = GOOD.replace('''kind = "numeric"
expect = 1.0
tolerance = 0.1''', '''kind = "predict"
fault = "link-cut server1"''')
STATE = GOOD.replace('''kind = "numeric"
expect = 1.0
tolerance = 0.1''', '''kind = "state"
vip_holder = "server1"''')


@pytest.mark.parametrize(("base", "change", "said"), [
    (MEASURE, ('fault = "link-cut server1"', 'fault = " "'),
     "fault = ' ' is not allowed; expected a fault as typed at"),
    (MEASURE, ('fault = "link-cut server1"\n', ''), "missing key 'fault'"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nruns = 0"), "runs = 0 is not allowed; expected 1 to 20"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nruns = 21"), "runs = 21 is not allowed; expected 1 to 20"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nquick_runs = 0"), "quick_runs = 0 is not allowed"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nruns = true"), "runs = True is not allowed"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nstatistic = \"mean\""),
     "statistic = 'mean' is not allowed; expected median | p95 | max"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 0"), "budget_s = 0 is not allowed; expected seconds, more than 0"),
    (MEASURE, ("budget_s = 4.0\n", ""), "missing key 'budget_s' (seconds, more than 0)"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nwatch_s = 61"),
     "watch_s = 61 is not allowed; expected seconds, 0 to 60"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nwatch_s = 0"), "watch_s = 0 is not allowed"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nrecovers = \"no\""), "recovers = 'no' is not allowed"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nexpect = 3"), "unknown key 'expect'"),
    (PREDICT, ('fault = "link-cut server1"', 'fault = "link-cut server1"\nslack_s = -1'),
     "slack_s = -1 is not allowed; expected seconds, 0 or more"),
    (PREDICT, ('fault = "link-cut server1"', 'fault = "link-cut server1"\nbudget_s = 1'), "unknown key 'budget_s'"),
    (STATE, ('vip_holder = "server1"\n', ''), "missing key 'agent' (HOST/PROGRAM"),
    (STATE, ('vip_holder = "server1"', 'agent = "server2"'), "agent = 'server2' is not allowed; expected HOST/PROGRAM"),
    (STATE, ('vip_holder = "server1"', 'agent = "s/p"'), "an agent check needs one of state and running"),
    (STATE, ('vip_holder = "server1"', 'agent = "s/p"\nstate = "MASTER"\nrunning = true'),
     "an agent check needs one of state and running"),
    (STATE, ('vip_holder = "server1"', 'agent = "s/p"\nrunning = "yes"'), "running = 'yes' is not allowed"),
    (STATE, ('vip_holder = "server1"', 'vip_holder = 1'), "vip_holder = 1 is not allowed; expected a host"),
    (STATE, ('vip_holder = "server1"', 'vip_holder = "server1"\nagent = "s/p"'),
     "vip_holder is a check of its own; put agent in another [[stage.check]]"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nmoves_to = 2"), "moves_to = 2 is not allowed; expected a host"),
    (GOOD, ("tolerance = 0.1", "tolerance = -0.1"), "tolerance = -0.1 is not allowed; expected 0 or more"),
    (GOOD, ('[[stage.check]]\nkind = "numeric"', '[[stage.cheque]]\nkind = "numeric"'), "unknown key 'cheque'"),
    (GOOD, ('hint = { ko = "가", en = "a" }\n', ''), "stage 'one': missing key 'hint'"),
    (GOOD, ('answer = { ko = "가", en = "a" }', 'answer = { ko = "가", en = " " }'),
     "stage 'one' answer: en = ' ' is not allowed; expected a text"),
    (GOOD, ('answer = { ko = "가", en = "a" }', 'answer = { ko = "가", en = "a", ja = "あ" }'),
     "stage 'one' answer: unknown key 'ja'"),
    (GOOD, ('answer = { ko = "가", en = "a" }', 'answer = "a"'), "answer = 'a' is not allowed; expected a table"),
    (GOOD, ("number = 7\n", ""), "missing key 'number'"),
    (GOOD, ("number = 7", "number = 0"), "number = 0 is not allowed"),
    (GOOD, ("number = 7", "number = 7\nauthor = \"x\""), "unknown key 'author'"),
])
def test_each_key_of_a_check_and_a_stage_is_checked(tmp_path, base, change, said):
    assert change[0] in base
    folder = lesson_dir(tmp_path, base.replace(*change, 1))
    with pytest.raises(HalabError) as caught:
        model.load(folder)
    assert said in caught.value.problem and caught.value.fix == "Fix the lesson file; lessons/README.md describes it."


@pytest.mark.parametrize(("toml", "said"), [
    (GOOD.split("[[stage]]")[0], "needs at least one [[stage]] table"),
    (GOOD.split("[[stage.check]]")[0], "stage 'one': needs at least one [[stage.check]] table"),
    (GOOD + GOOD[GOOD.index("[[stage]]"):], "stage names must be unique, got ['one', 'one']"),
    (GOOD.split("[[stage]]")[0] + "stage = 1\n", "needs at least one [[stage]] table"),
])
def test_a_lesson_needs_stages_with_checks_and_distinct_names(tmp_path, toml, said):
    with pytest.raises(HalabError) as caught:
        model.load(lesson_dir(tmp_path, toml))
    assert said in caught.value.problem


def test_a_lesson_of_its_own_lab_and_finding_lessons_and_stages(tmp_path):
    folder = lesson_dir(tmp_path, GOOD.replace('lab = "active-standby"', 'lab = "lab.toml"'))
    (folder / "lab.toml").write_text('topology = "active-standby"\n')
    lesson = model.load(folder)
    assert lesson.lab == folder / "lab.toml" and lesson.slug == "07-x" and lesson.number == 7
    assert lesson.text("ko") == folder / "ko.md" and lesson.title("ko") == "가" and lesson.title("en") == "a"
    assert model.find(7, tmp_path) == lesson and [x.number for x in model.all_lessons(tmp_path)] == [7]
    with pytest.raises(HalabError) as caught:
        lesson.stage("two")
    assert caught.value.problem == "Lesson 7 has no stage 'two'." and caught.value.fix == "Its stages: one."
    with pytest.raises(HalabError) as caught:
        model.find(8, tmp_path)
    assert caught.value.problem == "There is no lesson 8."
    twin = tmp_path / "08-y"
    twin.mkdir()
    for name in ("lesson.toml", "ko.md", "en.md"):
        (twin / name).write_text((folder / name).read_text().replace('lab = "lab.toml"', 'lab = "active-standby"'))
    with pytest.raises(HalabError) as caught:
        model.all_lessons(tmp_path)
    assert "two lessons share a number ([7, 7])" in caught.value.problem
    (tmp_path / "notes").mkdir()  # a folder without lesson.toml is not a lesson
    (twin / "lesson.toml").unlink()
    assert len(model.all_lessons(tmp_path)) == 1


def test_the_command_says_what_to_do_for_bad_input(tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "progress.json"))
    assert cli.main(["lesson", "check"]) == 2
    assert capsys.readouterr().err == ("halab: No lesson is under way.\n"
                                       "Fix: `halab lesson list`, then `halab lesson start N`.\n")
    assert cli.main(["lesson", "start", "99"]) == 2
    assert "There is no lesson 99." in capsys.readouterr().err
    progress.Progress(lesson=1).save()
    assert cli.main(["lesson", "predict", "3"]) == 2
    assert "Lesson 1 asks for no prediction." in capsys.readouterr().err
    assert cli.main(["lesson", "hint", "nothing"]) == 2
    assert "Lesson 1 has no stage 'nothing'." in capsys.readouterr().err
    assert cli.main(["lesson", "hint", "--lang", "en"]) == 0  # the first stage not passed
    assert "The check kills server1's responder" in capsys.readouterr().out
    assert cli.main(["lesson", "answer", "downtime", "--lang", "ko"]) == 0
    assert "= 8 h: `halab lesson check downtime --value 8`" in capsys.readouterr().out


def test_a_prediction_goes_to_the_first_stage_that_wants_one(tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "progress.json"))
    progress.Progress(lesson=2, passed=["2/master"]).save()
    assert cli.main(["lesson", "predict", "3.2"]) == 0
    assert progress.load().predictions == {"2/predict": 3.2}
    assert cli.main(["lesson", "list", "--lang", "en"]) == 0
    listed = capsys.readouterr().out
    assert " 1  The single point of failure (SPOF)  (0/3)" in listed
    assert "* 2  Active-Standby with a VIP (VRRP)  (1/4)" in listed


def request(i, server):
    return Request(i, float(i), float(i) if server else None, server)


def test_a_spread_check_wants_every_server_answering_none_too_much_and_nothing_lost():
    p = {"servers": 3, "max_share": 0.6}
    even = [request(i, f"backend{i % 3 + 1}") for i in range(30)]
    assert checks.spread(p, even) == (True, "backend1 33 %, backend2 33 %, backend3 33 % of 30 answers, 0 lost")
    two = [request(i, f"backend{i % 2 + 1}") for i in range(30)]
    assert checks.spread(p, two) == (False, "backend1 50 %, backend2 50 % of 30 answers, 0 lost")
    assert checks.spread({"servers": 2}, two)[0] is True
    lopsided = [request(i, "backend1" if i % 4 else f"backend{i % 8 // 4 + 2}") for i in range(32)]
    assert checks.spread(p, lopsided) == (False, "backend1 75 %, backend2 12 %, backend3 12 % of 32 answers, 0 lost")
    assert checks.spread(p, [*even, request(30, None)]) == (
        False, "backend1 33 %, backend2 33 %, backend3 33 % of 30 answers, 1 lost")
    assert checks.spread(p, [request(0, None)]) == (False, "no answer in the last 3 s (1 lost)")


def write_run(runs, name, data, mtime):
    path = runs / name / ("compare.json" if name.endswith("-compare") else "result.json")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, **data}))
    os.utime(path, (mtime, mtime))
    return path


def sync_run(method, deletions, p50, period=1.0):
    return {"scenario": "sync", "options": {"method": method, "period": period},
            "sync": {"deletions": {"count": deletions, "of": 17}, "writes": {"p50": p50}}}


def test_the_newest_run_of_a_scenario_with_the_options_is_found(tmp_path):
    old = write_run(tmp_path, "1-sync", sync_run("tar", 0, 0.6), 1000)
    new = write_run(tmp_path, "2-sync", sync_run("lsyncd", 17, 0.15, 0.1), 2000)
    inside = write_run(tmp_path, "3-compare/sync-tar-1s", sync_run("tar", 0, 0.5), 3000)
    repeated = write_run(tmp_path, "4-sync/run-2", sync_run("rsync", 17, 0.4), 4000)
    (tmp_path / "5-sync").mkdir()
    (tmp_path / "5-sync" / "result.json").write_text("{cut sh")  # a run cut short is passed over
    write_run(tmp_path, "6-sync", {**sync_run("tar", 0, 0.6), "schema_version": SCHEMA_VERSION + 1}, 6000)
    assert runs.newest(tmp_path, "sync", {}).file == repeated
    assert runs.newest(tmp_path, "sync", {"method": "tar"}).file == inside
    assert runs.newest(tmp_path, "sync", {"method": "lsyncd", "period": 0.1}).file == new
    assert runs.newest(tmp_path, "sync", {"method": "lsyncd", "period": 1.0}) is None
    assert runs.newest(tmp_path / "nowhere", "sync", {}) is None
    compare = write_run(tmp_path, "7-compare", {"figures": {"active-standby": {"outage": {"crash": {"median": 3.49}}}},
                                                "plan": {"runs": 1}, "agent": "halab", "lb": "sdn"}, 7000)
    assert runs.newest(tmp_path, "compare", {"agent": "halab"}).file == compare
    assert runs.newest(tmp_path, "compare", {"agent": "keepalived"}) is None
    assert old.exists() and runs.field({"a": {"b": 2}}, "a.b") == 2 and runs.field({"a": 1}, "a.b") is None


def test_a_result_check_reads_the_students_run_within_bounds_or_against_their_answer(tmp_path):
    found = runs.Found(tmp_path / "r.json", sync_run("lsyncd", 17, 0.156))
    bounded = {"scenario": "sync", "options": {"method": "lsyncd"}, "field": "sync.writes.p50", "scale": 1000,
               "unit": "ms", "at_most": 500}
    assert checks.result(bounded, found, None, tmp_path) == (True, f"{tmp_path / 'r.json'}: sync.writes.p50 = 156 ms")
    assert checks.result({**bounded, "at_most": 100}, found, None, tmp_path)[0] is False
    assert checks.result({**bounded, "at_least": 200, "at_most": 900}, found, None, tmp_path)[0] is False
    assert checks.result(bounded, None, None, tmp_path) == (
        False, f"no run of `halab run sync --method lsyncd` in {tmp_path}")
    read = {"scenario": "sync", "field": "sync.deletions.count", "tolerance": 0}
    assert checks.result(read, found, 17, tmp_path)[0] is True
    wrong = checks.result(read, found, 16, tmp_path)
    assert wrong == (False, f"your answer: 16; it is not what {tmp_path / 'r.json'} says")  # the figure not given away
    assert checks.result(read, found, None, tmp_path) == (False, "no value given: `halab lesson check --value NUMBER`")
    assert checks.result({**read, "field": "sync.nothing"}, found, 17, tmp_path) == (
        False, f"{tmp_path / 'r.json'}: sync.nothing is None, not a number; run `halab run sync` again")
    assert checks.result({"scenario": "compare"}, None, None, tmp_path) == (
        False, f"no run of `halab compare` in {tmp_path}")
    assert checks.result({"scenario": "sync"}, found, None, tmp_path) == (True, str(tmp_path / "r.json"))
    lost = runs.Found(tmp_path / "r.json", {"database": {"verdict": {"acknowledged_lost": [3, 4, 9]}}})
    count = {"scenario": "three-tier", "field": "database.verdict.acknowledged_lost", "tolerance": 0}
    assert checks.result(count, lost, 3, tmp_path)[0] and not checks.result(count, lost, 0, tmp_path)[0]
    assert checks.result({**count, "at_most": 0}, lost, 3, tmp_path)[0] is False  # a list counts its items


def test_a_result_check_reads_the_runs_directory_the_student_names(tmp_path):
    write_run(tmp_path, "1-sync", sync_run("tar", 0, 0.6), 1000)
    check = model.find(7).stage("tar").checks[0]
    assert checks.run(check, None, "en", checks.Answers(value=0, runs_dir=tmp_path)).passed
    assert not checks.run(check, None, "en", checks.Answers(value=0, runs_dir=tmp_path / "x")).passed


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_fault_and_host_a_lesson_names_exists_in_its_lab(lesson):
    """A check's fault is typed at the lab's prompt, and its hosts are the lab's: a typo would only
    show when a student runs the check."""
    if lesson.lab is None:
        assert all(c.kind not in model.LAB_KINDS for s in lesson.stages for c in s.checks)
        return
    hosts = set(labfile.load(lesson.lab).topo().hosts())
    for check in (c for s in lesson.stages for c in s.checks):
        p = check.params
        if "fault" in p:
            args = verbgrammar.parser().parse_args(["fault", *shlex.split(p["fault"])])
            named = [getattr(args, "host", None), *getattr(args, "side_a", "").split(","),
                     *getattr(args, "side_b", "").split(",")]
            assert {n for n in named if n} <= hosts, p["fault"]
        named = (p.get("moves_to"), p.get("vip_moves_to"), p.get("vip_holder"), p.get("agent", "").partition("/")[0])
        for host in named:
            assert not host or host in hosts, host


def test_the_numbers_of_lessons_4_6_7_and_8_worked_out_apart():
    def passes(number, stage, value):
        check = model.find(number).stage(stage).checks[0]
        return checks.numeric(check.params, value)[0] and f"--value {value:g}`" in model.find(number).stage(
            stage).answer("en")

    assert passes(4, "share", 100 / 2)
    assert passes(6, "cost", round(2184 / 2787 * 100, 1))
    assert passes(7, "delay", 15)
    assert passes(8, "budget", round((1 - 0.99999) * 365 * 24 * 3600, 2))
    assert passes(8, "series", round(0.9999 * 0.9995 * 100, 2))
    assert passes(8, "parallel", round((1 - 0.01 ** 2) * 100, 2))
    assert not checks.numeric(model.find(8).stage("series").checks[0].params, 99.95)[0]  # the weakest, not the chain
    assert not checks.numeric(model.find(8).stage("parallel").checks[0].params, 99.0)[0]


SPREAD = GOOD.replace('''kind = "numeric"
expect = 1.0
tolerance = 0.1''', '''kind = "spread"
servers = 3''')
RESULT = GOOD.replace('''kind = "numeric"
expect = 1.0
tolerance = 0.1''', '''kind = "result"
scenario = "sync"''')


@pytest.mark.parametrize(("base", "change", "said"), [
    (SPREAD, ("servers = 3", "servers = 0"), "servers = 0 is not allowed; expected how many servers answer, 1 to 64"),
    (SPREAD, ("servers = 3", "servers = 3\nmax_share = 1.5"), "max_share = 1.5 is not allowed; expected a share"),
    (SPREAD, ("servers = 3", "servers = 3\nseconds = 0"), "seconds = 0 is not allowed; expected seconds, 0 to 30"),
    (SPREAD, ("servers = 3", "servers = 3\nbudget_s = 1"), "unknown key 'budget_s'"),
    (RESULT, ('scenario = "sync"', 'scenario = ""'), "scenario = '' is not allowed"),
    (RESULT, ('scenario = "sync"', 'scenario = "sync"\noptions = { method = [1] }'),
     "options.method = [1] is not allowed; expected a text, a number or true/false"),
    (RESULT, ('scenario = "sync"', 'scenario = "sync"\ntolerance = 1'), "tolerance need a field"),
    (RESULT, ('scenario = "sync"', 'scenario = "sync"\nfield = " "'), "field = ' ' is not allowed"),
    (RESULT, ('scenario = "sync"', 'scenario = "sync"\nfield = "a"\nscale = 0'), "scale = 0 is not allowed"),
    (RESULT, ('scenario = "sync"', 'scenario = "sync"\nfield = "a"\nat_most = "x"'), "at_most = 'x' is not allowed"),
    (MEASURE, ("budget_s = 4.0", "budget_s = 4.0\nfigure = \"silence\""),
     "figure = 'silence' is not allowed; expected outage | last_failure"),
    (MEASURE, ('lab = "active-standby"\n', ''), "stage 'one' checks a lab, and the lesson names none"),
])
def test_the_keys_of_spread_and_result_checks_are_checked(tmp_path, base, change, said):
    assert change[0] in base
    with pytest.raises(HalabError) as caught:
        model.load(lesson_dir(tmp_path, base.replace(*change, 1)))
    assert said in caught.value.problem


def test_a_lesson_without_a_lab_starts_without_one_and_has_nothing_to_reset(tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "progress.json"))
    assert model.load(lesson_dir(tmp_path, RESULT.replace('lab = "active-standby"\n', ''))).lab is None
    assert cli.main(["lesson", "start", "8", "--lang", "en"]) == 0  # no root, no lab
    assert "Next stage: budget" in capsys.readouterr().out and progress.load().lesson == 8
    assert cli.main(["lesson", "reset"]) == 2
    assert "Lesson 8 has no lab to reset." in capsys.readouterr().err
    assert cli.main(["lesson", "check", "budget", "--value", "315.36", "--lang", "en"]) == 0
    assert "Right: 5 min 15 s a year" in capsys.readouterr().out
    assert cli.main(["lesson", "check", "capstone", "--value", "3.49", "--runs-dir", str(tmp_path),
                     "--lang", "en"]) == 1
    assert f"no run of `halab compare` in {tmp_path}" in capsys.readouterr().out


def test_grades_say_passed_failed_or_not_tried_in_json_junit_and_the_classes_csv(tmp_path, monkeypatch, capsys):
    from harness import cli

    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "progress.json"))
    mine = progress.Progress(lesson=1)
    mine.attempt("1/spof", True, None, "outages: never (watched 3 s)")
    mine.attempt("1/downtime", False, 6.0, "your answer: 6 h")
    mine.attempt("1/spof", False, None, "outages: 0.30 s")  # practice after a pass: the pass stands
    mine.save()
    assert progress.load().attempts["1/spof"]["detail"] == "outages: never (watched 3 s)"
    assert progress.load().attempts["1/downtime"]["value"] == 6.0 and progress.load().passed == ["1/spof"]
    out = tmp_path / "grades"
    (out).mkdir()
    (out / "grades.csv").write_text("student,lesson 1\nkim,3/3\nlee,0/3\n")
    assert cli.main(["lesson", "grade", "--student", "lee", "--out", str(out)]) == 0
    assert "lee: 1 of " in capsys.readouterr().out
    r = json.loads((out / "lee.json").read_text())
    first = r["lessons"][0]
    assert [(s["name"], s["result"]) for s in first["stages"]] == [
        ("spof", "passed"), ("downtime", "failed"), ("availability", "not tried")]
    assert first["stages"][1]["value"] == 6.0 and first["passed"] == 1 and r["passed"] == 1
    assert r["stages"] == sum(len(lesson.stages) for lesson in LESSONS)
    xml = ET.parse(out / "lee.xml").getroot()
    assert xml.tag == "testsuites" and xml.get("failures") == "1"
    suite = xml.find("testsuite")
    assert suite.get("name") == "lesson 1: The single point of failure (SPOF)" and suite.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["downtime"].find("failure").get("message") == "your answer: 6 h"
    assert cases["availability"].find("skipped") is not None and len(cases["spof"]) == 0
    rows = list(csv.reader((out / "grades.csv").open()))
    assert rows[0][:3] == ["student", "lesson 1", "lesson 2"] and [row[0] for row in rows[1:]] == ["kim", "lee"]
    assert rows[2][1] == "1/3" and rows[2][-3:-1] == ["1", str(r["stages"])]  # lee's old row replaced
    assert rows[1][:3] == ["kim", "3/3", ""]  # kim's row kept, under the new header's columns
    assert {oct(p.stat().st_mode & 0o777) for p in (out / "lee.json", out / "lee.xml", out / "grades.csv")} == {"0o640"}
    assert cli.main(["lesson", "grade", "--student", "../x", "--out", str(out)]) == 2
    assert "--student '../x' is not a student id" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli.main(["lesson", "grade", "--student", "lee", "--out", str(tmp_path / "file")]) == 2
    assert "the grades cannot be written" in capsys.readouterr().err


def test_a_failed_measure_check_draws_what_the_probe_saw_with_the_agents_events(tmp_path):
    from ha.eventlog import EventLog
    from harness.lessons.live import LiveLabView
    from harness.livemeasure import LiveOutcome
    from harness.measure import analyse

    log = EventLog(tmp_path / "server2.events.jsonl", "halab-vrrp")
    t0 = time.monotonic() - 3  # the event logged below lands in the middle of these requests
    seen = [Request(i, t0 + i * 0.05, t0 + i * 0.05 if i < 20 or i > 90 else None,
                    "server1" if i < 20 else "server2" if i > 90 else None) for i in range(120)]
    plain = analyse(seen, t0 + 1.0)
    outcome = LiveOutcome(**{k: getattr(plain, k) for k in plain.__dataclass_fields__}, seen=tuple(seen))
    view = object.__new__(LiveLabView)
    view.descriptor = {"run_dir": str(tmp_path), "event_logs": [{"host": "server2", "path": str(log.path)}]}
    log.write("VI_1", "BACKUP", "MASTER", "master down timer expired")
    svg = view.save_timeline(outcome, "link-cut server1").read_text()
    assert svg.startswith("<svg") and "outage" in svg and "server1" in svg and "server2" in svg
    assert "server2 VI_1: BACKUP -&gt; MASTER (master down timer expired)" in svg
    assert view.save_timeline(LiveOutcome(**{k: getattr(plain, k) for k in plain.__dataclass_fields__}), "x") is None


def test_a_vip_that_must_move_is_held_by_that_host_alone_afterwards():
    p = {"budget_s": 4.5, "vip_moves_to": "lb2"}
    moved = run_of(3.6, after="web1", holders_after=("lb2",))
    assert checks.measure(p, [moved])[0] is True
    stayed = run_of(0.1, after="web2", holders_after=("lb1",))
    both = run_of(0.1, after="web2", holders_after=("lb1", "lb2"))
    assert checks.measure(p, [moved, stayed, both]) == (
        False, "outages: 3.60 s, 0.10 s, 0.10 s; the VIP was held afterwards by lb2; lb1; lb1, lb2")
    assert checks.measure(p, [run_of(0.1, holders_after=())])[1].endswith("by nobody")


def test_a_students_variant_has_numbers_of_their_own_the_order_kept_and_loads_as_a_lab(tmp_path):
    from harness.lessons import variant

    lab = model.find(2).lab
    made = {student: variant.make(lab, student, 2) for student in (f"s{i}" for i in range(30))}
    assert variant.make(lab, "s1", 2) == made["s1"]                # the same student, the same lab

    def drawn(text):
        return sorted((i["virtual_router_id"], i["priority"]) for a in tomllib.loads(text)["agent"]
                      if a["program"] == "halab-vrrp" for i in a["config"]["vrrp_instance"])

    assert drawn(variant.make(lab, "s1", 9)) != drawn(made["s1"])  # seeded by the lesson too
    numbers = set()
    for student, text in made.items():
        raw = tomllib.loads(text)
        insts = {a["hosts"][0]: a["config"]["vrrp_instance"][0] for a in raw["agent"]
                 if a["program"] == "halab-vrrp"}
        assert insts["server1"]["virtual_router_id"] == insts["server2"]["virtual_router_id"]
        assert 150 <= insts["server1"]["priority"] <= 254 and 50 <= insts["server2"]["priority"] <= 149
        assert insts["server1"]["advert_int"] == 1.0  # the timers, and so the checks' budgets, stay
        vip = raw["probe"]["target"]  # an address of the student's own, both servers', which the probe asks
        assert insts["server1"]["virtual_ipaddress"] == insts["server2"]["virtual_ipaddress"] == [f"{vip}/24"]
        assert vip.startswith("10.0.0.") and 20 <= int(vip.rsplit(".", 1)[1]) <= 99
        numbers.add((insts["server1"]["virtual_router_id"], insts["server1"]["priority"], insts["server2"]["priority"]))
        (tmp_path / f"{student}.toml").write_text(text)
        assert labfile.load(tmp_path / f"{student}.toml").topology == "active-standby"
    assert len(numbers) == 30
    assert variant.make(model.find(3).lab, "s1", 3) is None  # heartbeat: nothing varied
    own = tmp_path / "own.toml"
    own.write_text('topology = "active-standby"\n[[agent]]\nhosts = ["server1"]\nprogram = "halab-vrrp"\n'
                   'config = "vrrp.toml"\n')
    assert variant.make(own, "s1", 2) is None  # a configuration in a file of its own is not copied


def test_start_with_a_student_id_keeps_the_variant_and_grades_under_that_id(tmp_path, monkeypatch, capsys):
    from harness import cli
    from harness.lessons import command

    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "progress.json"))
    started = []
    monkeypatch.setattr(command, "_bring_up", started.append)
    assert cli.main(["lesson", "start", "2", "--student", "kim", "--lang", "en"]) == 0
    mine = progress.load()
    assert mine.student == "kim" and started == [tmp_path / "labs" / "lesson-2-kim.toml"] == [Path(mine.lab_file)]
    assert oct(Path(mine.lab_file).stat().st_mode & 0o777) == "0o644"
    assert command._lab_file(model.find(2), mine) == Path(mine.lab_file)
    assert command._lab_file(model.find(5), mine) == model.find(5).lab  # the variant is lesson 2's
    assert cli.main(["lesson", "grade", "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / "kim.json").exists()
    monkeypatch.setenv("HALAB_STUDENT", "lee")
    assert cli.main(["lesson", "start", "3", "--lang", "en"]) == 0  # the environment names the student
    assert "lesson 3's lab is the same for every student" in capsys.readouterr().out
    assert progress.load().student == "lee" and progress.load().lab_file is None and started[-1] == model.find(3).lab
    assert cli.main(["lesson", "start", "2", "--student", "a/b"]) == 2
    assert "--student 'a/b' is not a student id" in capsys.readouterr().err


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_no_command_in_a_lessons_text_is_broken_across_lines(lesson):
    """A student copies the commands of the prose too: a `span` split over two lines does not paste."""
    for lang in ("ko", "en"):
        prose = re.sub(r"```.*?```", "", lesson.text(lang).read_text(), flags=re.S)
        assert [span for span in re.findall(r"`([^`]*)`", prose) if "\n" in span] == [], lang


@pytest.mark.parametrize("number", [6, 7, 8])
def test_the_lessons_without_a_lab_typed_as_a_student_would(number, tmp_path, monkeypatch, capsys):
    """Every line of lessons 6 to 8 that needs no lab run, in order, with the lesson's answers: they
    pass without root. The runs they read (`halab run three-tier`, `halab run sync`, `halab compare`)
    and the checks of those runs are tests/lab/test_three_tier.py's and tests/lab/test_compare.py's."""
    from harness import cli

    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "progress.json"))
    lesson = model.find(number)
    reads_runs = {s.name for s in lesson.stages if any(c.kind == "result" for c in s.checks)}
    typed = 0
    for line in student_lines(lesson):
        argv = shlex.split(line)[2:]
        if argv[0] in ("run", "compare") or (argv[:2] == ["lesson", "check"] and argv[2] in reads_runs):
            continue
        assert cli.main([*argv, "--lang", "en"] if argv[0] == "lesson" else argv) == 0, (line, capsys.readouterr())
        typed += 1
    out = capsys.readouterr().out
    assert typed >= 2 and "Right" in out


def loaded(tmp_path, body: str) -> dict:
    tmp_path.mkdir(exist_ok=True)
    return model.load(lesson_dir(tmp_path, GOOD.replace('kind = "numeric"\nexpect = 1.0\ntolerance = 0.1', body))
                      ).stage("one").checks[0].params


def test_a_checks_params_hold_every_default_and_only_the_keys_whose_presence_matters(tmp_path):
    assert loaded(tmp_path / "m", 'kind = "measure"\nfault = "crash server1"\nbudget_s = 4') == {
        "fault": "crash server1", "runs": 1, "quick_runs": 1, "watch_s": 8.0, "statistic": "median",
        "whole": False, "figure": "outage", "recovers": True, "budget_s": 4}
    assert loaded(tmp_path / "p", 'kind = "predict"\nfault = "crash server1"') == {
        "fault": "crash server1", "runs": 1, "quick_runs": 1, "watch_s": 8.0, "slack_s": 0.0}
    assert loaded(tmp_path / "s", 'kind = "spread"\nservers = 64') == {"servers": 64, "max_share": 1.0, "seconds": 3.0}
    assert loaded(tmp_path / "r", 'kind = "result"\nscenario = "sync"') == {"scenario": "sync", "options": {},
                                                                           "scale": 1.0}
    assert loaded(tmp_path / "a", 'kind = "state"\nagent = "s/p"\nstate = "BACKUP"') == {"agent": "s/p",
                                                                                       "state": "BACKUP"}
    assert loaded(tmp_path / "n", 'kind = "measure"\nfault = "x y"\nrecovers = false\nruns = 20\nwatch_s = 60\n'
                  'moves_to = "a"\nvip_moves_to = "b"\nreason = "c"\nwhole = true') == {
        "fault": "x y", "runs": 20, "quick_runs": 1, "watch_s": 60, "statistic": "median", "moves_to": "a",
        "vip_moves_to": "b", "reason": "c", "whole": True, "figure": "outage", "recovers": False}
    edges = loaded(tmp_path / "e", 'kind = "spread"\nservers = 1\nmax_share = 1\nseconds = 30')
    assert edges == {"servers": 1, "max_share": 1, "seconds": 30}
    assert loaded(tmp_path / "z", 'kind = "predict"\nfault = "x"\nslack_s = 0\nquick_runs = 20')["slack_s"] == 0
    assert loaded(tmp_path / "t", 'kind = "result"\nscenario = "s"\nfield = "a.b"\ntolerance = 0\nunit = "ms"\n'
                  'at_least = 1\nat_most = 2\nscale = 0.5') == {
        "scenario": "s", "options": {}, "field": "a.b", "scale": 0.5, "unit": "ms", "tolerance": 0, "at_least": 1,
        "at_most": 2}
    assert loaded(tmp_path / "u", 'kind = "numeric"\nexpect = 1\ntolerance = 0\nunit = "h"')["unit"] == "h"
    assert loaded(tmp_path / "v", 'kind = "state"\nagent = "s/p"\nrunning = false') == {"agent": "s/p",
                                                                                     "running": False}


@pytest.mark.parametrize(("body", "said"), [
    ('kind = "measure"\nfault = "x"\nbudget_s = 1\nvip_moves_to = " "',
     "vip_moves_to = ' ' is not allowed; expected a host"),
    ('kind = "measure"\nfault = "x"\nbudget_s = 1\nmoves_to = ""', "moves_to = '' is not allowed; expected a host"),
    ('kind = "measure"\nfault = "x"\nbudget_s = 1\nreason = " "',
     "reason = ' ' is not allowed; expected words an agent's reason must hold"),
    ('kind = "measure"\nfault = "x"\nbudget_s = 1\nwhole = 1',
     "whole = 1 is not allowed; expected true (watch all of watch_s) or false"),
    ('kind = "measure"\nfault = "x"\nbudget_s = 1\nruns = 20\nquick_runs = 21', "quick_runs = 21 is not allowed"),
    ('kind = "measure"\nfault = "x"\nbudget_s = 1\nwatch_s = 60.5', "watch_s = 60.5 is not allowed"),
    ('kind = "spread"\nservers = 65', "servers = 65 is not allowed; expected how many servers answer, 1 to 64"),
    ('kind = "spread"\nservers = 2\nmax_share = 0', "max_share = 0 is not allowed; expected a share, above 0 to 1"),
    ('kind = "spread"\nservers = 2\nseconds = 30.5', "seconds = 30.5 is not allowed; expected seconds, 0 to 30"),
    ('kind = "predict"\nfault = "x"\nslack_s = -0.01', "slack_s = -0.01 is not allowed; expected seconds, 0 or more"),
    ('kind = "numeric"\nexpect = 1\ntolerance = -1', "tolerance = -1 is not allowed; expected 0 or more"),
    ('kind = "numeric"\nexpect = 1\ntolerance = 0\nunit = 3', "unit = 3 is not allowed; expected a unit"),
    ('kind = "result"\nscenario = "s"\nfield = "f"\nunit = 3', "unit = 3 is not allowed; expected a unit"),
    ('kind = "result"\nscenario = "s"\nfield = "f"\ntolerance = -1',
     "tolerance = -1 is not allowed; expected 0 or more"),
    ('kind = "result"\nscenario = "s"\nfield = "f"\nat_least = "x"',
     "at_least = 'x' is not allowed; expected a number"),
    ('kind = "result"\nscenario = "s"\nfield = 1', 'field = 1 is not allowed; expected a dotted key of the result, '
                                                    'e.g. "sync.writes.p50"'),
    ('kind = "result"\nscenario = "s"\nfield = "f"\nscale = -1',
     "scale = -1 is not allowed; expected a factor above 0 (1000: s to ms)"),
    ('kind = "result"\nscenario = "s"\nunit = "ms"\nat_most = 1', ": at_most, unit need a field"),
    ('kind = "result"\nscenario = "s"\noptions = 1',
     "options = 1 is not allowed; expected a table of the run's options"),
    ('kind = "result"\nscenario = 2', 'scenario = 2 is not allowed; expected a scenario of `halab run`, or "compare"'),
    ('kind = "state"\nagent = "s/p"\nstate = 1', 'state = 1 is not allowed; expected a word of the agent\'s state, '
                                                 'e.g. "BACKUP"'),
    ('kind = "state"\nagent = "sp"\nstate = "B"', 'agent = \'sp\' is not allowed; expected HOST/PROGRAM, e.g. '
                                                  '"server2/halab-vrrp"'),
    ('kind = "state"\nvip_holder = "s"\nstate = "B"', "vip_holder is a check of its own"),
    ('kind = "state"\nvip_holder = "s"\nrunning = true', "vip_holder is a check of its own"),
    ('kind = "measure"\nfault = "x"\nbudget_s = 1\nstatistic = "MEDIAN"', "statistic = 'MEDIAN' is not allowed"),
])
def test_each_new_key_is_refused_with_what_it_allows(tmp_path, body, said):
    with pytest.raises(HalabError) as caught:
        loaded(tmp_path, body)
    assert said in caught.value.problem


def test_a_lessons_errors_name_what_there_is(tmp_path):
    folder = lesson_dir(tmp_path, GOOD.replace('lab = "active-standby"', 'lab = "nowhere.toml"'))
    with pytest.raises(HalabError) as caught:
        model.load(folder)
    assert f"expected a built-in lab ({', '.join(TOPOLOGIES)}) or a lab file in {folder}" in caught.value.problem
    twin = tmp_path / "b"
    twin.mkdir()
    lesson_dir(twin, GOOD)
    (twin / "08-y").mkdir()
    for name in ("lesson.toml", "ko.md", "en.md"):
        (twin / "08-y" / name).write_text((twin / "07-x" / name).read_text())
    with pytest.raises(HalabError) as caught:
        model.all_lessons(twin)
    assert caught.value.fix == "Give each lesson its own number."


def test_a_variant_is_the_same_numbers_for_the_same_student_anywhere_and_keeps_three_priorities_in_order(tmp_path):
    """The numbers are a function of the id and the lesson only (a teacher gets kim's lab too), and
    a lab of three VRRP servers keeps their order."""
    from harness.lessons import variant

    kim = variant.make(model.find(2).lab, "kim", 2)
    assert kim.splitlines()[:2] == [
        "# Lesson 2's lab for student kim: active-standby.toml with the student's own VRRP numbers",
        "# (virtual_router_id 116, priorities 169, 129, VIP 10.0.0.88). Written by "
        "`halab lesson start 2 --student kim`."]
    three = tmp_path / "three.toml"
    three.write_text('topology = "active-standby"\n' + "".join(
        f'[[agent]]\nhosts = ["{h}"]\nprogram = "halab-vrrp"\n[agent.config]\n[[agent.config.vrrp_instance]]\n'
        f'name = "VI_1"\ninterface = "{h}-eth0"\nvirtual_router_id = 51\npriority = {p}\nadvert_int = 1.0\n'
        f'virtual_ipaddress = ["10.0.0.100/24"]\n' for h, p in (("a", 100), ("b", 250), ("c", 180))))
    for student in ("s1", "s2", "s3", "s4"):
        got = {a["hosts"][0]: a["config"]["vrrp_instance"][0]["priority"]
               for a in tomllib.loads(variant.make(three, student, 2))["agent"]}
        assert got["b"] > got["c"] > got["a"] and got["b"] >= 150 > got["c"], got
    bare = tmp_path / "bare.toml"
    bare.write_text('topology = "active-standby"\n')
    assert variant.make(bare, "s1", 2) is None
    odd = tmp_path / "odd.toml"
    odd.write_text('topology = "active-standby"\n[[agent]]\nhosts = ["a"]\nprogram = "halab-vrrp"\nconfig = {}\n')
    assert variant.make(odd, "s1", 2) is None  # no instance written: nothing to vary
    aimed = tmp_path / "aimed.toml"  # a probe aimed at an address of its own keeps it; another VIP stays
    aimed.write_text(three.read_text().replace('["10.0.0.100/24"]', '["10.0.0.100/24", "10.0.0.200/24"]', 1)
                     + '[probe]\ntarget = "10.0.0.1"\n')
    raw = tomllib.loads(variant.make(aimed, "s1", 2))
    own = raw["agent"][0]["config"]["vrrp_instance"][0]["virtual_ipaddress"]
    assert raw["probe"]["target"] == "10.0.0.1" and own[1] == "10.0.0.200/24" and own[0] != "10.0.0.100/24"
    other = tmp_path / "other.toml"
    other.write_text(three.read_text().replace("10.0.0.100/24", "10.0.0.50/24"))
    raw = tomllib.loads(variant.make(other, "s1", 2))
    assert variant.make(other, "s1", 2).splitlines()[1].startswith("# (virtual_router_id ") and "probe" not in raw
    assert variant.make(other, "s1", 2).splitlines()[1].split(")")[0].count(",") == 3  # VRID, three priorities
    unaimed = tomllib.loads(variant.make(three, "s1", 2))  # no [probe]: it asked for the VIP, now the student's
    own_vip = unaimed["agent"][0]["config"]["vrrp_instance"][0]["virtual_ipaddress"][0]
    assert unaimed["probe"]["target"] + "/24" == own_vip
    shared = tmp_path / "shared.toml"  # a probe aimed at the shared VIP by its address follows it too
    shared.write_text(three.read_text() + '[probe]\ntarget = "10.0.0.100"\n')
    assert tomllib.loads(variant.make(shared, "s1", 2))["probe"]["target"] == unaimed["probe"]["target"]
    for student in ("s1", "s2", "s3"):  # of three, the mistake is the lowest priority's alone
        got = {a["hosts"][0]: a["config"]["vrrp_instance"][0] for a in
               tomllib.loads(variant.make(three, student, 9, ("unicast_peer",)))["agent"]}
        assert [h for h, i in got.items() if "unicast_peer" in i] == ["a"], got
    assert variant.path(tmp_path, "kim", 2) == tmp_path / "labs" / "lesson-2-kim.toml"


def test_a_config_check_reads_a_key_of_the_lab_file_the_student_wrote():
    configs = {"server1/halab-vrrp": {"vrrp_instance": [{"virtual_router_id": 51, "advert_int": 1.0,
                                                        "auth_pass": "hunter2"}]},
               "server2/halab-vrrp": {"vrrp_instance": [{"virtual_router_id": 52, "advert_int": 1.0,
                                                        "auth_pass": "hunter3", "preempt": True}]}}
    vrid = {"config": "server2/halab-vrrp", "key": "vrrp_instance.0.virtual_router_id"}
    assert checks.config({**vrid, "same_as": "server1/halab-vrrp"}, configs) == (
        False, "server2/halab-vrrp: vrrp_instance.0.virtual_router_id = 52; server1/halab-vrrp: 51")
    assert checks.config({**vrid, "equals": 52}, configs)[0] is True
    assert checks.config({**vrid, "equals": 51}, configs)[0] is False
    assert checks.config({**vrid, "at_least": 52, "at_most": 52}, configs)[0] is True
    assert checks.config({**vrid, "at_most": 51}, configs)[0] is False
    assert checks.config({**vrid, "at_least": 53}, configs)[0] is False
    interval = {"config": "server2/halab-vrrp", "key": "vrrp_instance.0.advert_int", "same_as": "server1/halab-vrrp"}
    assert checks.config(interval, configs)[0] is True
    preempt = {"config": "server2/halab-vrrp", "key": "vrrp_instance.0.preempt"}
    assert checks.config({**preempt, "at_most": 1}, configs)[0] is False  # true/false is no number
    assert checks.config({**preempt, "equals": 1}, configs)[0] is False      # nor is it 1
    assert checks.config({**preempt, "equals": True}, configs)[0] is True
    assert checks.config({**preempt, "same_as": "server1/halab-vrrp"}, configs) == (
        False, "server2/halab-vrrp: vrrp_instance.0.preempt = True; server1/halab-vrrp: not set")
    for key in ("vrrp_instance.1.priority", "vrrp_instance.x", "nothing.0", "vrrp_instance.0.advert_int.1"):
        assert checks.config({"config": "server2/halab-vrrp", "key": key, "equals": 1}, configs) == (
            False, f"server2/halab-vrrp: {key} = not set")
    assert checks.config({**vrid, "config": "server3/halab-vrrp", "equals": 52}, configs)[0] is False
    secret = checks.config({"config": "server2/halab-vrrp", "key": "vrrp_instance.0.auth_pass",
                            "same_as": "server1/halab-vrrp"}, configs)
    assert secret[0] is False and "hunter" not in secret[1] and "(a secret, not shown)" in secret[1]
    whole = checks.config({"config": "server2/halab-vrrp", "key": "vrrp_instance.0", "equals": 1}, configs)
    assert "hunter" not in whole[1] and "'auth_pass': '(a secret, not shown)'" in whole[1]
    assert "'virtual_router_id': 52" in whole[1]


def test_a_config_check_runs_against_the_lab_files_configs_and_adds_no_diagnosis():
    class Configured(FakeLab):
        findings = "- two masters"

        def configs(self):
            return {"server2/halab-vrrp": {"advert_int": 3.0}}

    check = Check("state", *WORDS, {"config": "server2/halab-vrrp", "key": "advert_int", "equals": 1.0})
    verdict = checks.run(check, Configured(), "en", checks.Answers())
    assert verdict == checks.Verdict(False, "failed", "server2/halab-vrrp: advert_int = 3.0")


def test_a_labs_configurations_are_recorded_with_defaults_and_a_changed_file_is_seen(tmp_path):
    """What a config check reads is what the lab came up with (its descriptor); the lab file
    changed since is said once, by `halab lesson check`."""
    from harness.labinfo import file_digest
    from harness.lessons.live import LiveLabView

    lab = tmp_path / "lab.toml"
    lab.write_text(labfile.builtin("active-standby").read_text())
    tables = labfile.agent_tables(labfile.load(lab))
    assert sorted(tables) == ["server1/halab-vrrp", "server1/responder", "server2/halab-vrrp", "server2/responder"]
    server2 = tables["server2/halab-vrrp"]["vrrp_instance"][0]
    assert (server2["virtual_router_id"], server2["priority"], server2["checksum_with_pseudo_header"],
            server2["track_script"], server2["unicast_peer"]) == (51, 100, True, [], [])  # the defaults, filled in
    assert labfile.lookup(tables, "server2/halab-vrrp", "vrrp_instance.0.priority") == 100
    for missing in ("vrrp_instance.1.priority", "vrrp_instance.x", "vrrp_instance.²", "nothing"):
        assert labfile.lookup(tables, "server2/halab-vrrp", missing) is None
    assert labfile.lookup(tables, "server3/halab-vrrp", "vrrp_instance") is None
    view = object.__new__(LiveLabView)
    view.descriptor = {"lab_file": str(lab), "lab_digest": file_digest(lab), "configs": tables}
    assert view.configs() == tables and view.lab_changed() is False
    lab.write_text(lab.read_text().replace("priority = 100", "priority = 90"))
    assert view.lab_changed() is True
    view.descriptor = {"lab_file": str(lab)}  # a lab that recorded neither
    assert view.configs() == {} and view.lab_changed() is False
    assert file_digest(tmp_path / "gone.toml") is None


CONFIG = GOOD.replace('''kind = "numeric"
expect = 1.0
tolerance = 0.1''', '''kind = "state"
config = "server2/halab-vrrp"
key = "vrrp_instance.0.advert_int"
same_as = "server1/halab-vrrp"''')


@pytest.mark.parametrize(("change", "said"), [
    (('same_as = "server1/halab-vrrp"', ''), "a config check needs one of equals, same_as, or at_least/at_most"),
    (('same_as = "server1/halab-vrrp"', 'same_as = "server1/halab-vrrp"\nequals = 1.0'),
     "a config check needs one of equals, same_as, or at_least/at_most (it has equals, same_as)"),
    (('same_as = "server1/halab-vrrp"', 'equals = 1.0\nat_most = 2'), "(it has equals, at_least/at_most)"),
    (('same_as = "server1/halab-vrrp"', 'same_as = "server1"'), "same_as = 'server1' is not allowed; expected HOST/"),
    (('same_as = "server1/halab-vrrp"', 'at_most = "2"'), "at_most = '2' is not allowed; expected a number"),
    (('same_as = "server1/halab-vrrp"', 'equals = { a = 1 }'), "equals = {'a': 1} is not allowed; expected a value"),
    (('key = "vrrp_instance.0.advert_int"', 'key = "vrrp_instance[0]"'), "key = 'vrrp_instance[0]' is not allowed"),
    (('key = "vrrp_instance.0.advert_int"', 'key = "a..b"'), "key = 'a..b' is not allowed; expected a dotted key"),
    (('key = "vrrp_instance.0.advert_int"\n', ''), "missing key 'key'"),
    (('config = "server2/halab-vrrp"', 'config = "server2"'), "config = 'server2' is not allowed; expected HOST/"),
    (('config = "server2/halab-vrrp"', 'config = "server2/halab-vrrp"\nvip_holder = "server1"'),
     "a config check is a check of its own"),
    (('config = "server2/halab-vrrp"\n', ''), "key, equals, same_as, at_least and at_most belong to a config check"),
    (('config = "server2/halab-vrrp"', 'config = "server9/halab-vrrp"'),
     "'server9/halab-vrrp' is not an agent of active-standby.toml; expected one of server1/responder, "),
    (('same_as = "server1/halab-vrrp"', 'same_as = "server1/keepalived"'),
     "'server1/keepalived' is not an agent of active-standby.toml"),
    (('key = "vrrp_instance.0.advert_int"', 'key = "vrrp_instance.0.advert_interval"'),
     "key 'vrrp_instance.0.advert_interval' is not in server2/halab-vrrp's configuration in active-standby.toml"),
    (('key = "vrrp_instance.0.advert_int"', 'key = "vrrp_instance.²"'), "key = 'vrrp_instance.²' is not allowed"),
])
def test_the_keys_of_a_config_check_are_checked(tmp_path, change, said):
    assert change[0] in CONFIG
    with pytest.raises(HalabError) as caught:
        model.load(lesson_dir(tmp_path, CONFIG.replace(*change, 1)))
    assert said in caught.value.problem


def test_a_config_check_keeps_what_it_was_given_and_a_troubleshooting_lesson_names_its_mistakes(tmp_path):
    assert model.load(lesson_dir(tmp_path, CONFIG)).stage("one").checks[0].params == {
        "config": "server2/halab-vrrp", "key": "vrrp_instance.0.advert_int", "same_as": "server1/halab-vrrp"}
    (tmp_path / "b").mkdir()
    folder = lesson_dir(tmp_path / "b", CONFIG.replace("number = 7", 'number = 7\nmisconfigure = ["vrid"]'))
    assert model.load(folder).misconfigure == ("vrid",)
    for change, said in ((('number = 7', 'number = 7\nmisconfigure = ["typo"]'),
                          "misconfigure entry 'typo' is not allowed; expected one of vrid, unicast_peer, track_script"),
                         (('number = 7', 'number = 7\nmisconfigure = "vrid"'), "misconfigure = 'vrid' is not allowed"),
                         (('number = 7', 'number = 7\nmisconfigure = [{ a = 1 }]'),
                          "misconfigure entry {'a': 1} is not allowed"),
                         (('lab = "active-standby"', 'lab = "active-active"\nmisconfigure = ["vrid"]'),
                          "misconfigure needs a lab with a master's and a backup's VRRP instance"),
                         (('lab = "active-standby"', 'misconfigure = ["vrid"]'), "misconfigure needs a lab")):
        bad = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
        bad.mkdir()
        with pytest.raises(HalabError) as caught:
            model.load(lesson_dir(bad, GOOD.replace(*change, 1)))
        assert said in caught.value.problem


def test_each_mistake_a_troubleshooting_lab_is_given_is_in_the_backup_alone_and_its_checks_catch_it(tmp_path):
    """Lesson 9's mistakes, each drawn for some student: the variant differs from the student's
    plain numbers only in server2's one key; the header does not tell; the lab loads; the lesson's
    own checks of the configuration fail on it and pass on the plain lab; the configuration-level
    ones are named by `halab diagnose` from the facts alone (the others from what the agents count
    and say: tests/lab/test_lessons.py and test_diagnose.py)."""
    from harness import diagnose
    from harness.lessons import variant

    lesson = model.find(9)
    assert set(lesson.misconfigure) == set(variant.MISTAKES)
    config_checks = [c for c in lesson.stage("healthy").checks if "config" in c.params]

    def failing(text: str) -> list[str]:
        (tmp_path / "lab.toml").write_text(text)
        tables = labfile.agent_tables(labfile.load(tmp_path / "lab.toml"))  # a lab that comes up
        return [c.params["key"].rsplit(".", 1)[1] for c in config_checks if not checks.config(c.params, tables)[0]]

    seen = {}
    for student in (f"s{i}" for i in range(40)):
        texts = [variant.make(lesson.lab, student, 9, m) for m in (lesson.misconfigure, ())]
        broken, plain = ({a["hosts"][0]: a["config"]["vrrp_instance"][0] for a in tomllib.loads(t)["agent"]
                          if a["program"] == "halab-vrrp"} for t in texts)
        assert broken["server1"] == plain["server1"]
        changed = {k for k in {*broken["server2"], *plain["server2"]}
                   if broken["server2"].get(k) != plain["server2"].get(k)}
        assert len(changed) == 1, changed
        key = changed.pop()
        assert "one mistake to find" in texts[0].splitlines()[1] and key not in "".join(texts[0].splitlines()[:2])
        assert failing(texts[0]) == ([] if key == "track_script" else [key]) and failing(texts[1]) == []
        seen.setdefault(key, broken)
    assert set(seen) == {"virtual_router_id", "unicast_peer", "track_script"}
    named = {"virtual_router_id": "use different virtual_router_id"}
    for key, words in named.items():
        facts = {"vip": "10.0.0.100", "vrrp": [
            {"host": host, "program": "halab-vrrp", "running": True, "name": "VI_1", "vrid": i["virtual_router_id"],
             "priority": i["priority"], "advert_int": i["advert_int"], "preempt": True, "vips": ["10.0.0.100"],
             "checksum_with_pseudo_header": i.get("checksum_with_pseudo_header", True), "drops": {},
             "state": "MASTER", "failed": []} for host, i in seen[key].items()]}
        assert words in diagnose.text(facts)
    assert variant.make(lesson.lab, "lee", 9, lesson.misconfigure).count("track_script") == 1  # the lab test's


def test_a_troubleshooting_lesson_without_a_student_gives_the_class_its_mistake(tmp_path, monkeypatch, capsys):
    from harness import cli
    from harness.lessons import command

    monkeypatch.setenv("HALAB_LESSON_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.delenv("HALAB_STUDENT", raising=False)
    started = []
    monkeypatch.setattr(command, "_bring_up", started.append)
    assert cli.main(["lesson", "start", "9", "--lang", "en"]) == 0
    mine = progress.load()
    assert mine.student is None and started == [tmp_path / "labs" / "lesson-9-class.toml"] == [Path(mine.lab_file)]
    assert f"Your lab file: {mine.lab_file}" in capsys.readouterr().out
    assert "one mistake to find" in Path(mine.lab_file).read_text()
