"""halab's heartbeat agent: cluster-manager-style Active-Standby (failure detection, resources,
quorum, fencing), the second way to run Active-Standby next to VRRP."""
