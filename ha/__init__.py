"""What runs on a lab host: halab's own HA agents (VRRP, and heartbeat next) and their shared bits."""
