"""Shared fixtures: who may run Mininet tests, and how to see what a lab left behind."""

from __future__ import annotations

import os

import pytest

from harness import preflight
from harness.errors import HalabError


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mininet tests need root and OVS. Without them they skip with the reason, unless
    HALAB_REQUIRE_MININET=1 (set by `make test` and CI), where a skip would hide a failure."""
    try:
        preflight.check_all()
        problem = None
    except HalabError as exc:
        problem = str(exc)
    if problem is None:
        return
    wanted = [item for item in items if "mininet" in item.keywords]
    if wanted and os.environ.get("HALAB_REQUIRE_MININET") == "1":
        raise pytest.UsageError(f"HALAB_REQUIRE_MININET=1 but the Mininet tests cannot run: {problem}")
    for item in wanted:
        item.add_marker(pytest.mark.skip(reason=f"needs root and Open vSwitch: {problem}"))
