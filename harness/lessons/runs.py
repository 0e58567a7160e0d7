"""The student's own runs, for a lesson's `result` checks: the newest run of a scenario (with some
options) in the runs directory, as `halab run` and `halab compare` wrote it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.about import SCHEMA_VERSION
from harness.errors import HalabError
from harness.ninescli import read_json

#: Where `halab run` and `halab compare` put a run's file, below the runs directory (the runs
#: `halab compare` made count as runs of their scenarios).
PATTERNS = ("*/result.json", "*/run-*/result.json", "*-compare/compare.json", "*-compare/*/result.json")
#: At most this many files are opened, newest first, looking for a match.
MAX_READ = 200


@dataclass(frozen=True)
class Found:
    file: Path
    data: dict


def scenario_and_options(data: dict) -> tuple[str, dict]:
    """A result.json names its scenario and options; compare.json is the scenario "compare", its
    options its agent, its balancer and its plan."""
    if "figures" in data and "plan" in data:
        return "compare", {"agent": data.get("agent"), "lb": data.get("lb"), **data["plan"]}
    return str(data.get("scenario")), data.get("options") or {}


def newest(runs_dir: Path, scenario: str, options: dict[str, Any]) -> Found | None:
    """The newest run of `scenario` whose options include `options`; files of another schema
    version (another halab) are passed over."""
    if not runs_dir.is_dir():
        return None
    dated = []
    for file in {f for pattern in PATTERNS for f in runs_dir.glob(pattern)}:
        try:
            dated.append((file.stat().st_mtime, file))
        except OSError:
            continue  # gone since the glob
    for _mtime, file in sorted(dated, reverse=True)[:MAX_READ]:
        try:
            data = read_json(file)
        except HalabError:
            continue  # cut short or not a result: not a run to grade
        if data.get("schema_version") != SCHEMA_VERSION:
            continue
        name, opts = scenario_and_options(data)
        if name == scenario and all(opts.get(k) == v for k, v in options.items()):
            return Found(file, data)
    return None


def field(data: dict, dotted: str) -> object:
    """The value at a dotted key ("sync.writes.p50"), or None when a part is missing."""
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)  # type: ignore[assignment]
    return data
