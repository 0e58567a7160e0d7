"""`halab-heartbeat --config FILE.toml` runs the agent; `halab-heartbeat status` shows the agents here."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from ha import daemon
from ha.configcheck import ConfigError
from ha.heartbeat import config
from ha.heartbeat.agent import Agent


def make(cfg: config.HeartbeatConfig) -> Agent:
    agent = Agent(cfg)
    try:
        agent.setup()
    except ValueError as exc:  # an interface that does not exist
        raise ConfigError(str(exc)) from None
    return agent


def show(statuses: list[dict]) -> None:
    table = Table(title="heartbeat agents on this host")
    for col in ("node", "role", "peer", "peer says", "links alive", "quorum", "resources", "why"):
        table.add_column(col)
    for s in statuses:
        links = ", ".join(f"{name}{'' if ok else ' (silent)'}" for name, ok in s["links"].items())
        table.add_row(s["node"], s["role"], s["peer"], str(s["peer_state"]), links, str(s["quorum"]),
                      ", ".join(s["resources"]), s["reason"])
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    return daemon.main(argv, "halab-heartbeat", "halab's heartbeat cluster agent.", "heartbeat", config.load,
                       make, show)


if __name__ == "__main__":
    sys.exit(main())
