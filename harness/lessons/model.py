"""A lesson as its folder describes it: `lesson.toml` (the lab, the stages, their checks, every
word in Korean and English) beside `ko.md` and `en.md` (the text a student reads).

    number = 2
    title = { ko = "...", en = "..." }
    lab = "active-standby"                 # a built-in lab, or a lab file in the folder; none: no lab
    [[stage]]
    name = "master"
    title = { ko = "...", en = "..." }
    hint = { ko = "...", en = "..." }
    answer = { ko = "...", en = "..." }    # what to type, for a student who is stuck
    [[stage.check]]
    kind = "state"                         # state | spread | measure | numeric | predict | result
    vip_holder = "server1"
    pass = { ko = "...", en = "..." }
    fail = { ko = "...", en = "..." }

Every refusal is one HalabError naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ha.configcheck import ConfigError, get, no_unknown, read_toml, table_array
from harness.errors import HalabError
from harness.labfile import builtin
from harness.lang import LANGS
from topologies import TOPOLOGIES

LESSONS_DIR = Path(__file__).resolve().parent.parent.parent / "lessons"
KINDS = ("state", "spread", "measure", "numeric", "predict", "result")
#: The kinds that look at the lab that is up (the others read numbers and the student's runs).
LAB_KINDS = ("state", "spread", "measure", "predict")
STATISTICS = ("median", "p95", "max")
#: What a measure check holds to its budget: the client's longest silence, or (a service spread
#: over several servers, where one dead server costs only its share) when its last request failed.
FIGURES = ("outage", "last_failure")
#: Each kind's own keys (besides kind, pass, fail).
KIND_KEYS = {"state": {"vip_holder", "agent", "state", "running"},
             "measure": {"fault", "runs", "quick_runs", "budget_s", "statistic", "figure", "recovers", "watch_s",
                         "moves_to", "vip_moves_to", "reason", "whole"},
             "numeric": {"expect", "tolerance", "unit"},
             "predict": {"fault", "runs", "quick_runs", "slack_s", "watch_s"},
             "spread": {"servers", "max_share", "seconds"},
             "result": {"scenario", "options", "field", "scale", "unit", "tolerance", "at_least", "at_most"}}


@dataclass(frozen=True)
class Words:
    """One text in both languages."""

    ko: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.ko if lang == "ko" else self.en


@dataclass(frozen=True)
class Check:
    kind: str
    passed: Words
    failed: Words
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    name: str
    title: Words
    hint: Words
    answer: Words
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Lesson:
    number: int
    slug: str
    folder: Path
    title: Words
    lab: Path | None  # None: the lesson's checks read numbers and the student's runs, not a lab
    stages: tuple[Stage, ...]

    def text(self, lang: str) -> Path:
        return self.folder / f"{lang}.md"

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise HalabError(f"Lesson {self.number} has no stage {name!r}.",
                         f"Its stages: {', '.join(s.name for s in self.stages)}.")


def load(folder: Path) -> Lesson:
    path = folder / "lesson.toml"
    try:
        raw = read_toml(path)
        return _lesson(raw, folder, str(path))
    except ConfigError as exc:
        raise HalabError(f"{exc}.", "Fix the lesson file; lessons/README.md describes it.") from None


def all_lessons(root: Path = LESSONS_DIR) -> list[Lesson]:
    lessons = [load(d) for d in sorted(root.iterdir()) if (d / "lesson.toml").exists()]
    numbers = [lesson.number for lesson in lessons]
    if len(set(numbers)) != len(numbers):
        raise HalabError(f"{root}: two lessons share a number ({numbers}).", "Give each lesson its own number.")
    return lessons


def find(number: int, root: Path = LESSONS_DIR) -> Lesson:
    for lesson in all_lessons(root):
        if lesson.number == number:
            return lesson
    raise HalabError(f"There is no lesson {number}.", "`halab lesson list` shows them.")


def _lesson(raw: dict, folder: Path, where: str) -> Lesson:
    no_unknown(raw, {"number", "title", "lab", "stage"}, where)
    number = get(raw, "number", int, where, check=lambda n: 1 <= n <= 99, allowed="a number from 1 to 99")
    lab_name = get(raw, "lab", str, where, "", allowed=f"a built-in lab ({', '.join(TOPOLOGIES)}) or a file here")
    lab = None
    if lab_name:
        lab = builtin(lab_name) if lab_name in TOPOLOGIES else folder / lab_name
        if not lab.is_file():
            raise ConfigError(f"{where}: lab = {lab_name!r} is not allowed; expected a built-in lab "
                              f"({', '.join(TOPOLOGIES)}) or a lab file in {folder}")
    parsed = table_array(raw, "stage", where, _stage)
    needing = [s.name for s in parsed if any(c.kind in LAB_KINDS for c in s.checks)]
    if lab is None and needing:
        raise ConfigError(f"{where}: stage {needing[0]!r} checks a lab, and the lesson names none; add lab = ...")
    for lang in LANGS:
        if not (folder / f"{lang}.md").is_file():
            raise ConfigError(f"{where}: the lesson's text {folder / f'{lang}.md'} is missing")
    return Lesson(number, folder.name, folder, _words(raw, "title", where), lab, parsed)


def _stage(t: object, where: str) -> Stage:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: must be a table")
    no_unknown(t, {"name", "title", "hint", "answer", "check"}, where)
    name = get(t, "name", str, where, check=lambda s: s.isidentifier(), allowed="a short name (letters, _)")
    where = f"{where.split(':')[0]}: stage {name!r}"
    checks = t.get("check")
    if not isinstance(checks, list) or not checks:
        raise ConfigError(f"{where}: needs at least one [[stage.check]] table")
    return Stage(name, _words(t, "title", where), _words(t, "hint", where), _words(t, "answer", where),
                 tuple(_check(c, f"{where} check[{i}]") for i, c in enumerate(checks)))


def _check(t: object, where: str) -> Check:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: must be a table")
    kind = get(t, "kind", str, where, check=lambda k: k in KINDS, allowed=" | ".join(KINDS))
    no_unknown(t, {"kind", "pass", "fail"} | KIND_KEYS[kind], where)
    params = {k: v for k, v in t.items() if k in KIND_KEYS[kind]}
    if kind in ("measure", "predict"):
        get(t, "fault", str, where, allowed="a fault as typed at the prompt, e.g. \"link-cut server1\"",
            check=str.strip)
        for key in ("runs", "quick_runs"):
            get(t, key, int, where, 1, check=lambda n: 1 <= n <= 20, allowed="1 to 20")
    if kind in ("measure", "predict"):
        get(t, "watch_s", (int, float), where, 8.0, check=lambda v: 0 < v <= 60, allowed="seconds, 0 to 60")
    if kind == "measure":
        get(t, "statistic", str, where, "median", check=lambda s: s in STATISTICS, allowed=" | ".join(STATISTICS))
        get(t, "moves_to", str, where, "", allowed="a host")
        get(t, "vip_moves_to", str, where, "", allowed="a host")
        get(t, "reason", str, where, "", allowed="words an agent's reason must hold", check=str.strip)
        get(t, "whole", bool, where, False, allowed="true (watch all of watch_s) or false")
        get(t, "figure", str, where, "outage", check=lambda f: f in FIGURES, allowed=" | ".join(FIGURES))
        if get(t, "recovers", bool, where, True):
            get(t, "budget_s", (int, float), where, check=lambda v: v > 0, allowed="seconds, more than 0")
    if kind == "numeric":
        get(t, "expect", (int, float), where, allowed="a number")
        get(t, "tolerance", (int, float), where, check=lambda v: v >= 0, allowed="0 or more")
    if kind == "predict":
        get(t, "slack_s", (int, float), where, 0.0, check=lambda v: v >= 0, allowed="seconds, 0 or more")
    if kind == "state":
        _state_check(t, where)
    if kind == "spread":
        get(t, "servers", int, where, check=lambda n: 1 <= n <= 64, allowed="how many servers answer, 1 to 64")
        get(t, "max_share", (int, float), where, 1.0, check=lambda v: 0 < v <= 1, allowed="a share, above 0 to 1")
        get(t, "seconds", (int, float), where, 3.0, check=lambda v: 0 < v <= 30, allowed="seconds, 0 to 30")
    if kind == "result":
        _result_check(t, where)
    return Check(kind, _words(t, "pass", where), _words(t, "fail", where), params)


def _state_check(t: dict, where: str) -> None:
    """vip_holder alone, or agent with one of state and running."""
    if "vip_holder" in t:
        get(t, "vip_holder", str, where, allowed="a host", check=str.strip)
        if {"agent", "state", "running"} & set(t):
            raise ConfigError(f"{where}: vip_holder is a check of its own; put agent in another [[stage.check]]")
        return
    get(t, "agent", str, where, allowed="HOST/PROGRAM, e.g. \"server2/halab-vrrp\"", check=lambda a: "/" in a)
    if ("state" in t) == ("running" in t):
        raise ConfigError(f"{where}: an agent check needs one of state and running")
    get(t, "state", str, where, "", allowed="a word of the agent's state, e.g. \"BACKUP\"")
    get(t, "running", bool, where, True)


def _result_check(t: dict, where: str) -> None:
    """A figure of the student's newest run of a scenario: within bounds, or what the student read
    from it (`tolerance`: the student gives it with --value), or only that the run exists."""
    get(t, "scenario", str, where, allowed="a scenario of `halab run`, or \"compare\"", check=str.strip)
    options = get(t, "options", dict, where, {}, allowed="a table of the run's options")
    for key, value in options.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{where}: options.{key} = {value!r} is not allowed; expected a text, a number or "
                              "true/false")
    keyed = {"scale", "unit", "tolerance", "at_least", "at_most"} & set(t)
    get(t, "field", str, where, "", allowed="a dotted key of the result, e.g. \"sync.writes.p50\"", check=str.strip)
    if keyed and "field" not in t:
        raise ConfigError(f"{where}: {', '.join(sorted(keyed))} need a field")
    get(t, "scale", (int, float), where, 1.0, check=lambda v: v > 0, allowed="a factor above 0 (1000: s to ms)")
    get(t, "unit", str, where, "", allowed="a unit")
    get(t, "tolerance", (int, float), where, 0.0, check=lambda v: v >= 0, allowed="0 or more")
    for key in ("at_least", "at_most"):
        get(t, key, (int, float), where, 0.0, allowed="a number")


def _words(t: dict, key: str, where: str) -> Words:
    value = get(t, key, dict, where, allowed="a table with ko and en")
    no_unknown(value, set(LANGS), f"{where} {key}")
    texts = [get(value, lang, str, f"{where} {key}", check=str.strip, allowed="a text") for lang in LANGS]
    return Words(*texts)
