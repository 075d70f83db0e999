"""The event loop `serve` and its UDP workers run on: `[node] event_loop`."""

from __future__ import annotations


def loop_factory(name: str):
    """uvloop's loop (libuv: cheaper sockets and callbacks), or None for the standard
    library's."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None
