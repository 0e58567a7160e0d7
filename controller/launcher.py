"""Run halab's os-ken applications as one process: `halab-controller --port 6653`.

os-ken has no manager command of its own that we can rely on, so this is it: parse our own
options, hand os-ken its configuration, and run the chosen apps until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

#: App names the CLI accepts, mapped to their modules.
APPS = {"l2": "controller.l2_switch"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="halab-controller", description=__doc__)
    parser.add_argument("--app", action="append", choices=sorted(APPS),
                        help="application to run (repeatable; default: l2)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on for OpenFlow")
    parser.add_argument("--port", type=int, default=6653, help="OpenFlow TCP port")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port}: choose a TCP port from 1 to 65535")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    cfg.CONF(args=["--ofp-listen-host", args.host, "--ofp-tcp-listen-port", str(args.port)],
             project="os_ken")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        AppManager.run_apps([APPS[name] for name in (args.app or ["l2"])])
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
