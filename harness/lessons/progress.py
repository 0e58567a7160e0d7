"""A student's progress: the lesson under way, the stages passed, the predictions and values given.
One small JSON file of the student's own ($HALAB_LESSON_PROGRESS, default ~/.halab/lessons.json),
written whole or not at all."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ha.statusfile import write_atomically


def path() -> Path:
    return Path(os.environ.get("HALAB_LESSON_PROGRESS", "~/.halab/lessons.json")).expanduser()


@dataclass
class Progress:
    lesson: int | None = None
    passed: list[str] = field(default_factory=list)              # "2/master"
    predictions: dict[str, float] = field(default_factory=dict)  # "2/predict" -> seconds

    def save(self) -> None:
        target = path()
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, json.dumps(asdict(self), indent=1))

    def mark(self, key: str) -> None:
        if key not in self.passed:
            self.passed.append(key)


def load() -> Progress:
    """The saved progress; a missing or unreadable file is a fresh start."""
    try:
        raw = json.loads(path().read_text())
        return Progress(raw.get("lesson"), list(raw.get("passed", [])), dict(raw.get("predictions", {})))
    except (OSError, ValueError, AttributeError, TypeError):
        return Progress()
