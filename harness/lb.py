"""The load balancer in a lab: its services built from a topology, and its status API."""

from __future__ import annotations

import time

from controller import api, lb_config
from controller.lb_config import Backend, HealthCheck, LbConfig, Service
from ha.configcheck import ConfigError
from harness.errors import HalabError
from harness.lab import Lab
from harness.probe import PORT
from topologies.base import LabTopo

#: A UDP check the probe responders answer (they ignore datagrams without the probe's header).
UDP_CHECK_SEND = "HALAB health 0\n"


def service(topo: LabTopo, name: str = "probe", protocol: str = "tcp", port: int = PORT,
            backend_port: int | None = None, algorithm: str = "consistent", weights: dict[str, int] | None = None,
            check: str = "tcp", interval: float = 0.1, fall: int = 3, rise: int = 2,
            extra_backends: tuple[Backend, ...] = ()) -> Service:
    """One service on the topology's VIP, every host with role "backend" behind it (then `extra_backends`)."""
    weights = weights or {}
    assert topo.vip is not None
    backends = tuple(Backend(topo.addresses[h][0].ip, backend_port or port, weights.get(h, 1))
                     for h in topo.hosts_with_role("backend"))
    send = {"send": UDP_CHECK_SEND} if check == "udp" else {}
    return Service(name, topo.vip.ip, port, protocol, algorithm, extra_backends + backends,
                   HealthCheck(check, interval, interval, fall, rise, **send))


def config(*services: Service, switches: tuple[int, ...] = ()) -> LbConfig:
    """The services, checked as a configuration file would be; `switches`: the datapath ids that
    balance (default: every switch)."""
    try:
        return lb_config.check(LbConfig(services, switches))
    except ConfigError as exc:
        raise HalabError(f"load balancer configuration: {exc}", "Choose a value in the range it names.") from None


def status(lab: Lab) -> dict:
    return api.call(lab.api_port, "/status")


def backend_host(topo: LabTopo, backend: str) -> str:
    """The lab host behind a backend of the status ("10.0.0.1:7000": backend1), else the label."""
    address = backend.rsplit(":", 1)[0]
    return next((h for h, addresses in topo.addresses.items() for a in addresses if str(a.ip) == address), backend)


def backends(lab: Lab, service_name: str = "probe") -> dict[str, dict]:
    """The backends of a service on the first switch, by "ip:port"."""
    for s in status(lab)["switches"][0]["services"]:
        if s["name"] == service_name:
            return {b["backend"]: b for b in s["backends"]}
    raise KeyError(service_name)


def wait_for_pool(lab: Lab, timeout: float, service_name: str = "probe") -> None:
    """Wait until every backend of the service is in the pool; a clear error with the status if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all(b["in_pool"] for b in backends(lab, service_name).values()):
                return
        except (api.ApiError, IndexError, KeyError):
            pass  # not up yet, or no switch connected yet
        time.sleep(0.1)
    raise HalabError(f"Not every backend joined the pool of {service_name!r} within {timeout:.0f} s.",
                     f"See {lab.run_dir / 'controller.log'} and the backends' logs there.")


def drain(lab: Lab, service_name: str, backend: str, drained: bool = True) -> None:
    api.call(lab.api_port, "/drain", {"service": service_name, "backend": backend, "drain": drained})
