"""The operator's HTTP endpoint of `serve` (`[metrics] listen`): `/metrics` for
Prometheus, `/health/live` and `/health/ready` for an orchestrator or a load balancer.

A deliberately small HTTP/1.1 server on serve's event loop: GET and HEAD only, one request
per connection (`Connection: close`), the request head capped at MAX_HEAD bytes and
HEAD_TIMEOUT seconds, so that a slow or hostile client costs one connection and nothing
else. Each route is an async callable giving (status, content type, body).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("pua_reginfo.metrics")
MAX_HEAD = 8192  # bytes of request line and headers
HEAD_TIMEOUT = 5.0  # seconds for the request head to arrive

Answer = tuple[int, str, bytes]
Route = Callable[[], Awaitable[Answer]]
_PHRASES = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 503: "Service Unavailable"}
TEXT = "text/plain; charset=utf-8"


class OperatorEndpoint:
    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self.host, self.port, self.routes = host, port, routes
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]  # the one bound, if 0 was asked

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            method, path = _request_line(head)
            status, kind, body = await self._answer(method, path)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            writer.close()
            return
        except ValueError:
            method, (status, kind, body) = "GET", (400, TEXT, b"bad request\n")
        try:
            writer.write(_response(status, kind, b"" if method == "HEAD" else body, len(body)))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, path: str) -> Answer:
        route = self.routes.get(path.split("?", 1)[0])
        if route is None:
            return 404, TEXT, b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, TEXT, b"GET or HEAD\n"
        try:
            return await route()
        except Exception:
            log.exception("%s failed", path)
            return 500, TEXT, b"internal error; the server log has the details\n"


def _request_line(head: bytes) -> tuple[str, str]:
    if len(head) > MAX_HEAD:
        raise ValueError("request head too long")
    parts = head.split(b"\r\n", 1)[0].decode("ascii", "strict").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("not an HTTP/1.x request line")
    return parts[0], parts[1]


def _response(status: int, kind: str, body: bytes, length: int) -> bytes:
    head = (f"HTTP/1.1 {status} {_PHRASES.get(status, 'Unknown')}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n")
    return head.encode("ascii") + body
