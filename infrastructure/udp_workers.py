"""serve's UDP workers: start them, answer what they ask, start again one that died, stop.

With `[listen] udp_workers = N`, serve starts N worker processes (infrastructure/
udp_worker.py), each linked to serve by a socketpair. A worker sends "call" messages
(a REGISTER or NOTIFY to apply); serve runs each as it runs its own requests (a NOTIFY
claimed first by the subscription keeper when it is in one of our dialogs, then the
group-commit executor) and sends back the result or the error. A worker
that exits for any reason is started again after RESTART_DELAY (doubled up to
RESTART_DELAY_MAX while it keeps dying within seconds of its start); meanwhile the kernel
gives its share of the datagrams to the others and to serve (reuseport.py). On stop,
each worker is told to finish: it answers what it has in flight and exits; one that has
not within STOP_TIMEOUT is killed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain import PuaReginfoError
from infrastructure.process_link import LinkClosed, Message, ProcessLink
from infrastructure.remote_port import CALL, ERROR, RESULT, portable
from infrastructure.settings import Settings
from infrastructure.udp_worker import READY, RESPONSE, SETTINGS, STOP, TALLIES
from sip_gateway.server.handlers import NonceAdmitter, NotifyApplier
from sip_gateway.server.ports import RegistrationPort
from sip_gateway.tallies import RequestTallies
from sip_gateway.transport import Address

log = logging.getLogger("pua_reginfo.serve")
RESTART_DELAY = 1.0  # seconds before a worker that exited is started again
RESTART_DELAY_MAX = 30.0  # ... when it keeps exiting within STEADY seconds of its start
STEADY = 10.0
START_TIMEOUT = 20.0  # seconds serve waits for its workers to be ready before it serves anyway
STOP_TIMEOUT = 10.0  # seconds a stopping worker has to finish before it is killed
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    link: ProcessLink
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    counted: dict = field(default_factory=dict)  # its RequestTallies, as it last told


class UdpWorkers:
    def __init__(self, count: int, settings: Settings, port: RegistrationPort,
                 notifies: NotifyApplier, nonces: NonceAdmitter | None = None,
                 secret: bytes | None = None) -> None:
        self.count, self.settings, self.secret = count, settings, secret
        self.methods = {"register": port.register, "notify": notifies.apply}
        if nonces is not None:  # [auth]: serve counts every process's nonce uses
            self.methods["admit"] = nonces.admit
        self.workers: dict[int, _Worker] = {}
        self._keepers: list[asyncio.Task] = []
        self._answers: set[asyncio.Task] = set()
        self._stopping = False
        self._addresses: list[Address] = []
        self._on_response: Callable[[bytes], None] = lambda data: None
        self._started: dict[int, asyncio.Event] = {}
        self._pause = asyncio.sleep  # how a restart waits (tests count the pauses)
        self._retired = RequestTallies()  # what workers that exited had counted

    def tallies(self) -> RequestTallies:
        """What the workers counted, those that exited included."""
        total = RequestTallies()
        total.absorb(self._retired.snapshot())
        for worker in self.workers.values():
            total.absorb(worker.counted)
        return total

    async def start(self, addresses: list[Address], on_response: Callable[[bytes], None]) -> None:
        """Start every worker on serve's UDP `addresses`; wait until they serve (at most
        START_TIMEOUT). `on_response`: a SIP response that reached a worker."""
        self._addresses, self._on_response = addresses, on_response
        loop = asyncio.get_running_loop()
        for index in range(1, self.count + 1):
            self._started[index] = asyncio.Event()
            self._keepers.append(loop.create_task(self._keep(index), name=f"udp-worker-{index}"))
        waits = [asyncio.ensure_future(started.wait()) for started in self._started.values()]
        _, late = await asyncio.wait(waits, timeout=START_TIMEOUT)
        for waiting in late:
            waiting.cancel()
        if late:
            log.warning("%d udp worker(s) not ready after %.0f s; serving without them",
                        len(late), START_TIMEOUT)

    async def stop(self) -> None:
        """Let every worker finish what it has in flight and exit."""
        self._stopping = True
        workers = list(self.workers.values())
        for worker in workers:
            try:
                worker.link.send((STOP,))
            except LinkClosed:
                pass
        for worker in workers:
            try:
                await asyncio.wait_for(worker.process.wait(), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("udp worker %d did not stop in %.0f s: killed", worker.index,
                            STOP_TIMEOUT)
                worker.process.kill()
                await worker.process.wait()
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        if self._answers:
            await asyncio.gather(*self._answers, return_exceptions=True)

    # Internals -----------------------------------------------------------------------

    async def _keep(self, index: int) -> None:
        """Run worker `index`, and again whenever it exits, until serve stops. A worker
        that keeps dying before it served a while (a broken installation, no memory) is
        started again ever more slowly, up to RESTART_DELAY_MAX, not in a tight loop."""
        loop = asyncio.get_running_loop()
        delay = RESTART_DELAY
        while not self._stopping:
            started = loop.time()
            try:
                worker = await self._spawn(index)
            except (OSError, ConnectionError) as error:
                log.error("udp worker %d could not be started: %s", index, error)
            else:
                self.workers[index] = worker
                code = await worker.process.wait()
                worker.link.close()
                if self._stopping:
                    return
                del self.workers[index]
                self._retired.absorb(worker.counted)
                log.warning("udp worker %d exited (%s); starting it again in %.0f s", index,
                            _exit_text(code), delay)
            await self._pause(delay)
            served = loop.time() - started - delay
            delay = RESTART_DELAY if served >= STEADY else min(delay * 2, RESTART_DELAY_MAX)

    async def _spawn(self, index: int) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
            path = os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                 os.environ.get("PYTHONPATH")]))
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "infrastructure.udp_worker", "--index", str(index),
                "--link-fd", str(theirs.fileno()), "--log-level", str(level),
                "--log-format", self.settings.log.format,
                "--event-loop", self.settings.node.event_loop,
                pass_fds=(theirs.fileno(),), env={**os.environ, "PYTHONPATH": path},
                stdin=asyncio.subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        worker: _Worker | None = None

        def on_message(message: Message) -> None:
            self._on_message(worker, message)

        link = await ProcessLink.open(ours, on_message)
        worker = _Worker(index, process, link)
        link.send((SETTINGS, self.settings, self._addresses, self.secret))
        return worker

    def _on_message(self, worker: _Worker, message: Message) -> None:
        kind = message[0]
        if kind == CALL:
            _, number, method, args = message
            task = asyncio.get_running_loop().create_task(
                self._answer(worker.link, number, method, args))
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)
        elif kind == RESPONSE:
            self._on_response(message[1])
        elif kind == TALLIES:
            worker.counted = message[1]
        elif kind == READY:
            worker.ready.set()
            self._started[worker.index].set()

    async def _answer(self, link: ProcessLink, number: int, method: str, args: tuple) -> None:
        try:
            run = self.methods.get(method)
            if run is None:
                raise ValueError(f"a worker asked for {method!r}")
            reply: tuple[Any, ...] = (RESULT, number, await run(*args))
        except Exception as error:
            if not isinstance(error, PuaReginfoError):
                log.error("a udp worker's %s failed", method, exc_info=error)
            reply = (ERROR, number, *portable(error))
        if not link.closed:
            try:
                link.send(reply)
            except LinkClosed:
                pass  # the worker died meanwhile; its UA retransmits to another


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit status {code}"
