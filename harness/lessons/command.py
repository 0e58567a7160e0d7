"""`halab lesson list | start N | check [STAGE] | predict SECONDS | hint | answer | reset | grade`: the
classroom's lessons (lessons/), their labs, and checks that break the lab and measure it."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from ha.statusfile import write_atomically
from harness import preflight, session
from harness.about import give_to_sudo_user
from harness.errors import HalabError
from harness.lang import LANGS, default_lang
from harness.lessons import checks, model, progress, variant
from harness.lessons import grade as grade_files
from harness.lessons.live import LiveLabView

console = Console(highlight=False, soft_wrap=True)  # a message is one line, whatever the width
#: Whose variant a troubleshooting lesson's lab is when no student was named.
CLASS = "class"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lesson", help="the lessons (한국어/English): start one, check your work by breaking the lab")
    lang = argparse.ArgumentParser(add_help=False)
    lang.add_argument("--lang", choices=LANGS, default=default_lang(), help="the language (default: the locale's)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, help=help_, parents=[lang])

    verb("list", "the lessons and the stages you passed")
    start = verb("start", "bring up a lesson's lab (in the background) and begin it")
    start.add_argument("number", type=int)
    start.add_argument("--student", default=os.environ.get("HALAB_STUDENT"),
                       help="a lab with numbers of your own (VRID, priorities, VIP; in a troubleshooting lesson, "
                            "a mistake of your own), as your teacher asks "
                            "(default: $HALAB_STUDENT)")
    check = verb("check", "check a stage (default: the first not passed)")
    check.add_argument("stage", nargs="?")
    check.add_argument("--value", type=float, help="your answer, for a stage that asks for a number")
    check.add_argument("--quick", action="store_true", help="one run of each measurement instead of several")
    check.add_argument("--runs-dir", type=Path, default=Path("runs"), metavar="DIR",
                       help="where your `halab run` and `halab compare` wrote (default: runs/)")
    predict = verb("predict", "record your prediction (seconds) before the lab measures it")
    predict.add_argument("seconds", type=float)
    predict.add_argument("stage", nargs="?")
    for name, what in (("hint", "a hint"), ("answer", "what to do (for a student who is stuck)")):
        verb(name, f"{what} for a stage").add_argument("stage", nargs="?")
    verb("reset", "bring the lesson's lab up afresh from its lab file (yours, with your changes; `start` writes "
                  "it anew)")
    grade = verb("grade", "write your grades for the teacher: JSON, JUnit XML and a row of a class CSV")
    grade.add_argument("--student", help="the id to file them under (default: the one you started with, "
                                         "else your user name)")
    grade.add_argument("--out", type=Path, default=Path("grades"), metavar="DIR", help="where (default: grades/)")


def main(args: argparse.Namespace) -> int:
    lang, mine = args.lang, progress.load()
    if args.verb == "list":
        for lesson in model.all_lessons():
            done = sum(f"{lesson.number}/{s.name}" in mine.passed for s in lesson.stages)
            mark = "*" if lesson.number == mine.lesson else " "
            console.print(f"{mark}{lesson.number:2}  {escape(lesson.title(lang))}  ({done}/{len(lesson.stages)})")
        return 0
    if args.verb == "start":
        lesson = model.find(args.number)
        mine.lesson = lesson.number
        mine.student = grade_files.check_student(args.student) if args.student else None
        mine.lab_file = _variant(lesson, mine.student)
        if lesson.lab is not None:
            _bring_up(_lab_file(lesson, mine))
        mine.save()
        console.print(f"{escape(lesson.title(lang))}: {lesson.text(lang)}")
        if mine.lab_file:
            console.print({"ko": f"내 랩 파일: {mine.lab_file}", "en": f"Your lab file: {mine.lab_file}"}[lang])
        console.print(_next(lesson, mine, lang))
        return 0
    if args.verb == "grade":
        student = args.student or mine.student or os.environ.get("SUDO_USER") or getpass.getuser()
        r = grade_files.report(grade_files.check_student(student), model.all_lessons(), mine)
        written = grade_files.write(r, args.out)
        console.print(f"{r['student']}: {r['passed']} of {r['stages']} stages passed; "
                      + ", ".join(str(p) for p in written))
        return 0
    lesson = _current(mine)
    if args.verb == "reset":
        if lesson.lab is None:
            raise HalabError(f"Lesson {lesson.number} has no lab to reset.", "Its checks read numbers and your runs.")
        preflight.require_root()
        session.down()
        _bring_up(_lab_file(lesson, mine))
        return 0
    if args.verb == "check" and not args.stage and all(f"{lesson.number}/{s.name}" in mine.passed
                                                       for s in lesson.stages):
        console.print(_next(lesson, mine, lang) + {"ko": " (한 단계를 다시 보려면 `halab lesson check STAGE`)",
                                                     "en": " (`halab lesson check STAGE` checks one again)"}[lang])
        return 0
    stage = lesson.stage(args.stage) if args.stage else _first_open(lesson, mine, args.verb == "predict")
    key = f"{lesson.number}/{stage.name}"
    if args.verb in ("hint", "answer"):
        console.print(escape((stage.hint if args.verb == "hint" else stage.answer)(lang)))
        return 0
    if args.verb == "predict":
        if not any(c.kind == "predict" for c in stage.checks):
            raise HalabError(f"Stage {stage.name!r} asks for no prediction.", "Leave out the stage, or name one "
                             "that measures what you predict.")
        mine.predictions[key] = args.seconds
        mine.save()
        console.print(f"{key}: {args.seconds:g} s")
        return 0
    lab = _lab_of(lesson, mine) if any(c.kind in model.LAB_KINDS for c in stage.checks) else None  # numbers: none
    answers = checks.Answers(value=args.value, prediction=mine.predictions.get(key), runs_dir=args.runs_dir)
    verdicts = [checks.run(c, lab, lang, answers, quick=args.quick) for c in stage.checks]  # type: ignore[arg-type]
    for v in verdicts:
        console.print(f"[{'green' if v.passed else 'red'}]{'✓' if v.passed else '✗'}[/] {escape(v.message)}"
                      + (f"\n    {escape(v.detail)}" if v.detail else ""))
    passed = all(v.passed for v in verdicts)
    if not passed and lab is not None and lab.lab_changed():
        console.print(_CHANGED[lang].format(escape(lab.descriptor["lab_file"])))
    mine.attempt(key, passed, args.value, "; ".join(v.detail for v in verdicts if v.detail))
    mine.save()
    if passed:
        console.print(_next(lesson, mine, lang))
        return 0
    return 1


_CHANGED = {"ko": "내 랩 파일({})이 랩이 올라온 뒤에 바뀌었습니다: 지금 도는 것은 예전 설정입니다. "
                   "`halab lesson reset`이 바뀐 파일로 랩을 다시 올립니다.",
            "en": "Your lab file ({}) changed after the lab came up: what runs is the old one. "
                  "`halab lesson reset` brings the lab up from the changed file."}


def _lab_of(lesson: model.Lesson, mine: progress.Progress) -> LiveLabView:
    preflight.require_root()
    return LiveLabView(_lab_file(lesson, mine))


def _lab_file(lesson: model.Lesson, mine: progress.Progress) -> Path:
    """The lesson's lab, or the student's own variant of it."""
    assert lesson.lab is not None  # a lesson without a lab has no check that needs one (model)
    return Path(mine.lab_file) if mine.lab_file and mine.lesson == lesson.number else lesson.lab


def _variant(lesson: model.Lesson, student: str | None) -> str | None:
    """Write the student's variant of the lesson's lab next to their progress; its path (None: no
    student, or a lab with nothing to vary, which is then everyone's). A troubleshooting lesson's
    lab always has its mistake: without a student, the class's."""
    if lesson.misconfigure and student is None:
        student = CLASS
    if student is None or lesson.lab is None:
        return None
    text = variant.make(lesson.lab, student, lesson.number, lesson.misconfigure)
    if text is None:
        console.print(f"(lesson {lesson.number}'s lab is the same for every student)")
        return None
    target = variant.path(progress.path().parent, student, lesson.number)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, text)
    target.chmod(0o644)
    give_to_sudo_user(target.parent.parent)
    return str(target)


def _bring_up(lab_file: Path) -> None:
    preflight.require_root()
    if session.up_detached(["-f", str(lab_file)]) != 0:
        raise HalabError("The lesson's lab did not come up.", "See the message above.")


def _current(mine: progress.Progress) -> model.Lesson:
    if mine.lesson is None:
        raise HalabError("No lesson is under way.", "`halab lesson list`, then `halab lesson start N`.")
    return model.find(mine.lesson)


def _first_open(lesson: model.Lesson, mine: progress.Progress, predicting: bool = False) -> model.Stage:
    """The first stage not passed (of those that want a prediction, for `predict`)."""
    stages = [s for s in lesson.stages if not predicting or any(c.kind == "predict" for c in s.checks)]
    if not stages:
        raise HalabError(f"Lesson {lesson.number} asks for no prediction.", "`halab lesson check` checks its stages.")
    return next((s for s in stages if f"{lesson.number}/{s.name}" not in mine.passed), stages[-1])


def _next(lesson: model.Lesson, mine: progress.Progress, lang: str) -> str:
    left = [s for s in lesson.stages if f"{lesson.number}/{s.name}" not in mine.passed]
    if not left:
        return {"ko": "이 수업의 모든 단계를 통과했습니다.", "en": "You passed every stage of this lesson."}[lang]
    nxt = left[0]
    return {"ko": f"다음 단계: {nxt.name} — {nxt.title(lang)} (`halab lesson check`)",
            "en": f"Next stage: {nxt.name} — {nxt.title(lang)} (`halab lesson check`)"}[lang]
