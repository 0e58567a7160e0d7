"""The lab's os-ken controller, in the root namespace: the L2 switch, the load balancer, fencing,
failover assist."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from controller import lb_config
from controller.lb_config import LbConfig
from ha.assist import DEFAULT_DEBOUNCE_S
from harness import events
from harness.daemons.base import Daemon, Lab

#: The load balancer's event log in the run directory.
LB_EVENTS = "lb-events.jsonl"


class Controller(Daemon):
    program = "controller"
    pattern = r"-m controller\.launcher( |$)"

    def __init__(self, lab: Lab, port: int, api_port: int, lb: LbConfig | None = None,
                 fence_socket: Path | None = None, secret: str | None = None,
                 assist_socket: Path | None = None, assist_debounce: float = DEFAULT_DEBOUNCE_S,
                 host: str = "127.0.0.1", relay_dir: Path | None = None) -> None:
        """`host`: the address it takes OpenFlow connections on (loopback, unless switches on
        other servers connect to it). `relay_dir`: it serves a second copy of its sockets there,
        for the directory's owner (the ssh user who carries them to other servers)."""
        super().__init__(lab, None)
        self.port, self.api_port, self.lb, self.listen = port, api_port, lb, host
        self.fence_socket, self.secret = fence_socket, secret
        self.assist_socket, self.assist_debounce = assist_socket, assist_debounce
        self.relay_dir = relay_dir

    @property
    def secret_file(self) -> Path:
        return self.base.with_suffix(".secret")

    @property
    def event_log(self) -> Path:
        return self.lab.run_dir / LB_EVENTS

    def files(self) -> dict[Path, str]:
        files = {}
        if self.lb is not None:
            files[self.base.with_suffix(".lb.toml")] = lb_config.dump(self.lb)
        if self.secret is not None:
            files[self.secret_file] = self.secret
        return files

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "controller.launcher", "--host", self.listen, "--port", str(self.port)]
        if self.lb is not None:
            argv += ["--config", str(self.base.with_suffix(".lb.toml")), "--api-port", str(self.api_port),
                     "--event-log", str(self.event_log)]
        if self.fence_socket is not None:
            argv += ["--fence-socket", str(self.fence_socket), "--fence-secret-file", str(self.secret_file)]
        if self.assist_socket is not None:
            argv += ["--assist-socket", str(self.assist_socket), "--assist-debounce", f"{self.assist_debounce:g}"]
        if self.relay_dir is not None:
            argv += ["--relay-dir", str(self.relay_dir)]
        return argv

    def ready(self) -> bool:
        try:
            socket.create_connection((self.listen, self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def events(self) -> list[events.Event]:
        """The load balancer's backend events, placed on the host that has the backend's address."""
        host_of = {str(a.ip): name for name, addrs in self.lab.topo.addresses.items() for a in addrs}

        def host(record: dict) -> str:
            address = record["subject"].split(" ")[-1].split(":")[0]
            return host_of.get(address, address)

        return events.read(self.event_log, host)
