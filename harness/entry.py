"""The `halab` console script: `halab exec` and the verbs a running lab answers (`status`, `fault`,
...) without the cost of importing the rest of halab."""

from __future__ import annotations

import os
import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["exec"]:
        from harness.errors import HalabError
        from harness.labinfo import exec_in

        rest = argv[1:]
        if not rest or rest[0].startswith("-"):
            print("usage: halab exec HOST -- CMD ...", file=sys.stderr)
            return 2
        if os.geteuid() != 0:
            print("halab: halab exec enters the lab's namespaces, which needs root.\nFix: run it with sudo.",
                  file=sys.stderr)
            return 2
        command = rest[2:] if rest[1:2] == ["--"] else rest[1:]
        try:
            return exec_in(rest[0], command)
        except HalabError as exc:
            print(f"halab: {exc.problem}\nFix: {exc.fix}", file=sys.stderr)
            return 2
    from harness.verbgrammar import VERBS

    if argv[:1] and argv[0] in VERBS:
        from harness.verbclient import main as verb

        return verb(argv)
    from harness.cli import main as full

    return full(argv)


if __name__ == "__main__":
    sys.exit(main())
