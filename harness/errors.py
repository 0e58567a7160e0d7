"""One error type for everything a user can fix, carrying the fix with it."""

from __future__ import annotations


class HalabError(Exception):
    """A problem the user can act on: what went wrong, and the command or change that fixes it.

    The CLI prints these as one paragraph and exits non-zero, never as a traceback.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} {fix}")
        self.problem = problem
        self.fix = fix
