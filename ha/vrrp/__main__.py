"""`halab-vrrp --config FILE.toml` runs the agent; `halab-vrrp status` shows the agents on this host."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ha.vrrp import config
from ha.vrrp.agent import Agent, read_statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="halab-vrrp", description="halab's VRRPv3 agent (RFC 9568).")
    parser.add_argument("command", nargs="?", choices=["run", "status"], default="run")
    parser.add_argument("--config", type=Path, help="TOML file with [[vrrp_instance]] tables")
    parser.add_argument("--all", action="store_true", help="status: agents of every host, not only this one")
    args = parser.parse_args(argv)
    console = Console()
    if args.command == "status":
        return _status(console, args.all)
    if args.config is None:
        parser.error("--config FILE is required to run the agent")
    try:
        agent = Agent(config.load(args.config))
        agent.setup()
    except config.ConfigError as exc:
        console.print(f"[bold red]halab-vrrp:[/] {exc}", soft_wrap=True)
        return 2
    except PermissionError:
        console.print("[bold red]halab-vrrp:[/] raw sockets and address changes need root; run it as root "
                      "(inside a lab host, halab does).", soft_wrap=True)
        return 2
    except OSError as exc:
        console.print(f"[bold red]halab-vrrp:[/] cannot set up the sockets and interfaces: {exc}. Check that "
                      "the interfaces exist and that IPv6 is enabled if an instance uses it.", soft_wrap=True)
        return 2
    return agent.run()


def _status(console: Console, all_hosts: bool) -> int:
    statuses = read_statuses(all_hosts)
    if not statuses:
        console.print("no halab-vrrp agent is running" + ("" if all_hosts else " in this network namespace"))
        return 1
    table = Table(title="halab-vrrp agents")
    for col in ("pid", "instance", "interface", "vrid", "state", "priority", "adverts sent", "drops", "VIPs"):
        table.add_column(col)
    for st in statuses:
        for i in st["instances"]:
            drops = ", ".join(f"{k}={v}" for k, v in i["drops"].items()) or "-"
            table.add_row(str(st["pid"]), i["name"], i["interface"], str(i["vrid"]), i["state"], str(i["priority"]),
                          str(i["adverts_sent"]), drops, " ".join(i["vips"]))
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
