"""A student's progress: the lesson under way, the stages passed, the predictions given, the last
attempt at each stage (what `halab lesson grade` reports). One small
JSON file of the student's own ($HALAB_LESSON_PROGRESS, default ~/.halab/lessons.json in the home of
the user who typed sudo, so that `halab lesson predict` and `sudo halab lesson check` share it),
written whole or not at all, and theirs."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ha.statusfile import write_atomically
from harness.about import give_to_sudo_user


def path() -> Path:
    if "HALAB_LESSON_PROGRESS" in os.environ:
        return Path(os.environ["HALAB_LESSON_PROGRESS"])
    home = Path.home()
    if os.environ.get("SUDO_USER"):
        with contextlib.suppress(KeyError):
            home = Path(pwd.getpwnam(os.environ["SUDO_USER"]).pw_dir)
    return home / ".halab" / "lessons.json"


@dataclass
class Progress:
    lesson: int | None = None
    passed: list[str] = field(default_factory=list)              # "2/master"
    predictions: dict[str, float] = field(default_factory=dict)  # "2/predict" -> seconds
    attempts: dict[str, dict] = field(default_factory=dict)      # "2/master" -> the last check of it
    student: str | None = None     # the id the lesson was started with (--student)
    lab_file: str | None = None    # the student's own variant of the lesson's lab, if any

    def save(self) -> None:
        target = path()
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, json.dumps(asdict(self), indent=1))
        give_to_sudo_user(target.parent)

    def mark(self, key: str) -> None:
        if key not in self.passed:
            self.passed.append(key)

    def attempt(self, key: str, passed: bool, value: float | None, detail: str) -> None:
        """A check of a stage: passed or not, when, the value given, what was seen. A stage once
        passed stays passed, with the check that passed it (a later try that fails is practice)."""
        if key in self.passed and not passed:
            return
        self.attempts[key] = {"passed": passed, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "value": value,
                              "detail": detail[:500]}
        if passed:
            self.mark(key)


def load() -> Progress:
    """The saved progress; none yet is a fresh start, and so is a broken file (with a word on stderr)."""
    try:
        text = path().read_text()
    except FileNotFoundError:
        return Progress()
    except OSError as exc:
        print(f"halab: {path()} cannot be read ({exc.strerror}); starting afresh.", file=sys.stderr)
        return Progress()
    try:
        raw = json.loads(text)
        return Progress(raw.get("lesson"), list(raw.get("passed", [])), dict(raw.get("predictions", {})),
                        {k: dict(v) for k, v in raw.get("attempts", {}).items()}, raw.get("student"),
                        raw.get("lab_file"))
    except (ValueError, AttributeError, TypeError):
        print(f"halab: {path()} is not a progress file halab wrote; starting afresh (it will be replaced).",
              file=sys.stderr)
        return Progress()
