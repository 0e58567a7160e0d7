"""The README's `halab` commands are commands halab accepts: a README that drifts from the code fails here.

(tests/lab/test_readme_session.py runs its lab session for real.)
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness import cli, verbgrammar

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = re.compile(r"^ {4}(?:sudo )?(?:\.venv/bin/)?halab (.+?)(?:\s+#.*)?$")


def readme_commands() -> list[list[str]]:
    """Every `halab ...` line of the README's code blocks, but syntax summaries with [optional] parts."""
    found = []
    for line in README.read_text().splitlines():
        m = COMMAND.match(line)
        if m and "[" not in m.group(1):
            found.append(shlex.split(m.group(1)))
    return found


def test_the_readme_shows_halab_commands():
    assert len(readme_commands()) >= 20


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_every_halab_command_in_the_readme_parses(argv):
    if argv[0] in verbgrammar.VERBS:
        verbgrammar.parser().parse_args(argv)
    elif argv[0] == "exec":
        assert "--" in argv and len(argv) > 3  # harness.entry: halab exec HOST -- CMD ...
    else:
        try:
            cli._parser().parse_args(cli.expand(argv))
        except SystemExit as exc:  # --help prints and exits 0; a bad command exits 2
            assert exc.code == 0, f"halab {shlex.join(argv)}"


def test_the_mutation_table_covers_every_module_and_lists_only_their_mutants():
    """README's mutation section: one row per module `make mutation` measures, and equivalent
    mutants only of those modules (a typo there would silently count nothing)."""
    from tests.mutation import MODULES, listed_equivalents

    text = README.read_text()
    rows = set(re.findall(r"^\| (\S+\.py) +\| +\d+ \|", text, flags=re.MULTILINE))
    assert rows == set(MODULES)
    prefixes = tuple(m.removesuffix(".py").replace("/", ".") + "." for m in MODULES)
    listed = listed_equivalents(text)
    assert listed and all(name.startswith(prefixes) for name in listed), listed
