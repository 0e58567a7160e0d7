"""Mininet topologies for halab's scenarios: pure descriptions, no side effects.

They also load in plain Mininet: `sudo mn --custom topologies/__init__.py --topo active_standby`
(Mininet's names use underscores; `--topo active_active,5,2` passes counts in build()'s order).
"""

import os as _os
import sys as _sys

if __name__ != "topologies":  # run by `mn --custom`, not imported: make the package importable
    _sys.path.insert(0, _os.path.dirname(_os.path.dirname(_os.path.abspath(_sys._getframe().f_code.co_filename))))

from topologies.active_active import ActiveActiveTopo
from topologies.active_standby import ActiveStandbyTopo
from topologies.base import LabTopo
from topologies.cluster import ClusterTopo
from topologies.reference import ReferenceTopo
from topologies.three_tier import ThreeTierTopo

#: Topologies by the name the CLI and the tests use.
TOPOLOGIES: dict[str, type[LabTopo]] = {
    "active-standby": ActiveStandbyTopo,
    "active-active": ActiveActiveTopo,
    "reference": ReferenceTopo,
    "cluster": ClusterTopo,
    "three-tier": ThreeTierTopo,
}

#: For `mn --custom`: the same topologies by Mininet-style names.
topos = {name.replace("-", "_"): cls for name, cls in TOPOLOGIES.items()}

__all__ = ["TOPOLOGIES", "ActiveActiveTopo", "ActiveStandbyTopo", "ClusterTopo", "LabTopo", "ReferenceTopo",
           "ThreeTierTopo", "topos"]
