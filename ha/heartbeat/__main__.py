"""`halab-heartbeat --config FILE.toml` runs the agent; `halab-heartbeat status` shows the agents here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ha.configcheck import ConfigError
from ha.heartbeat import config
from ha.heartbeat.agent import Agent, read_statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="halab-heartbeat", description="halab's heartbeat cluster agent.")
    parser.add_argument("command", nargs="?", choices=["run", "status"], default="run")
    parser.add_argument("--config", type=Path, help="the agent's TOML file")
    parser.add_argument("--all", action="store_true", help="status: agents of every host, not only this one")
    args = parser.parse_args(argv)
    console = Console()
    if args.command == "status":
        table = Table(title="heartbeat agents on this host")
        for col in ("node", "role", "peer", "peer says", "links alive", "quorum", "resources", "why"):
            table.add_column(col)
        for s in read_statuses(args.all):
            links = ", ".join(f"{name}{'' if ok else ' (silent)'}" for name, ok in s["links"].items())
            table.add_row(s["node"], s["role"], s["peer"], str(s["peer_state"]), links, str(s["quorum"]),
                          ", ".join(s["resources"]), s["reason"])
        console.print(table)
        return 0
    if args.config is None:
        parser.error("--config FILE is required to run the agent")
    try:
        agent = Agent(config.load(args.config))
        agent.setup()
    except (ConfigError, ValueError) as exc:
        print(f"halab-heartbeat: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"halab-heartbeat: cannot open the heartbeat sockets ({exc}); run it as root on the node",
              file=sys.stderr)
        return 2
    print(f"halab-heartbeat: {agent.cfg.name} running", flush=True)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
