"""The parts of the UDP workers that need no socket: the steering program, what crosses
the process link (framing, errors, the values themselves), and AppliedOnce."""

from __future__ import annotations

import asyncio
import pickle
import struct
from pathlib import Path

import pytest

from domain import Binding, ContactUpdate, RegisterRequest
from domain.notify_rfc import NotifyResult
from infrastructure.applied_once import AppliedOnce
from infrastructure.process_link import LinkClosed, ProcessLink
from infrastructure.remote_port import ForwardedError, RemotePort, portable, rebuilt
from infrastructure.settings import load_settings
from infrastructure.udp_workers import RESTART_DELAY_MAX, UdpWorkers
from sip_gateway.errors import IntervalTooBrief, MethodNotAllowed, ServiceUnavailable
from sip_gateway.server.handlers import ClaimingApplier
from sip_gateway.server.notify_modes import NotifyIntake, notify_mode, read_notify
from sip_gateway.transport.reuseport import steering_program

NOTIFY = (Path(__file__).resolve().parents[1] / "fixtures" / "kamailio-5.6" / "notify-cases"
          / "04-second-contact-params.sip")


# --- the steering program -------------------------------------------------------------------

def run_program(program, payload: bytes, random: int) -> int:
    """A small interpreter of the instructions the program uses, as the kernel runs them."""
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x20:  # ld word
            if k == (-0x1000 + 56) & 0xFFFFFFFF:
                accumulator = random
            elif len(payload) < k + 4:
                return 0  # a failed load ends the program with 0
            else:
                accumulator = int.from_bytes(payload[k:k + 4], "big")
        elif code == 0x15:  # jeq
            pc += jt if accumulator == k else jf
        elif code == 0x94:
            accumulator %= k
        elif code == 0x04:
            accumulator = (accumulator + k) & 0xFFFFFFFF
        elif code == 0x16:
            return accumulator
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_responses_subscribes_and_options_go_to_serve_and_requests_to_every_worker(workers):
    program = steering_program(workers)
    assert all(len(struct.pack("HBBI", *instruction)) == 8 for instruction in program)
    assert run_program(program, b"SIP/2.0 200 OK\r\n", 12345) == 0
    assert {run_program(program, b"SUBSCRIBE sip:x SIP/2.0\r\n", n) for n in range(64)} == {0}
    assert {run_program(program, b"OPTIONS sip:x SIP/2.0\r\n", n) for n in range(64)} == {0}
    assert run_program(program, b"SI", 12345) == 0
    chosen = {run_program(program, b"REGISTER sip:x SIP/2.0\r\n", n) for n in range(64)}
    assert chosen == set(range(1, workers + 1))
    assert run_program(program, b"NOTIFY sip:x SIP/2.0\r\n", 2**32 - 1) in chosen


def test_a_program_needs_a_worker():
    with pytest.raises(ValueError):
        steering_program(0)


# --- the process link -----------------------------------------------------------------------

class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def test_one_frame_per_loop_turn_read_back_in_any_pieces():
    async def scenario():
        sender = ProcessLink(lambda message: None)
        sender.connection_made(transport := FakeTransport())
        for n in range(5):
            sender.send(("call", n, "register", ("sip:a@example.com", None)))
        await asyncio.sleep(0)
        sender.send(("ready", 42))
        await asyncio.sleep(0)
        return bytes(transport.written)

    wire = asyncio.run(scenario())
    first = int.from_bytes(wire[:4], "big")
    assert len(pickle.loads(wire[4:4 + first])) == 5  # the first turn's five in one frame
    for piece in (1, 3, 7, len(wire)):
        received = []
        receiver = ProcessLink(received.append)
        receiver.connection_made(FakeTransport())
        for start in range(0, len(wire), piece):
            receiver.data_received(wire[start:start + piece])
        assert received == [*(("call", n, "register", ("sip:a@example.com", None))
                              for n in range(5)), ("ready", 42)]


def test_a_corrupt_length_closes_the_link_and_a_failing_handler_does_not():
    receiver = ProcessLink(lambda message: 1 / 0)
    receiver.connection_made(transport := FakeTransport())
    frame = pickle.dumps([("x",), ("y",)])
    receiver.data_received(len(frame).to_bytes(4, "big") + frame)  # logged, not raised
    assert not transport.closing
    receiver.data_received((2**31).to_bytes(4, "big"))
    assert transport.closing


def test_sending_on_a_closed_link_raises():
    async def scenario():
        link = ProcessLink(lambda message: None)
        link.connection_made(FakeTransport())
        link.connection_lost(None)
        with pytest.raises(LinkClosed):
            link.send(("ready", 1))

    asyncio.run(scenario())


# --- what crosses the link ------------------------------------------------------------------

@pytest.mark.parametrize("error", [
    ServiceUnavailable("store away", retry_after=5),
    IntervalTooBrief(60),
    MethodNotAllowed("INVITE is not served here", ("REGISTER", "NOTIFY")),
])
def test_our_errors_cross_with_their_class_and_fields(error):
    again = rebuilt(*pickle.loads(pickle.dumps(portable(error))))
    assert type(again) is type(error) and str(again) == str(error)
    assert vars(again) == vars(error)


def test_a_bug_in_serve_crosses_as_text():
    again = rebuilt(*pickle.loads(pickle.dumps(portable(KeyError("x")))))
    assert isinstance(again, ForwardedError) and "KeyError" in str(again)


def test_settings_requests_results_and_notify_documents_survive_pickling():
    settings = load_settings(env={"PUA_REGINFO_LISTEN_UDP_WORKERS": "2"})
    request = RegisterRequest("c1@h", 3, (ContactUpdate("sip:a@10.0.0.1", 60),),
                              received="sip:10.0.0.1:5060", path=("<sip:p@proxy;lr>",))
    binding = Binding("sip:a@10.0.0.1", 1060.0, "c1@h", 3, 1000.0, q=0.5,
                      path=("<sip:p@proxy;lr>",), instance="<urn:uuid:1>", reg_id=1,
                      params=(("+sip.instance", "<urn:uuid:1>"),))
    intake = read_notify(NOTIFY.read_bytes(), notify_mode("rfc", accept_unsolicited=True))
    result = NotifyResult(1, gap=True)
    for value in (settings, request, [binding], intake, result):
        assert pickle.loads(pickle.dumps(value)) == value


# --- the worker's port ----------------------------------------------------------------------

def test_remote_port_answers_503_once_serve_is_gone():
    async def scenario():
        port = RemotePort()
        with pytest.raises(ServiceUnavailable):
            await port.register("sip:a@example.com", None)  # not linked yet
        link = ProcessLink(lambda message: None)
        link.connection_made(FakeTransport())
        port.attach(link)
        waiting = asyncio.ensure_future(port.register("sip:a@example.com", None))
        await asyncio.sleep(0)
        port.close()
        with pytest.raises(ServiceUnavailable) as raised:
            await waiting
        assert raised.value.retry_after == 5

    asyncio.run(scenario())


def test_remote_port_returns_results_and_raises_errors_by_number():
    async def scenario():
        port = RemotePort()
        link = ProcessLink(lambda message: None)
        link.connection_made(FakeTransport())
        port.attach(link)
        first = asyncio.ensure_future(port.register("sip:a@example.com", None))
        second = asyncio.ensure_future(port.apply(NotifyIntake(None), None))
        await asyncio.sleep(0)
        port.on_error(2, *portable(IntervalTooBrief(60)))
        port.on_result(1, ["bindings"])
        assert await first == ["bindings"]
        with pytest.raises(IntervalTooBrief):
            await second

    asyncio.run(scenario())


# --- AppliedOnce ---------------------------------------------------------------------------

class CountingPort:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail_first = fail_first
        self.gate = asyncio.Event()

    async def register(self, aor, request):
        self.calls.append(("register", aor, request))
        await self.gate.wait()
        if self.fail_first and len(self.calls) == 1:
            raise ServiceUnavailable("busy", retry_after=1)
        return [f"binding of {aor} after {len(self.calls)} call(s)"]

    async def notify(self, intake, claimed):
        self.calls.append(("notify", intake.dialog_id, intake.cseq))
        await self.gate.wait()
        return NotifyResult(1)


REQUEST = RegisterRequest("c1@h", 7, (ContactUpdate("sip:a@10.0.0.1", 60),))


def test_copies_of_a_running_request_share_its_outcome():
    async def scenario():
        port = CountingPort()
        once = AppliedOnce(port)
        copies = [asyncio.ensure_future(once.register("sip:a@example.com", REQUEST))
                  for _ in range(3)]
        await asyncio.sleep(0)
        port.gate.set()
        outcomes = await asyncio.gather(*copies)
        assert len(port.calls) == 1 and outcomes == [outcomes[0]] * 3

    asyncio.run(scenario())


def test_an_applied_register_is_answered_with_the_current_bindings_until_the_window_ends():
    async def scenario():
        now = [100.0]
        port = CountingPort()
        port.gate.set()
        once = AppliedOnce(port, clock=lambda: now[0], window=32.0)
        await once.register("sip:a@example.com", REQUEST)
        now[0] += 31.0
        await once.register("sip:a@example.com", REQUEST)
        assert port.calls[1] == ("register", "sip:a@example.com", None)  # read, not applied
        now[0] += 2.0
        await once.register("sip:a@example.com", REQUEST)
        assert port.calls[2] == ("register", "sip:a@example.com", REQUEST)  # window over
        other = RegisterRequest("c1@h", 8, REQUEST.contacts)
        await once.register("sip:a@example.com", other)
        assert port.calls[3][2] is other

    asyncio.run(scenario())


def test_a_failed_request_may_be_tried_again():
    async def scenario():
        port = CountingPort(fail_first=True)
        port.gate.set()
        once = AppliedOnce(port)
        with pytest.raises(ServiceUnavailable):
            await once.register("sip:a@example.com", REQUEST)
        assert await once.register("sip:a@example.com", REQUEST)
        assert [call[2] for call in port.calls] == [REQUEST, REQUEST]

    asyncio.run(scenario())


def test_a_notify_is_applied_once_per_dialog_and_cseq():
    async def scenario():
        port = CountingPort()
        port.gate.set()
        once = AppliedOnce(port)
        first = await once.notify(NotifyIntake(None, dialog_id="d1", cseq=3), False)
        again = await once.notify(NotifyIntake(None, dialog_id="d1", cseq=3), False)
        await once.notify(NotifyIntake(None, dialog_id="d1", cseq=4), False)
        await once.notify(NotifyIntake(None), False)  # no dialog: nothing to key it by
        await once.notify(NotifyIntake(None), False)
        assert first == again == NotifyResult(1)
        assert port.calls == [("notify", "d1", 3), ("notify", "d1", 4), ("notify", None, None),
                              ("notify", None, None)]

    asyncio.run(scenario())


# --- restarts -------------------------------------------------------------------------------

def test_a_worker_that_keeps_dying_at_once_is_restarted_ever_more_slowly():
    class Exited:
        async def wait(self):
            return 1

    class Closed:
        def close(self):
            pass

    async def scenario():
        port = CountingPort()
        workers = UdpWorkers(1, load_settings(env={}), port, ClaimingApplier(port))
        pauses: list[float] = []

        async def spawn(index):
            return type("W", (), {"process": Exited(), "link": Closed(), "index": index,
                                 "counted": {}})()

        async def pause(seconds):
            pauses.append(seconds)
            if len(pauses) == 8:
                workers._stopping = True

        workers._spawn, workers._pause = spawn, pause
        await workers._keep(1)
        return pauses

    pauses = asyncio.run(scenario())
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, RESTART_DELAY_MAX, RESTART_DELAY_MAX,
                      RESTART_DELAY_MAX]
