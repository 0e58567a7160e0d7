"""Scenarios: bring a lab up, probe the VIP, inject one fault, measure what the client saw.

Each scenario is a module with an options dataclass and a `run(options, run_dir, progress)`
function, registered here; the `halab run` command line is generated from this registry (one
subcommand per scenario, with only its own options). A run is one fresh lab from start to
teardown, so runs are independent and their medians mean something.
"""

from __future__ import annotations

from harness.scenarios import active_active, active_standby, cluster, labfile_run, reference, sync, three_tier
from harness.scenarios.common import Scenario

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (active_standby.SCENARIO, active_active.SCENARIO,
                                                      cluster.SCENARIO, reference.SCENARIO, three_tier.SCENARIO,
                                                      sync.SCENARIO, labfile_run.SCENARIO)}

__all__ = ["SCENARIOS", "Scenario"]
