"""Mininet topologies for halab's scenarios: pure descriptions, no side effects."""

from topologies.active_active import ActiveActiveTopo
from topologies.active_standby import ActiveStandbyTopo
from topologies.base import LabTopo
from topologies.cluster import ClusterTopo
from topologies.reference import ReferenceTopo

#: Topologies by the name the CLI and the tests use.
TOPOLOGIES: dict[str, type[LabTopo]] = {
    "active-standby": ActiveStandbyTopo,
    "active-active": ActiveActiveTopo,
    "reference": ReferenceTopo,
    "cluster": ClusterTopo,
}

__all__ = ["TOPOLOGIES", "ActiveActiveTopo", "ActiveStandbyTopo", "ClusterTopo", "LabTopo", "ReferenceTopo"]
