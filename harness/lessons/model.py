"""A lesson as its folder describes it: `lesson.toml` (the lab, the stages, their checks, every
word in Korean and English) beside `ko.md` and `en.md` (the text a student reads).

    number = 2
    title = { ko = "...", en = "..." }
    lab = "active-standby"                 # a built-in lab, or a lab file in the folder; none: no lab
    misconfigure = ["vrid", ...]           # a troubleshooting lesson: its lab gets one (lessons.variant)
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
from harness import labfile
from harness.errors import HalabError
from harness.lang import LANGS
from harness.lessons import variant
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
KIND_KEYS = {"state": {"vip_holder", "agent", "state", "running", "config", "key", "equals", "same_as", "at_least",
                       "at_most"},
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
    misconfigure: tuple[str, ...] = ()  # a troubleshooting lesson: the mistakes one of which its lab is given

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
    no_unknown(raw, {"number", "title", "lab", "stage", "misconfigure"}, where)
    number = get(raw, "number", int, where, check=lambda n: 1 <= n <= 99, allowed="a number from 1 to 99")
    lab_name = get(raw, "lab", str, where, "", allowed=f"a built-in lab ({', '.join(TOPOLOGIES)}) or a file here")
    lab = None
    if lab_name:
        lab = labfile.builtin(lab_name) if lab_name in TOPOLOGIES else folder / lab_name
        if not lab.is_file():
            raise ConfigError(f"{where}: lab = {lab_name!r} is not allowed; expected a built-in lab "
                              f"({', '.join(TOPOLOGIES)}) or a lab file in {folder}")
    known = ", ".join(variant.MISTAKES)
    mistakes = tuple(get(raw, "misconfigure", list, where, [], allowed=f"a list of mistakes ({known})"))
    for mistake in mistakes:
        if not isinstance(mistake, str) or mistake not in variant.MISTAKES:
            raise ConfigError(f"{where}: misconfigure entry {mistake!r} is not allowed; expected one of {known}")
    if mistakes and (lab is None or variant.make(lab, "-", number, mistakes) is None):
        raise ConfigError(f"{where}: misconfigure needs a lab with a master's and a backup's VRRP instance written "
                          "in it, to give the backup the mistake")
    parsed = table_array(raw, "stage", where, _stage)
    if lab is not None:
        _check_configs(parsed, lab, where)
    needing = [s.name for s in parsed if any(c.kind in LAB_KINDS for c in s.checks)]
    if lab is None and needing:
        raise ConfigError(f"{where}: stage {needing[0]!r} checks a lab, and the lesson names none; add lab = ...")
    for lang in LANGS:
        if not (folder / f"{lang}.md").is_file():
            raise ConfigError(f"{where}: the lesson's text {folder / f'{lang}.md'} is missing")
    return Lesson(number, folder.name, folder, _words(raw, "title", where), lab, parsed, mistakes)


def _check_configs(stages: tuple[Stage, ...], lab: Path, where: str) -> None:
    """Each config check names agents of the lesson's lab and a key their configuration has: a typo
    would fail every student's check with "not set"."""
    checked = [(stage, c) for stage in stages for c in stage.checks if "config" in c.params]
    tables = labfile.agent_tables(labfile.load(lab)) if checked else {}
    for stage, c in checked:
        here = f"{where}: stage {stage.name!r}"
        for agent in filter(None, (c.params["config"], c.params.get("same_as"))):
            if agent not in tables:
                raise ConfigError(f"{here}: {agent!r} is not an agent of {lab.name}; expected one of "
                                  f"{', '.join(tables)}")
            if labfile.lookup(tables, agent, c.params["key"]) is None:
                raise ConfigError(f"{here}: key {c.params['key']!r} is not in {agent}'s configuration in {lab.name}")


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
    """The check's keys, each validated, into its params with the defaults filled in (a key whose
    presence matters, like moves_to or tolerance, only when given)."""
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: must be a table")
    kind = get(t, "kind", str, where, check=lambda k: k in KINDS, allowed=" | ".join(KINDS))
    no_unknown(t, {"kind", "pass", "fail"} | KIND_KEYS[kind], where)
    params: dict[str, Any] = {}

    def take(key: str, kinds: type | tuple, default: object = ..., **rules: Any) -> Any:
        value = get(t, key, kinds, where, default, **rules)
        if value is not None:
            params[key] = value
        return value

    if kind in ("measure", "predict"):
        take("fault", str, allowed="a fault as typed at the prompt, e.g. \"link-cut server1\"", check=str.strip)
        for key in ("runs", "quick_runs"):
            take(key, int, 1, check=lambda n: 1 <= n <= 20, allowed="1 to 20")
        take("watch_s", (int, float), 8.0, check=lambda v: 0 < v <= 60, allowed="seconds, 0 to 60")
    if kind == "measure":
        take("statistic", str, "median", check=lambda s: s in STATISTICS, allowed=" | ".join(STATISTICS))
        for key in ("moves_to", "vip_moves_to"):
            take(key, str, None, allowed="a host", check=str.strip)
        take("reason", str, None, allowed="words an agent's reason must hold", check=str.strip)
        take("whole", bool, False, allowed="true (watch all of watch_s) or false")
        take("figure", str, "outage", check=lambda f: f in FIGURES, allowed=" | ".join(FIGURES))
        if take("recovers", bool, True):
            take("budget_s", (int, float), check=lambda v: v > 0, allowed="seconds, more than 0")
    if kind == "numeric":
        take("expect", (int, float), allowed="a number")
        take("tolerance", (int, float), check=lambda v: v >= 0, allowed="0 or more")
        take("unit", str, None, allowed="a unit")
    if kind == "predict":
        take("slack_s", (int, float), 0.0, check=lambda v: v >= 0, allowed="seconds, 0 or more")
    if kind == "state":
        _state_check(t, where, take)
    if kind == "spread":
        take("servers", int, check=lambda n: 1 <= n <= 64, allowed="how many servers answer, 1 to 64")
        take("max_share", (int, float), 1.0, check=lambda v: 0 < v <= 1, allowed="a share, above 0 to 1")
        take("seconds", (int, float), 3.0, check=lambda v: 0 < v <= 30, allowed="seconds, 0 to 30")
    if kind == "result":
        _result_check(t, where, take)
    return Check(kind, _words(t, "pass", where), _words(t, "fail", where), params)


def _state_check(t: dict, where: str, take) -> None:
    """vip_holder alone, agent with one of state and running, or config and key with what the value
    must be."""
    if "config" in t:
        _config_check(t, where, take)
        return
    if {"key", "equals", "same_as", "at_least", "at_most"} & set(t):
        raise ConfigError(f"{where}: key, equals, same_as, at_least and at_most belong to a config check; add "
                          "config = \"HOST/PROGRAM\"")
    if "vip_holder" in t:
        take("vip_holder", str, allowed="a host", check=str.strip)
        if {"agent", "state", "running"} & set(t):
            raise ConfigError(f"{where}: vip_holder is a check of its own; put agent in another [[stage.check]]")
        return
    take("agent", str, allowed="HOST/PROGRAM, e.g. \"server2/halab-vrrp\"", check=lambda a: "/" in a)
    if ("state" in t) == ("running" in t):
        raise ConfigError(f"{where}: an agent check needs one of state and running")
    take("state", str, None, allowed="a word of the agent's state, e.g. \"BACKUP\"")
    take("running", bool, None)


def _config_check(t: dict, where: str, take) -> None:
    """A key of an agent's configuration as the student wrote it in the lab file (defaults filled in):
    equal to a value, the same as another agent's, or within bounds."""
    agent = "HOST/PROGRAM, e.g. \"server2/halab-vrrp\""
    take("config", str, allowed=agent, check=lambda a: "/" in a)
    take("key", str, allowed="a dotted key, list items by number, e.g. \"vrrp_instance.0.advert_int\"",
         check=lambda k: all(part.isidentifier() or (part.isdecimal() and part.isascii()) for part in k.split(".")))
    if {"agent", "vip_holder", "state", "running"} & set(t):
        raise ConfigError(f"{where}: a config check is a check of its own; put agent or vip_holder in another "
                          "[[stage.check]]")
    take("equals", (str, int, float, bool, list), None, allowed="a value as the configuration holds it")
    take("same_as", str, None, allowed=agent, check=lambda a: "/" in a)
    for bound in ("at_least", "at_most"):
        take(bound, (int, float), None, allowed="a number")
    given = [k for k in ("equals", "same_as") if k in t] + (["at_least/at_most"] if {"at_least", "at_most"} & set(t)
                                                          else [])
    if len(given) != 1:
        raise ConfigError(f"{where}: a config check needs one of equals, same_as, or at_least/at_most"
                          + (f" (it has {', '.join(given)})" if given else ""))


def _result_check(t: dict, where: str, take) -> None:
    """A figure of the student's newest run of a scenario: within bounds, or what the student read
    from it (`tolerance`: the student gives it with --value), or only that the run exists."""
    take("scenario", str, allowed="a scenario of `halab run`, or \"compare\"", check=str.strip)
    options = take("options", dict, {}, allowed="a table of the run's options")
    for key, value in options.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"{where}: options.{key} = {value!r} is not allowed; expected a text, a number or "
                              "true/false")
    keyed = {"scale", "unit", "tolerance", "at_least", "at_most"} & set(t)
    take("field", str, None, allowed="a dotted key of the result, e.g. \"sync.writes.p50\"", check=str.strip)
    if keyed and "field" not in t:
        raise ConfigError(f"{where}: {', '.join(sorted(keyed))} need a field")
    take("scale", (int, float), 1.0, check=lambda v: v > 0, allowed="a factor above 0 (1000: s to ms)")
    take("unit", str, None, allowed="a unit")
    take("tolerance", (int, float), None, check=lambda v: v >= 0, allowed="0 or more")
    for key in ("at_least", "at_most"):
        take(key, (int, float), None, allowed="a number")


def _words(t: dict, key: str, where: str) -> Words:
    value = get(t, key, dict, where, allowed="a table with ko and en")
    no_unknown(value, set(LANGS), f"{where} {key}")
    texts = [get(value, lang, str, f"{where} {key}", check=str.strip, allowed="a text") for lang in LANGS]
    return Words(*texts)
