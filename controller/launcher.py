"""Run halab's os-ken applications as one process, or talk to a running load balancer.

    halab-controller [--port 6653]                       the L2 learning switch
    halab-controller --config lb.toml [--api-port 6680]  the L4 load balancer (and L2 for the rest)
    halab-controller status [--json]                      services, backends, health, counters
    halab-controller drain SERVICE IP:PORT [--undo]       no new connections to a backend

os-ken has no manager command of its own that we can rely on, so this is it: parse our own
options, check the configuration, hand os-ken its settings, and run until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from controller import api
from ha.assist import DEFAULT_DEBOUNCE_S, MAX_DEBOUNCE_S, SOCKET_PATH, socket_path_ok
from ha.heartbeat.config import MIN_SECRET_LENGTH  # the cluster's secret signs fencing requests

#: App names the CLI accepts, mapped to their modules.
APPS = {"l2": "controller.l2_switch", "lb": "controller.load_balancer"}
CLIENT_COMMANDS = ("status", "drain")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="halab-controller", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", action="append", choices=["l2"],
                        help="application to run without --config (default: l2)")
    parser.add_argument("--config", type=Path, help="load balancer configuration (TOML); runs the lb app")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on for OpenFlow")
    parser.add_argument("--port", type=int, default=6653, help="OpenFlow TCP port")
    parser.add_argument("--api-port", type=int, default=api.DEFAULT_PORT, help="status API port on 127.0.0.1")
    parser.add_argument("--event-log", type=Path, help="JSON lines, one per backend state change (with --config)")
    parser.add_argument("--fence-socket", type=Path, help="serve fencing requests on this unix socket")
    parser.add_argument("--fence-secret-file", type=Path, help="the cluster secret fencing requests are signed with")
    parser.add_argument("--assist-socket", type=Path,
                        help="tell backup agents on this unix socket when their master's switch port goes down")
    parser.add_argument("--assist-debounce", type=float, default=DEFAULT_DEBOUNCE_S,
                        help=f"seconds a port must stay down before they hear of it (default {DEFAULT_DEBOUNCE_S:g})")
    parser.add_argument("--relay-dir", type=Path,
                        help="serve a second copy of the fencing and assist sockets in this directory (fence.sock, "
                             "assist.sock), for its owner: the user whose ssh carries them to other servers")
    args = parser.parse_args(argv)
    if not 0 <= args.assist_debounce <= MAX_DEBOUNCE_S:
        parser.error(f"--assist-debounce {args.assist_debounce:g}: choose 0 to {MAX_DEBOUNCE_S:g} seconds")
    for flag, path in (("--assist-socket", args.assist_socket), ("--fence-socket", args.fence_socket)):
        if path is not None and not (socket_path_ok(str(path)) and path.parent.is_dir()):
            parser.error(f"{flag} {path}: give {SOCKET_PATH}: the controller's socket, in a directory that exists")
    if args.relay_dir is not None and not (socket_path_ok(str(args.relay_dir / "assist.sock"))
                                           and args.relay_dir.is_dir()):
        parser.error(f"--relay-dir {args.relay_dir}: give a directory that exists, with a path short enough "
                     "for the sockets in it")
    for name in ("port", "api_port"):
        value = getattr(args, name)
        if not 1 <= value <= 65535:
            parser.error(f"--{name.replace('_', '-')} {value}: choose a TCP port from 1 to 65535")
    return args


def parse_client_args(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-port", type=int, default=api.DEFAULT_PORT, help="status API port on 127.0.0.1")
    parser = argparse.ArgumentParser(prog="halab-controller", description="Ask a running load balancer.")
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", parents=[common], help="services, backends, health and counters")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    drain = sub.add_parser("drain", parents=[common], help="stop sending new connections to a backend")
    drain.add_argument("service")
    drain.add_argument("backend", help="IP:PORT as in the configuration")
    drain.add_argument("--undo", action="store_true", help="put the backend back in service")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(word in CLIENT_COMMANDS for word in argv if not word.startswith("-")):
        return client(parse_client_args(argv))
    args = parse_args(argv)
    apps = [APPS[name] for name in (args.app or ["l2"])]
    if (args.fence_socket is None) != (args.fence_secret_file is None):
        print("halab-controller: --fence-socket and --fence-secret-file go together", file=sys.stderr)
        return 2
    if args.fence_secret_file is not None:
        try:
            secret = args.fence_secret_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"halab-controller: --fence-secret-file {args.fence_secret_file}: {exc}", file=sys.stderr)
            return 2
        if len(secret) < MIN_SECRET_LENGTH:
            print(f"halab-controller: --fence-secret-file {args.fence_secret_file}: the secret has {len(secret)} "
                  f"characters; use at least {MIN_SECRET_LENGTH}", file=sys.stderr)
            return 2
    if args.config is not None:
        from controller import lb_config
        from ha.configcheck import ConfigError

        try:
            lb_config.load(args.config)
            api.check_free(args.api_port)
        except (ConfigError, api.ApiError) as exc:
            print(f"halab-controller: {exc}", file=sys.stderr)
            return 2
        apps = [APPS["lb"]]
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    from controller import options

    logging.basicConfig(level=logging.DEBUG if os.environ.get("HALAB_DEBUG") else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg.CONF(args=["--ofp-listen-host", args.host, "--ofp-tcp-listen-port", str(args.port),
                   *options.as_args(lb_config=args.config, api_port=args.api_port, event_log=args.event_log,
                                    fence_socket=args.fence_socket, fence_secret_file=args.fence_secret_file,
                                    assist_socket=args.assist_socket, assist_debounce=args.assist_debounce,
                                    relay_dir=args.relay_dir)],
             project="os_ken")
    # Nothing to tidy: the flows stay in the switch on purpose (fail mode secure), and os-ken's own
    # shutdown path raises on native threads. Leave at once.
    def leave(*_: object) -> None:
        api.token_path(args.api_port).unlink(missing_ok=True)
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)
    keep_event_loops_alive()
    AppManager.run_apps(apps)
    return 0


class StopTaskError(Exception):
    """os-ken's "stop this task" signal, distinct from every other exception (see below)."""


def keep_event_loops_alive() -> None:
    """A bug in one event handler must be logged, not end the controller's work.

    On native threads os-ken's hub defines TaskExit as Exception itself, and an app's event loop
    re-raises TaskExit from a handler: any exception in any handler ends that app's event loop,
    silently. Its queue then fills, the switch connection's reader blocks on it, and every
    health check times out (seen: the whole pool out 30 s into a run). With TaskExit its own
    class, os-ken logs a handler's exception and goes on with the next event."""
    from os_ken.lib import hub

    if hub.TaskExit is Exception:
        hub.TaskExit = StopTaskError


def client(args: argparse.Namespace) -> int:
    try:
        if args.command == "drain":
            answer = api.call(args.api_port, "/drain", {"service": args.service, "backend": args.backend,
                                                        "drain": not args.undo})
            print(answer["result"])
            return 0
        status = api.call(args.api_port, "/status")
    except api.ApiError as exc:
        print(f"halab-controller: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=1))
    else:
        print_status(status)
    return 0


def print_status(status: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for sw in status["switches"]:
        for s in sw["services"]:
            table = Table(title=f"{s['name']}  {s['vip']}:{s['port']}/{s['protocol']}  {s['algorithm']}  "
                                f"(switch {sw['dpid']}, check {s['health_check']})")
            for col in ("backend", "weight", "port", "health", "link", "drained", "in pool", "connections",
                        "packets", "bytes", "reason"):
                table.add_column(col)
            for b in s["backends"]:
                table.add_row(b["backend"], str(b["weight"]), str(b["port"]), b["health"], b["link"],
                              "yes" if b["drained"] else "", "yes" if b["in_pool"] else "no",
                              str(b["connections"]), str(b["packets"]), str(b["bytes"]), b["reason"])
            console.print(table)
    if not status["switches"]:
        console.print("No switch is connected to the load balancer yet.")


if __name__ == "__main__":
    sys.exit(main())
