"""The live view's web application (Starlette): the page, its stream of updates (Server-Sent
Events), and the teacher's fault buttons.

Nothing but the page and the stream is served. A fault needs the server started with
--allow-faults and the token it printed, sent in a header: a page of another site can neither
read the token nor send the header (that would need a CORS preflight, which is never answered),
so no cross-site request can break the lab. Requests naming another host are refused (DNS
rebinding), and a fault request's body is read up to MAX_BODY bytes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from importlib import resources

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from harness.web.source import LabSource

MAX_BODY = 4096
TOKEN_HEADER = "x-halab-token"
#: A comment line this often keeps a quiet stream open through proxies and tells a dead page apart.
KEEPALIVE_S = 15.0


def page() -> str:
    """The page: HTML with its script and style inlined, so it needs nothing but this server."""
    files = resources.files("harness.web")
    html = (files / "page.html").read_text()
    return (html.replace("/*STYLE*/", (files / "page.css").read_text())
                .replace("/*SCRIPT*/", (files / "page.js").read_text()))


def create(source: LabSource, token: str, allow_faults: bool, hosts: list[str]) -> Starlette:
    html = page()

    async def index(_request: Request) -> Response:
        return HTMLResponse(html.replace("__ALLOW_FAULTS__", "true" if allow_faults else "false"),
                            headers={"Cache-Control": "no-store", "Content-Security-Policy":
                                     "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                     "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                                     "X-Content-Type-Options": "nosniff"})

    async def stream(_request: Request) -> Response:
        if source.hub.full():
            return JSONResponse({"error": "too many pages are open"}, status_code=503)

        async def messages() -> AsyncIterator[str]:
            # Subscribed once the response starts: a page gone before that leaves nothing behind.
            queue = source.hub.subscribe()
            if queue is None:
                return
            try:
                for message in source.snapshot():
                    yield _sse(message)
                if source.gone.is_set():
                    yield _sse({"type": "gone", "why": "the lab is down"})
                    return
                while True:
                    try:
                        message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if message is None:  # this page fell behind: EventSource reconnects by itself
                        return
                    yield _sse(message)
                    if message["type"] == "gone":
                        return
            finally:
                source.hub.unsubscribe(queue)

        return StreamingResponse(messages(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def fault(request: Request) -> Response:
        if not allow_faults:
            return JSONResponse({"rc": 2, "out": "This view was started without --allow-faults."}, status_code=403)
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, "").encode(), token.encode()):
            return JSONResponse({"rc": 2, "out": "Missing or wrong token."}, status_code=403)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse({"rc": 2, "out": f"Request larger than {MAX_BODY} bytes."}, status_code=413)
        try:
            argv = json.loads(body)["argv"]
            if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"rc": 2, "out": 'Expected {"argv": ["fault", ...]}.'}, status_code=400)
        rc, out = await source.fault(argv)
        return JSONResponse({"rc": rc, "out": out}, status_code=200 if rc == 0 else 400)

    routes = [Route("/", index), Route("/stream", stream), Route("/fault", fault, methods=["POST"])]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


def _sse(message: dict) -> str:
    return f"data: {json.dumps(message, separators=(',', ':'))}\n\n"
