"""The live view's server: uvicorn serving the application, beside the task that follows the lab,
until the lab goes down or we are stopped. Either way every open page is told why first."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socket
import sys
import traceback

import uvicorn

from harness.web import app
from harness.web.source import LabSource

#: How long the pages are given to hear why the view ends, before the server closes.
FLUSH_S = 0.2


class Server(uvicorn.Server):
    """uvicorn's, but the first Ctrl-C or SIGTERM tells the pages, so that their streams end at once
    (a second one stops at once, as uvicorn's does)."""

    def __init__(self, config: uvicorn.Config, source: LabSource, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config)
        self.source, self.loop = source, loop

    def handle_exit(self, sig: int, frame: object) -> None:
        if self.should_exit or self.source.gone.is_set():
            super().handle_exit(sig, frame)
        else:
            self.loop.call_soon_threadsafe(self.source.close, "the live view was stopped")


def run(descriptor: dict, sock: socket.socket, token: str, allow_faults: bool) -> str:
    """Serve until the end; why it ended."""
    host = sock.getsockname()[0]
    # The names a browser may use for us; any, when we listen on every address (the token still guards faults).
    allowed = (["*"] if ipaddress.ip_address(host).is_unspecified else
               sorted({host, f"[{host}]", "localhost", "127.0.0.1"}))

    async def serve() -> str:
        source = LabSource(descriptor)
        config = uvicorn.Config(app.create(source, token, allow_faults, allowed), log_level="warning",
                                lifespan="off", timeout_keep_alive=5, timeout_graceful_shutdown=1,
                                limit_concurrency=64, h11_max_incomplete_event_size=16 * 1024)
        server = Server(config, source, asyncio.get_running_loop())
        follow = asyncio.create_task(source.run())
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        gone = asyncio.create_task(source.gone.wait())
        await asyncio.wait({serving, gone, follow}, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(FLUSH_S)  # the pages hear why
        server.should_exit = True
        await serving
        for task in (follow, gone):
            task.cancel()
        if follow.done() and not follow.cancelled() and follow.exception() is not None:
            traceback.print_exception(follow.exception(), file=sys.stderr)
        return source.why or "stopped"

    # uvicorn raises a signal it caught again once it is done; it must not end us before the clean-up.
    old = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return asyncio.run(serve())
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
