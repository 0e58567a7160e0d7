"""The load balancer in a lab: its configuration for a topology, and its status API."""

from __future__ import annotations

import time

from controller import api
from harness.errors import HalabError
from harness.lab import Lab
from harness.probe import PORT
from topologies.base import LabTopo

#: A UDP check the probe responders answer (they ignore datagrams without the probe's header).
UDP_CHECK = ', send = "HALAB health 0\\n"'


def service_toml(topo: LabTopo, name: str = "probe", protocol: str = "tcp", port: int = PORT,
                 backend_port: int | None = None, algorithm: str = "consistent",
                 weights: dict[str, int] | None = None, check: str = "tcp", interval: float = 0.1,
                 fall: int = 3, rise: int = 2) -> str:
    """One [[service]] on the topology's VIP, every host with role "backend" behind it."""
    weights = weights or {}
    backends = ", ".join(
        f'{{ip = "{topo.addresses[h][0].ip}", port = {backend_port or port}, weight = {weights.get(h, 1)}}}'
        for h in topo.hosts_with_role("backend"))
    return (f'[[service]]\nname = "{name}"\nvip = "{topo.vip.ip}"\nport = {port}\nprotocol = "{protocol}"\n'
            f'algorithm = "{algorithm}"\nbackends = [{backends}]\n'
            f'health_check = {{kind = "{check}", interval = {interval}, timeout = {interval}, '
            f"fall = {fall}, rise = {rise}{UDP_CHECK if check == 'udp' else ''}}}\n")


def status(lab: Lab) -> dict:
    return api.call(lab.api_port, "/status")


def backends(lab: Lab, service: str = "probe") -> dict[str, dict]:
    """The backends of `service` on the first switch, by "ip:port"."""
    for s in status(lab)["switches"][0]["services"]:
        if s["name"] == service:
            return {b["backend"]: b for b in s["backends"]}
    raise KeyError(service)


def wait_for_pool(lab: Lab, timeout: float, service: str = "probe") -> None:
    """Wait until every backend of `service` is in the pool; a clear error with the status if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all(b["in_pool"] for b in backends(lab, service).values()):
                return
        except (api.ApiError, IndexError, KeyError):
            pass  # not up yet, or no switch connected yet
        time.sleep(0.1)
    raise HalabError(f"Not every backend joined the pool of {service!r} within {timeout:.0f} s.",
                     f"See {lab.run_dir / 'controller.log'} and the backends' logs there.")


def drain(lab: Lab, service: str, backend: str, drained: bool = True) -> None:
    api.call(lab.api_port, "/drain", {"service": service, "backend": backend, "drain": drained})
