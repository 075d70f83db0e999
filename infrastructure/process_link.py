"""A link between two processes of one `serve`: serve and a UDP worker, over a socketpair.

Messages are tuples of picklable values (the link only ever joins processes this service
started from the same code, never a network peer). What one loop turn sends goes as one
frame, a 4-byte big-endian length and the pickled list: under load a frame carries many
messages for one write and one read.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pua_reginfo.serve")
MAX_FRAME = 64 * 1024 * 1024  # bytes; a longer frame means the stream is corrupt
_LENGTH = 4

Message = tuple[Any, ...]


class LinkClosed(ConnectionError):
    """The other process is gone (or going): nothing more can be sent to it."""


class ProcessLink(asyncio.Protocol):
    def __init__(self, on_message: Callable[[Message], None],
                 on_closed: Callable[[], None] | None = None) -> None:
        self.on_message, self.on_closed = on_message, on_closed
        self.transport: asyncio.Transport | None = None
        self._outbox: list[Message] = []
        self._scheduled = False
        self._buffer = bytearray()
        self._closed = asyncio.Event()

    @classmethod
    async def open(cls, sock: socket.socket, on_message: Callable[[Message], None],
                   on_closed: Callable[[], None] | None = None) -> ProcessLink:
        """The link over `sock` (one end of a socketpair), reading from now on."""
        link = cls(on_message, on_closed)
        await asyncio.get_running_loop().create_connection(lambda: link, sock=sock)
        return link

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def send(self, message: Message) -> None:
        """Queue `message`; it leaves with the rest of this loop turn's messages."""
        if self._closed.is_set() or self.transport is None or self.transport.is_closing():
            raise LinkClosed("the other process is gone")
        self._outbox.append(message)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def close(self) -> None:
        """Send what is queued, then close."""
        if self.transport is not None and not self.transport.is_closing():
            self._flush()
            self.transport.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _LENGTH:
            size = int.from_bytes(buffer[start:start + _LENGTH], "big")
            if size > MAX_FRAME:
                log.error("process link: a frame of %d bytes; closing the link", size)
                self.transport.close()
                return
            end = start + _LENGTH + size
            if len(buffer) < end:
                break
            messages = pickle.loads(buffer[start + _LENGTH:end])
            start = end
            for message in messages:
                try:
                    self.on_message(message)
                except Exception:  # one message's failure must not end the link
                    log.exception("process link: a message could not be handled")
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._outbox.clear()
        self._closed.set()
        if self.on_closed is not None:
            self.on_closed()

    # Internals ------------------------------------------------------------------------

    def _flush(self) -> None:
        self._scheduled = False
        if not self._outbox or self.transport is None or self.transport.is_closing():
            self._outbox.clear()
            return
        frame = pickle.dumps(self._outbox, protocol=pickle.HIGHEST_PROTOCOL)
        self._outbox = []
        self.transport.write(len(frame).to_bytes(_LENGTH, "big") + frame)
