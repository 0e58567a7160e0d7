"""HAProxy (the Debian package) on a lab host: the software load balancer people deploy, as a baseline."""

from __future__ import annotations

import csv
import socket
import sys
from pathlib import Path

from ha.statusfile import state_root
from harness.daemons.base import Daemon, Lab
from harness.errors import HalabError
from harness.servers import LOCAL
from topologies.base import LabTopo


class HAProxy(Daemon):
    """mode tcp; one `listen` per name: (port, balance), every backend of the topology behind it."""

    program = "haproxy"
    pattern = r"^haproxy( |$)"

    def __init__(self, lab: Lab, host: str, bind: str, listeners: dict[str, tuple[int, str]], interval: float = 0.1,
                 fall: int = 3, rise: int = 2, backend_role: str = "backend") -> None:
        """`backend_role`: the topology's hosts of this role are the servers behind every listener."""
        super().__init__(lab, host)
        self.bind, self.listeners = bind, listeners
        self.interval, self.fall, self.rise = interval, fall, rise
        self.backend_role = backend_role

    @property
    def config(self) -> Path:
        return self.base.with_suffix(".cfg")

    @property
    def stats_socket(self) -> Path:
        """Its runtime API (`show stat`: each server's check state), in the state directory: a unix
        socket's path must be short, and a test's run directory is deep."""
        run_id = self.lab.state.run_id if self.lab.state is not None else "lab"
        return state_root() / f"haproxy-{run_id}-{self.host}.sock"

    def files(self) -> dict[Path, str]:
        return {self.config: render_haproxy(self.lab.topo, self.bind, self.listeners, self.interval, self.fall,
                                            self.rise, self.backend_role, self.stats_socket)}

    def write_files(self) -> None:
        super().write_files()
        if self.lab.state is not None:  # `halab clean` removes it, whatever ended HAProxy
            self.lab.state.files = sorted({*self.lab.state.files, str(self.stats_socket)})
            self.lab.state.save()
        check = self.lab.run(self.host, ["haproxy", "-c", "-f", str(self.config)])
        if check.returncode != 0:
            raise HalabError(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}", f"See {self.config}.")

    @classmethod
    def on_proxy(cls, lab: Lab, listeners: dict[str, tuple[int, str]], interval: float = 0.1, fall: int = 3,
                 rise: int = 2) -> HAProxy:
        """Active-Active with HAProxy: proxy1 holds the topology's VIP, HAProxy there balances the
        backends. Started and listening."""
        vip = lab.topo.vip
        assert vip is not None, "the topology has no VIP"
        lab.run("proxy1", ["ip", "addr", "add", str(vip), "dev", lab.topo.interfaces("proxy1")[0][0]])
        return cls(lab, "proxy1", str(vip.ip), listeners, interval, fall, rise).start()

    def argv(self) -> list[str]:
        return ["haproxy", "-db", "-f", str(self.config)]

    def ready(self) -> bool:
        """Every listener listens on its host (connecting would not do: a backup node may bind the VIP
        before it holds it, and a connect to the VIP would reach the node that does)."""
        listening = self.lab.run(self.host, ["ss", "-Hltn"], timeout=2).stdout
        return all(f"{self.bind}:{port} " in listening for port, _ in self.listeners.values())

    def servers(self, timeout: float = 2.0) -> list[dict]:
        """Each server of each listener as HAProxy's checks see it now (`show stat`): listener,
        server, status (its words: UP, DOWN, "UP 1/3" going down, "DOWN 1/2" coming back, MAINT,
        DRAIN, "no check"), in_pool, health (whether its checks pass), drained, and the last
        check's words ("Layer4 connection problem: Connection refused"). A reply that is not a
        `show stat` table gives none; a dead or silent HAProxy raises OSError."""
        if self.host is None or self.lab.server_of(self.host) == LOCAL:
            text = show_stat(self.stats_socket, timeout)
        else:  # its socket is on its server: read there
            done = self.lab.run(self.host, [sys.executable, "-m", "harness.daemons.haproxy", str(self.stats_socket),
                                            str(timeout)], timeout=timeout + 10)
            if done.returncode != 0:
                raise OSError(f"show stat on {self.host}: {done.stderr.strip()[-300:]}")
            text = done.stdout
        if not text.startswith("# pxname,svname,"):
            return []
        out = []
        for r in csv.DictReader(text.removeprefix("# ").splitlines()):
            if r.get("svname") in (None, "FRONTEND", "BACKEND") or r.get("status") is None:
                continue  # the listener's own rows, or one cut short
            status = r["status"]
            word = status.split()[0] if status else ""
            out.append({"listener": r["pxname"], "server": r["svname"], "status": status,
                        "in_pool": word in ("UP", "no"), "health": "down" if status == "DOWN" else "up",
                        "drained": word in ("MAINT", "DRAIN", "NOLB"),
                        "words": ": ".join(filter(None, (r.get("check_desc"), r.get("last_chk"))))})
        return out


#: `show stat` is a line per server and listener: a few kilobytes in any lab.
MAX_STAT_BYTES = 1 << 20


def show_stat(path: Path, timeout: float) -> str:
    """`show stat` from HAProxy's runtime API at `path` (on this machine)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(b"show stat\n")
        data = b""
        while len(data) < MAX_STAT_BYTES and (chunk := conn.recv(65536)):
            data += chunk
    return data.decode(errors="replace")


def render_haproxy(topo: LabTopo, bind: str, listeners: dict[str, tuple[int, str]], interval: float,
                   fall: int, rise: int, backend_role: str = "backend", stats_socket: Path | None = None) -> str:
    lines = ["global", "    maxconn 4000"]
    lines += [f"    stats socket {stats_socket} mode 600 level user"] if stats_socket else []
    lines += ["defaults", "    mode tcp", "    timeout connect 1s",
             "    timeout client 30s", "    timeout server 30s"]
    for name, (port, balance) in listeners.items():
        lines += [f"listen {name}", f"    bind {bind}:{port}", f"    balance {balance}"]
        lines += [f"    server {h} {topo.addresses[h][0].ip}:{port} check inter {interval * 1000:.0f} "
                  f"fall {fall} rise {rise}" for h in topo.hosts_with_role(backend_role)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # on the server where HAProxy runs: python -m harness.daemons.haproxy PATH TIMEOUT
    try:
        print(show_stat(Path(sys.argv[1]), float(sys.argv[2])), end="")
    except OSError as exc:
        sys.exit(f"{sys.argv[1]}: {exc}")
