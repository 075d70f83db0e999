"""Sans-IO SIP messages: parse and serialize (RFC 3261 7), stream framing (18.3), header values."""

from sip_gateway.sip.framing import PING, PONG, KeepAlive, StreamEvent, StreamFramer
from sip_gateway.sip.headers import COMPACT_FORMS, LIST_HEADERS, Headers, header_key
from sip_gateway.sip.message import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    SipMessage,
    SipRequest,
    SipResponse,
    VersionNotSupported,
    parse_message,
)
from sip_gateway.sip.values import (
    ContentType,
    CSeq,
    ETag,
    Event,
    NameAddr,
    SubscriptionState,
    Via,
    parse_delta_seconds,
)
from sip_gateway.sip.client_transaction import (
    ClientEvent,
    ClientKey,
    ClientTransactionLayer,
    ResponseDisposition,
    ResponseResult,
    Retransmit,
    Terminated,
    TimedOut,
    TransportFailed,
)
from sip_gateway.sip.server_transaction import (
    Disposition,
    ReceiveResult,
    ServerKey,
    ServerTransactionLayer,
)
from sip_gateway.sip.machine import TransactionMisuse
from sip_gateway.sip.timers import TimerValues

__all__ = [
    "COMPACT_FORMS",
    "LIST_HEADERS",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "PING",
    "PONG",
    "CSeq",
    "ContentType",
    "ETag",
    "Event",
    "Headers",
    "KeepAlive",
    "NameAddr",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "StreamEvent",
    "StreamFramer",
    "SubscriptionState",
    "VersionNotSupported",
    "Via",
    "header_key",
    "parse_delta_seconds",
    "parse_message",
    "ClientEvent",
    "ClientKey",
    "ClientTransactionLayer",
    "ResponseDisposition",
    "ResponseResult",
    "Retransmit",
    "Terminated",
    "TimedOut",
    "TransportFailed",
    "Disposition",
    "ReceiveResult",
    "ServerKey",
    "ServerTransactionLayer",
    "TimerValues",
    "TransactionMisuse",
]
