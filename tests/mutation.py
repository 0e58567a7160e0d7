"""Mutation score of the pure modules: how many small changes to the code their own unit tests catch.

    make mutation                      # every module below, the table, exit 1 if one misses its target
    .venv/bin/python -m tests.mutation [--show] [ha/vrrp/fsm.py ...]

Each module is mutated by mutmut (a flipped comparison, a constant ±1, a swapped operator, an
argument or a value replaced by None, ...) and each mutant is run against that module's own unit
tests only, so a module's score says what its tests catch, not what some other test happens to
touch. A mutant no test notices "survives". Equivalent mutants (no behaviour can tell them apart
from the original) count as caught only when README.md's "Equivalent mutants" table lists them,
with the line they change and why; a listed mutant whose line no longer matches is stale and does
not count. Work directories are kept under .mutation/ for `--show` and `mutmut show`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
COPIED = ("ha", "controller", "harness", "topologies", "tests", "labs", "lessons", "README.md")
LOGIC, CONFIG = 90, 80  # the targets: state machines, codecs, detectors, selection; configuration, measurement


@dataclass(frozen=True)
class Target:
    tests: tuple[str, ...]
    target: int


def _own(*names: str) -> tuple[str, ...]:
    return tuple(f"tests/unit/{name}.py" for name in names)


MODULES: dict[str, Target] = {
    "ha/vrrp/fsm.py": Target(_own("test_vrrp_fsm", "test_assist"), LOGIC),
    "ha/vrrp/packet.py": Target(_own("test_vrrp_packet"), LOGIC),
    "ha/heartbeat/detector.py": Target(_own("test_heartbeat_logic"), LOGIC),
    "ha/heartbeat/fsm.py": Target(_own("test_heartbeat_logic", "test_syncrep"), LOGIC),
    "ha/heartbeat/packet.py": Target(_own("test_heartbeat_logic"), LOGIC),
    "ha/heartbeat/syncrep.py": Target(_own("test_syncrep"), LOGIC),
    "controller/selection.py": Target(_own("test_lb_selection"), LOGIC),
    "controller/pool.py": Target(_own("test_lb_pool", "test_lb_health"), LOGIC),
    "controller/conntrack.py": Target(_own("test_conntrack"), CONFIG),
    "ha/vrrp/config.py": Target(_own("test_vrrp_config"), CONFIG),
    "ha/heartbeat/config.py": Target(_own("test_heartbeat_config", "test_heartbeat_postgresql"), CONFIG),
    "controller/lb_config.py": Target(_own("test_lb_config"), CONFIG),
    "ha/configcheck.py": Target(_own("test_configcheck", "test_vrrp_config", "test_heartbeat_config", "test_lb_config"),
                                CONFIG),
    "harness/measure.py": Target(_own("test_measure"), CONFIG),
    "harness/writecheck.py": Target(_own("test_writecheck"), CONFIG),
    "harness/invariants.py": Target(_own("test_invariants"), CONFIG),
    "harness/nines.py": Target(_own("test_nines"), CONFIG),
    "harness/probe/capacity.py": Target(_own("test_capacity"), LOGIC),
    "harness/loadcurve.py": Target(_own("test_loadcurve"), CONFIG),
    "harness/contentsync/analysis.py": Target(_own("test_contentsync"), CONFIG),
    "harness/compare/figures.py": Target(_own("test_compare"), CONFIG),
    "harness/compare/table.py": Target(_own("test_compare"), CONFIG),
    "harness/web/feed.py": Target(_own("test_web_feed"), CONFIG),
    "harness/web/topology.py": Target(_own("test_web_topology"), CONFIG),
    "harness/explain.py": Target(_own("test_explain"), CONFIG),
    "harness/lessons/checks.py": Target(_own("test_lessons"), CONFIG),
    "harness/lessons/model.py": Target(_own("test_lessons"), CONFIG),
    "harness/lessons/grade.py": Target(_own("test_lessons"), CONFIG),
    "harness/lessons/variant.py": Target(_own("test_lessons"), CONFIG),
    "harness/lessons/runs.py": Target(_own("test_lessons"), CONFIG),
    "harness/diagnose.py": Target(_own("test_diagnose"), CONFIG),
}


@dataclass
class Score:
    module: str
    statuses: dict[str, str]  # mutant name -> mutmut's status
    equivalent: set[str]      # survivors README lists, with their line, as equivalent
    stale: dict[str, str]     # README entries of this module that no longer apply -> why

    @property
    def caught(self) -> int:
        return sum(_caught(s) for s in self.statuses.values())

    @property
    def survivors(self) -> list[str]:
        return sorted(n for n, s in self.statuses.items() if not _caught(s) and n not in self.equivalent)

    @property
    def percent(self) -> float:
        return 100.0 * (self.caught + len(self.equivalent)) / len(self.statuses)


def _caught(status: str) -> bool:
    """Killed by a failing test, or stopped by mutmut's time limit (a mutant that loops or hangs)."""
    return status in ("killed", "timeout")


def listed_equivalents(readme: str) -> dict[str, str]:
    """README rows `| `mutant` | `changed line` | why |` -> {mutant: changed line}."""
    rows = re.findall(r"^\| `([\w.ǁ]+__mutmut_\d+)` \| `(.*?)` \|", readme, flags=re.MULTILINE)
    return dict(rows)


def _work_dir(module: str) -> Path:
    return WORK / module.removesuffix(".py").replace("/", ".")


def _prepare(module: str, target: Target) -> Path:
    """A fresh copy of the checkout whose pyproject.toml tells mutmut what to mutate and what to run."""
    work = _work_dir(module)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        src = ROOT / name
        (shutil.copytree(src, work / name, ignore=ignore) if src.is_dir() else shutil.copy2(src, work / name))
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject += (
        "\n[tool.mutmut]\n"
        f"source_paths = [{json.dumps(module)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(target.tests))}\n"
        f"also_copy = {json.dumps([*COPIED, 'pyproject.toml'])}\n"
    )
    (work / "pyproject.toml").write_text(pyproject)
    return work


def _mutmut(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit(f"mutation: {mutmut} is missing; install it with `{sys.executable} -m pip install -e "
                         "'.[mutation]'` (or run `make mutation`)")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([str(mutmut), *args], cwd=work, env=env, capture_output=True, text=True, check=False)


def _changed_line(work: Path, mutant: str) -> str:
    """The line a mutant adds (its `+` line in mutmut's diff), stripped."""
    diff = _mutmut(work, "show", mutant).stdout
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return added[0] if added else ""


def score(module: str, target: Target, equivalents: dict[str, str]) -> Score:
    work = _prepare(module, target)
    run = _mutmut(work, "run")
    (work / "mutmut-run.log").write_text(run.stdout + run.stderr)
    meta = work / "mutants" / f"{module}.meta"
    if run.returncode != 0 or not meta.exists():
        raise SystemExit(f"mutation: mutmut failed on {module} (exit {run.returncode}); see {work}/mutmut-run.log")
    from mutmut.stats import status_by_exit_code  # with the .meta layout: mutmut 3.8's own, hence the pin

    codes = json.loads(meta.read_text())["exit_code_by_key"]
    if not codes:
        raise SystemExit(f"mutation: mutmut made no mutant of {module}; see {work}/mutmut-run.log")
    statuses = {name: status_by_exit_code[code] for name, code in codes.items()}
    prefix = module.removesuffix(".py").replace("/", ".") + "."
    equivalent, stale = set(), {}
    for name, line in equivalents.items():
        if not name.startswith(prefix):
            continue
        if name not in statuses:
            stale[name] = "no such mutant any more"
        elif _caught(statuses[name]):
            stale[name] = "a test catches it now"
        elif _changed_line(work, name) != line:
            stale[name] = "its changed line is another now"
        else:
            equivalent.add(name)
    return Score(module, statuses, equivalent, stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all of MODULES)")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"mutation: unknown module {unknown[0]}; choose from: {', '.join(MODULES)}", file=sys.stderr)
        return 2
    equivalents = listed_equivalents((ROOT / "README.md").read_text())
    print(f"Mutation score, {date.today().isoformat()} (mutmut, each module against its own unit tests)\n")
    print(f"| {'module':<26} | tried | caught | equivalent |   score | target |")
    print(f"|{'-' * 28}|-------|--------|------------|---------|--------|")
    missed = []
    for module in args.modules or MODULES:
        target = MODULES[module]
        result = score(module, target, equivalents)
        mark = "" if result.percent >= target.target else "  ← below target"
        print(
            f"| {module:<26} | {len(result.statuses):>5} | {result.caught:>6} | {len(result.equivalent):>10} "
            f"| {result.percent:>5.1f} % | {target.target:>4} % |{mark}",
            flush=True,
        )
        if mark:
            missed.append(module)
        for name, why in result.stale.items():
            print(f"  stale README entry, not counted ({why}): {name}", file=sys.stderr)
        odd = {n: s for n, s in result.statuses.items() if s not in ("killed", "timeout", "survived")}
        for name, status in odd.items():
            print(f"  {status}, counted as a survivor: {name}", file=sys.stderr)
        if args.show:
            for name in result.survivors:
                print(f"\n{name} ({result.statuses[name]}):\n{_mutmut(_work_dir(module), 'show', name).stdout}")
    if missed:
        print(f"\nbelow target: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
