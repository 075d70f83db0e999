"""The asyncio sockets both sides use: listeners, outbound TCP links, one sink for all."""

from sip_gateway.transport.delivery import Address, Arrival, MessageSink, Send
from sip_gateway.transport.endpoints import Transports, open_datagrams
from sip_gateway.transport.listeners import TcpLimits, parse_listen

__all__ = ["Address", "Arrival", "MessageSink", "Send", "TcpLimits", "Transports", "open_datagrams",
           "parse_listen"]
