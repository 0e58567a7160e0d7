"""`halab web`: the live view of the lab that is up, served until that lab goes down.

`halab up ... --web` starts this same command as a child of the lab (harness.session), so the
page never slows the lab's own process, and it stops by itself when the lab stops answering.

Why Starlette and uvicorn: the stream of updates is a long-lived response per page, which an
asyncio server holds for the price of a coroutine; Starlette is small (routing, a streaming
response, a trusted-host check, and nothing else we do not use), uvicorn serves it over h11
with its timeouts and limits settable, and both are widely used and kept up.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ha.statusfile import state_root, write_atomically
from harness import preflight
from harness.errors import HalabError
from harness.labinfo import NO_LAB, running

DEFAULT_ADDRESS, DEFAULT_PORT = "127.0.0.1", 8000
#: Where the URL (with its token) is left for `halab up --web --detach` to show: root-only.
URL_FILE = "web-url"
START_TIMEOUT_S, STOP_TIMEOUT_S = 15.0, 5.0


def add_options(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The view's options; `halab up` takes them as --web-address, --web-port."""
    p.add_argument(f"--{prefix}address", default=DEFAULT_ADDRESS,
                   help=f"the address the page is served on (default: {DEFAULT_ADDRESS}, this machine only)")
    p.add_argument(f"--{prefix}port", type=int, default=DEFAULT_PORT, help=f"its port (default: {DEFAULT_PORT})")
    p.add_argument("--allow-faults", action="store_true",
                   help="show the teacher's fault buttons; they need the token printed at start")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="a live view of the running lab in a browser, for the projector")
    add_options(p)
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a socket `halab up --web` bound for us


def main(args: argparse.Namespace) -> int:
    preflight.require_root()
    descriptor = running()
    if descriptor is None:
        raise NO_LAB
    sock = socket.socket(fileno=args.fd) if args.fd is not None else bind(args.address, args.port, "--port")
    serve(descriptor, sock, args.allow_faults, announce=args.fd is None)
    return 0


@dataclass(frozen=True)
class ViewOptions:
    address: str = DEFAULT_ADDRESS
    port: int = DEFAULT_PORT
    allow_faults: bool = False


class View:
    """`halab web` as the child of a lab (`halab up --web`): in its own session, so that a Ctrl-C at
    the lab's prompt does not end it; its output in the run directory (without the token)."""

    def __init__(self, sock: socket.socket, allow_faults: bool, log: Path) -> None:
        command = [sys.executable, "-m", "harness.cli", "web", "--fd", str(sock.fileno()),
                   *(["--allow-faults"] if allow_faults else [])]
        forget_url()
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                            pass_fds=(sock.fileno(),), start_new_session=True)
        sock.close()  # the child has it now
        self.url = self._wait_for_url(log)

    def _wait_for_url(self, log: Path) -> str:
        try:
            return wait_for_url(time.monotonic() + START_TIMEOUT_S, self.process.poll)
        except HalabError:
            self.stop()
            raise HalabError(f"The live view did not start:\n{log.read_text(errors='replace')[-1500:]}",
                             f"See {log}.") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        forget_url()


def bind(address: str, port: int, port_option: str) -> socket.socket:
    """The listening socket, or one clear error naming the option to change."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        raise HalabError(f"The address {address!r} is not an IP address.",
                         f"Give one, such as {DEFAULT_ADDRESS} (this machine only).") from None
    if not 1 <= port <= 65535:
        raise HalabError(f"The port {port} is out of range.", f"Choose {port_option} 1024..65535.")
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise HalabError(f"Port {port} on {address} {why}.",
                         f"Choose another with {port_option} N, or stop what listens there.") from None
    sock.set_inheritable(False)
    return sock


def url(sock: socket.socket, token: str | None) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"#token={token}" if token else "")


def serve(descriptor: dict, sock: socket.socket, allow_faults: bool, announce: bool = True) -> None:
    """Serve the view on `sock` until the lab goes down or we are stopped (Ctrl-C, SIGTERM)."""
    from harness.web import server  # here: `halab` without `web` does not pay for uvicorn

    token = secrets.token_urlsafe(18)
    link = url(sock, token if allow_faults else None)
    _leave_url(link)
    if announce:
        print(f"live view: {link}" + ("  (the part after # is the token the fault buttons need)" if allow_faults
                                      else ""), flush=True)
    try:
        print(f"live view stopped: {server.run(descriptor, sock, token, allow_faults)}", flush=True)
    finally:
        sock.close()
        forget_url()


def wait_for_url(deadline: float, exited=lambda: None) -> str:
    """The URL a starting view leaves (with its token) once it listens."""
    while time.monotonic() < deadline and exited() is None:
        try:
            return (state_root() / URL_FILE).read_text().strip()
        except FileNotFoundError:
            time.sleep(0.05)
    raise HalabError("The live view did not start.", "See web.log in the lab's run directory.")


def forget_url() -> None:
    with contextlib.suppress(OSError):
        (state_root() / URL_FILE).unlink()


def _leave_url(link: str) -> None:
    """Whole or not at all (a reader never sees half a URL); mkstemp makes it 0600."""
    write_atomically(state_root() / URL_FILE, link + "\n")
