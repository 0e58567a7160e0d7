"""HAProxy (the Debian package) on a lab host: the software load balancer people deploy, as a baseline."""

from __future__ import annotations

import time

from harness.errors import HalabError
from harness.lab import Lab, LabProcess
from topologies.base import LabTopo


def render(topo: LabTopo, bind: str, listeners: dict[str, tuple[int, str]], interval: float = 0.1,
           fall: int = 3, rise: int = 2) -> str:
    """mode tcp; one `listen` per name: (port, balance), every backend of the topology behind it."""
    lines = ["global", "    maxconn 4000", "defaults", "    mode tcp", "    timeout connect 1s",
             "    timeout client 30s", "    timeout server 30s"]
    for name, (port, balance) in listeners.items():
        lines += [f"listen {name}", f"    bind {bind}:{port}", f"    balance {balance}"]
        lines += [f"    server {h} {topo.addresses[h][0].ip}:{port} check inter {interval * 1000:.0f} "
                  f"fall {fall} rise {rise}" for h in topo.hosts_with_role("backend")]
    return "\n".join(lines) + "\n"


def start(lab: Lab, host: str, config: str) -> LabProcess:
    """Run haproxy in the foreground on `host`; its config goes to the run directory."""
    path = lab.run_dir / f"haproxy-{host}.cfg"
    path.write_text(config)
    check = lab.run(host, ["haproxy", "-c", "-f", str(path)])
    if check.returncode != 0:
        raise HalabError(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}", f"See {path}.")
    proc = lab.spawn(host, "haproxy", ["haproxy", "-db", "-f", str(path)])
    time.sleep(0.3)
    if not proc.alive():
        raise HalabError(f"haproxy exited at start:\n{proc.log_text()[-1500:]}",
                         "Is the haproxy package installed? `sudo make setup` installs it.")
    return proc
