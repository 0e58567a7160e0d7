"""The lessons: their files (both languages, the same stages and commands), the grading arithmetic,
a student's progress, and bad lesson files. tests/lab/test_lessons.py runs them on a lab."""

import re

import pytest

from harness.errors import HalabError
from harness.lessons import checks, model, progress
from harness.lessons.model import Check, Words

LESSONS = model.all_lessons()


def command_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def stage_markers(text: str) -> list[str]:
    return re.findall(r"<!-- stage: (\w+) -->", text)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_both_languages_have_the_same_stages_and_the_same_commands(lesson):
    ko, en = (lesson.text(lang).read_text() for lang in ("ko", "en"))
    assert stage_markers(ko) == stage_markers(en) == [s.name for s in lesson.stages]
    assert command_blocks(ko) == command_blocks(en) and command_blocks(en)
    assert ko.startswith(f"# {lesson.number}강") and en.startswith(f"# Lesson {lesson.number}")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_the_numbers_the_text_gives_pass_and_others_fail(lesson):
    """The reference answer of every numeric stage is in the text; one a little off fails."""
    commands = "\n".join(command_blocks(lesson.text("en").read_text()))
    for stage in lesson.stages:
        for check in (c for c in stage.checks if c.kind == "numeric"):
            value = float(re.search(rf"lesson check {stage.name} --value ([\d.]+)", commands).group(1))
            assert checks.numeric(check.params, value)[0], stage.name
            assert not checks.numeric(check.params, value + 2 * check.params["tolerance"] + 0.01)[0]


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
    ({"budget_s": 4.0}, [3.5, 3.9, 4.5], True, "median 3.90 s of 3.50 s, 3.90 s, 4.50 s; budget 4 s"),
    ({"budget_s": 3.8}, [3.5, 3.9, 4.5], False, "median 3.90 s of 3.50 s, 3.90 s, 4.50 s; budget 3.8 s"),
    ({"budget_s": 4.0, "statistic": "max"}, [3.5, 3.9, 4.5], False, "max 4.50 s"),
    ({"budget_s": 4.5, "statistic": "max"}, [3.5, 3.9, 4.5], True, "max 4.50 s"),
    ({"budget_s": 4.0, "statistic": "p95"}, [1.0, 2.0, 4.5], False, "p95 4.50 s"),
    ({"budget_s": 4.0}, [3.0, None], False, "outages: 3.00 s, never; the service did not come back"),
    ({"recovers": False, "watch_s": 5.0}, [None, None], True, "outages: never, never (watched 5 s)"),
    ({"recovers": False}, [None, 2.0], False, "outages: never, 2.00 s (watched 8 s)"),
])
def test_measure_checks_hold_a_statistic_to_the_budget_or_want_no_recovery(params, outages, passed, detail):
    ok, said = checks.measure(params, outages)
    assert ok is passed and said.startswith(detail)


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
    assert said == (f"you predicted {prediction:g} s; the protocol says 2.61 to 3.61 s; measured 3.40 s, never "
                    "(1 of 2 within it)")


class FakeLab:
    def __init__(self, outages=(3.3,)):
        self.outages = list(outages)
        self.faults = []

    def status(self):
        return {"vip": {"address": "10.0.0.100", "claimed_by": ["server2"]}, "agents": []}

    def outage(self, fault, watch_s):
        self.faults.append((fault, watch_s))
        return self.outages.pop(0)

    def vrrp_window(self):
        return 2.61, 3.61


WORDS = Words("통과", "passed"), Words("실패", "failed")


def test_a_check_speaks_the_students_language_and_runs_as_often_as_asked():
    measure = Check("measure", *WORDS, {"fault": "link-cut server1", "runs": 3, "quick_runs": 1, "budget_s": 4.0})
    lab = FakeLab([3.3, 3.5, 3.4])
    verdict = checks.run(measure, lab, "ko", checks.Answers())
    assert verdict == checks.Verdict(True, "통과", "median 3.40 s of 3.30 s, 3.50 s, 3.40 s; budget 4 s")
    assert lab.faults == [("link-cut server1", 8.0)] * 3
    lab = FakeLab([5.0])
    assert checks.run(measure, lab, "en", checks.Answers(), quick=True).message == "failed" and len(lab.faults) == 1
    state = Check("state", *WORDS, {"vip_holder": "server1"})
    assert checks.run(state, FakeLab(), "en", checks.Answers()).passed is False


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
    (("kind = \"numeric\"", "kind = \"guess\""), "kind = 'guess' is not allowed; expected state | measure"),
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
    (STATE, ('vip_holder = "server1"\n', ''), "a state check needs vip_holder, agent (with state) or running"),
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
