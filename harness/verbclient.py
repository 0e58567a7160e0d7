"""A verb typed in a shell (`halab fault|vip|status|probe|capture|diagnose`): checked here, then
sent to the running lab, which answers over its control socket. It imports only the grammar and
the socket's client, not the lab: a teacher's `halab status`, and every wait of the test suite,
pays for a Python start and a round trip, not for importing Mininet."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import control, preflight
from harness.errors import HalabError
from harness.labinfo import NO_LAB, running
from harness.verbgrammar import VerbError, VerbHelp, parser


def main(argv: list[str]) -> int:
    """The verb's answer on stdout (a refusal on stderr); its exit code (2: refused here or by the lab)."""
    try:
        parser().parse_args(argv)
    except VerbHelp as exc:
        print(exc)
        return 0
    except VerbError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        preflight.require_root()
        found = running()
        if found is None:
            raise NO_LAB
        rc, out = control.request(Path(found["socket"]), argv)
    except HalabError as exc:
        print(f"halab: {exc.problem}\nFix: {exc.fix}", file=sys.stderr)
        return 2
    print(out, file=sys.stdout if rc == 0 else sys.stderr)
    return rc
