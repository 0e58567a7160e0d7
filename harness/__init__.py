"""The harness: runs a lab network, injects faults, probes the VIP, measures and reports.

Everything a scenario needs between a topology and a pytest assert lives here; the `halab`
command is its front door (harness.cli).
"""
