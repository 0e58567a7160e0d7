"""`halab-vrrp --config FILE.toml` runs the agent; `halab-vrrp status` shows the agents on this host."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from ha import daemon
from ha.vrrp import config
from ha.vrrp.agent import Agent


def make(cfg: config.AgentConfig) -> Agent:
    agent = Agent(cfg)
    agent.setup()
    return agent


def show(statuses: list[dict]) -> None:
    table = Table(title="halab-vrrp agents")
    for col in ("pid", "instance", "interface", "vrid", "state", "priority", "adverts sent", "drops", "VIPs"):
        table.add_column(col)
    for st in statuses:
        for i in st["instances"]:
            drops = ", ".join(f"{k}={v}" for k, v in i["drops"].items()) or "-"
            table.add_row(str(st["pid"]), i["name"], i["interface"], str(i["vrid"]), i["state"], str(i["priority"]),
                          str(i["adverts_sent"]), drops, " ".join(i["vips"]))
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    return daemon.main(argv, "halab-vrrp", "halab's VRRPv3 agent (RFC 9568).", "vrrp", config.load, make, show)


if __name__ == "__main__":
    sys.exit(main())
