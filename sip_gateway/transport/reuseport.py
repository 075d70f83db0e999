"""One UDP address served by several processes (Linux SO_REUSEPORT).

`serve` binds each UDP listener first, then every UDP worker binds the same address:
together they form one reuseport group, and the kernel hands each datagram to one socket
of the group. `steer` attaches a classic BPF program to the group that picks the socket: a
datagram whose payload begins with "SIP/" is a response (to our PUBLISH, SUBSCRIBE or
NOTIFY, whose client transactions live in `serve`) and one that begins with "SUBS" a
SUBSCRIBE (the notifier's watchers live in `serve`), and one that begins with "OPTI" an
OPTIONS probe (`serve` knows whether the store is there), so these go to the group's first
socket, serve's; any other datagram goes to one of the workers, drawn at random. The
kernel numbers a group's sockets in the order they joined, and when one leaves, the last
one takes its number: serve's socket, which joined first and leaves last, keeps number 0.
While a worker is missing the program may name a number the group no longer has; the
kernel then picks by the flow hash, serve included, which serves requests too.

A reuseport group admits any socket of the same user that asks to join: `bind_shared`
probes the address without SO_REUSEPORT first, so a `serve` never joins a group that
another process already holds (it refuses to start, as a plain bind would). The probe
must let go before the group forms; another process of the same user binding the port
in those microseconds with SO_REUSEPORT of its own would share the traffic (the README
says how to check a host for that).
"""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_REUSEPORT_CBPF = 51  # <asm-generic/socket.h>; Python's socket module lacks it

# Classic BPF opcodes (<linux/filter.h>).
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_MOD_K = 0x04 | 0x90 | 0x00  # BPF_ALU | BPF_MOD | BPF_K
_ADD_K = 0x04 | 0x00 | 0x00  # BPF_ALU | BPF_ADD | BPF_K
_RET_A = 0x06 | 0x10  # BPF_RET | BPF_A
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K
_SKF_AD_RANDOM = -0x1000 + 56  # SKF_AD_OFF + SKF_AD_RANDOM: a random 32-bit number
_RESPONSE_START = int.from_bytes(b"SIP/", "big")
_SUBSCRIBE_START = int.from_bytes(b"SUBS", "big")
_OPTIONS_START = int.from_bytes(b"OPTI", "big")


def steering_program(workers: int) -> list[tuple[int, int, int, int]]:
    """The program, as (code, jt, jf, k) instructions: responses, SUBSCRIBEs (the
    notifier's watchers live in serve) and OPTIONS (serve knows whether the store is
    there) to socket 0, anything else to socket 1..workers at random. A datagram shorter than 4 bytes fails the load,
    and the program then returns 0 (serve)."""
    if workers < 1:
        raise ValueError("steering needs at least one worker")
    return [
        (_LD_W_ABS, 0, 0, 0),  # A = the payload's first four bytes
        (_JEQ_K, 6, 0, _RESPONSE_START),  # "SIP/": a response -> serve
        (_JEQ_K, 5, 0, _SUBSCRIBE_START),  # "SUBS": a SUBSCRIBE -> serve
        (_JEQ_K, 4, 0, _OPTIONS_START),  # "OPTI": an OPTIONS probe -> serve
        (_LD_W_ABS, 0, 0, _SKF_AD_RANDOM & 0xFFFFFFFF),  # A = random
        (_MOD_K, 0, 0, workers),  # A = A % workers
        (_ADD_K, 0, 0, 1),  # A = A + 1: a worker's socket
        (_RET_A, 0, 0, 0),
        (_RET_K, 0, 0, 0),  # serve's socket
    ]


def steer(sock: socket.socket, workers: int) -> None:
    """Attach the steering program to the reuseport group `sock` belongs to."""
    program = b"".join(struct.pack("HBBI", *instruction)
                       for instruction in steering_program(workers))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }: built with
    # ctypes so that the pointer is a real address that lives through the call.
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def bind_shared(host: str, port: int, first: bool) -> socket.socket:
    """A UDP socket bound to (host, port) in a reuseport group. `first` (serve): refuse
    an address some other socket holds already, with the OSError a plain bind raises."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if first:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, port))  # taken (a reuseport group included): OSError here
            port = probe.getsockname()[1]  # port 0: the kernel's pick, kept for the group
    sock = _reusing(family)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _reusing(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setblocking(False)
    return sock
