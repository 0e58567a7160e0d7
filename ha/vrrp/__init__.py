"""halab's VRRP version 3 agent (RFC 9568, which replaced RFC 5798), IPv4 and IPv6."""
