"""The command executor with group commit.

Theory of operation. Requests become commands and wait in one queue. A single worker
takes everything queued while the previous transaction ran (up to `max_batch`), applies
the commands in arrival order to aggregates loaded once for the batch (so per-AoR order is
the arrival order), and saves every change in one transaction on the store's thread. Only
then are the callers' futures resolved, so a 200 OK is never sent for a change that is
not durable. One thread hop per batch, not per request.

A command refused by the domain (out-of-order CSeq, ...) gets its error and changes
nothing: domain commands validate before they record events. A save that conflicts with
another node that wrote one of the batch's AoRs first runs the batch again on freshly
loaded aggregates, after a short jittered pause, up to BATCH_ATTEMPTS times. If a
command fails unexpectedly, or the conflicts go on, the batch is re-run one command per
transaction (each with its own conflict retries), so only the failing command fails; a
command whose AoR stays contended through all of them fails with StoreContended (503).

When the store itself cannot be reached (connection refused or lost, pool exhausted,
SQLite locked), or a transaction has not ended after `store_timeout` seconds, the batch
and everything queued behind it fail with StoreUnavailable, and so does every command
submitted while that transaction is still running or in the next `probe_interval`
seconds, without waiting on the store (the gateway answers 503 with Retry-After; nothing
is acknowledged, so nothing acknowledged is lost). After that one batch is let through
as a probe; the first transaction that commits closes the circuit. Under overload, a
command that would find `max_pending` others waiting is refused with StoreBusy at once
instead of being answered after the client gave up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from domain import DomainError, PuaReginfoError
from infrastructure.aggregate_cache import AggregateCache
from infrastructure.application import StoreContended, conflict_pause
from infrastructure.clock import Clock
from infrastructure.command_handlers import aggregates_named, execute
from infrastructure.commands import Command
from infrastructure.unit_of_work import UnitOfWork
from sip_gateway.tallies import Histogram

log = logging.getLogger("pua_reginfo.executor")
STORE_DOWN = (OperationalError, InterfaceError)  # the store, not the command, failed
PROBE_INTERVAL = 1.0  # seconds between attempts while the store is unavailable
STORE_TIMEOUT = 8.0  # seconds a transaction may take before its callers hear 503
MAX_PENDING = 5000  # commands that may wait for the store; more are refused (503)
BATCH_BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500)  # commands per transaction
BATCH_ATTEMPTS = 3  # saves of a whole batch before its commands are saved one by one


class StoreUnavailable(PuaReginfoError):
    """The event store cannot be reached now; nothing of the command was stored."""

    sip_status = 503
    cause = "store_down"  # for the metrics of 503s

    def __init__(self, reason: str, state: str = "unavailable") -> None:
        super().__init__(f"event store {state}: {reason}")
        self.reason = reason


class StoreBusy(StoreUnavailable):
    """More commands wait for the store than it can take soon (overload, RFC 6357)."""

    cause = "overload"

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} commands waiting", state="busy")


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


class GroupCommitExecutor:
    """Serialises commands into group-committed transactions on one store thread."""

    def __init__(self, app: Any, clock: Clock, *, cache: AggregateCache | None = None,
                 max_batch: int = 500, store_thread: ThreadPoolExecutor | None = None,
                 probe_interval: float = PROBE_INTERVAL,
                 store_timeout: float = STORE_TIMEOUT, max_pending: int = MAX_PENDING):
        self.app, self.clock = app, clock
        self.max_batch, self.cache = max_batch, cache
        self.recordings: deque = deque()  # what batches committed, for the projections
        self.store_thread = store_thread or ThreadPoolExecutor(1, thread_name_prefix="store")
        self._queue: deque[tuple[Command, asyncio.Future]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._listeners: list[Callable[[], None]] = []
        self.batches = 0
        self.commands = 0
        self.batch_sizes = Histogram(BATCH_BOUNDS)  # commands per transaction
        self.commit_seconds = Histogram()  # from a batch's start to its outcomes
        self.probe_interval, self.store_timeout = probe_interval, store_timeout
        self.max_pending = max_pending
        self._overdue = False  # a transaction outlived store_timeout and still runs
        self.unavailable: str | None = None  # why the store is down, while it is
        self._probe_at = 0.0

    @property
    def waiting(self) -> int:
        """Commands queued for the next transaction."""
        return len(self._queue)

    def on_commit(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def submit(self, command: Command) -> Any:
        """Queue `command`; returns its result once its transaction is committed."""
        if self._worker is None or self._worker.done():
            raise RuntimeError("the executor is not running")
        loop = asyncio.get_running_loop()
        if self.unavailable is not None and (self._overdue or loop.time() < self._probe_at):
            raise StoreUnavailable(self.unavailable)
        if len(self._queue) >= self.max_pending:
            raise StoreBusy(len(self._queue))
        future = loop.create_future()
        self._queue.append((command, future))
        self._wakeup.set()
        return await future

    async def stop(self) -> None:
        """Finish every queued command, then stop."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while self._queue:
            await self._commit(self._take())

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await self._commit(self._take())

    def _take(self) -> list[tuple[Command, asyncio.Future]]:
        count = min(len(self._queue), self.max_batch)
        return [self._queue.popleft() for _ in range(count)]

    async def _in_time(self, job: asyncio.Future, batch) -> list[Outcome]:
        """The batch's outcomes. A transaction slower than store_timeout fails its callers
        (and those queued) at once; it is still waited for, and only tells whether the
        store is back."""
        try:
            return await asyncio.wait_for(asyncio.shield(job), self.store_timeout)
        except asyncio.TimeoutError:
            pass
        reason = f"no answer within {self.store_timeout:g} s"
        self._store_down(reason, asyncio.get_running_loop().time())
        for _, future in batch + self._take_all():
            if not future.done():
                future.set_exception(StoreUnavailable(reason))
        self._overdue = True
        try:
            return await asyncio.shield(job)
        finally:
            self._overdue = False

    def _take_all(self) -> list[tuple[Command, asyncio.Future]]:
        taken = list(self._queue)
        self._queue.clear()
        return taken

    def store_down(self, reason: str) -> None:
        """Another job found the store gone (serve's sweeper reads it every second):
        commands fail fast from now on, and OPTIONS says 503, until it is back."""
        self._store_down(reason, asyncio.get_running_loop().time())

    def store_back(self) -> None:
        """Another job read the store again: commands go to it from now on."""
        if self.unavailable is not None and not self._overdue:
            log.warning("event store available again")
            self.unavailable = None

    def _store_down(self, reason: str, now: float) -> None:
        if self.unavailable is None:
            log.error("event store unavailable: %s; commands fail fast for %.1f s between "
                      "probes", reason, self.probe_interval)
        self.unavailable, self._probe_at = reason, now + self.probe_interval

    async def _commit(self, batch: list[tuple[Command, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        commands = [command for command, _ in batch]
        self.batch_sizes.observe(len(commands))
        started = time.perf_counter()
        job = loop.run_in_executor(self.store_thread, self._transaction, commands)
        try:
            outcomes = await self._in_time(job, batch)
        except STORE_DOWN as error:  # the store is gone: fail fast until it is back
            self._store_down(str(error), loop.time())
            batch += self._take_all()
            outcomes = [Outcome(error=StoreUnavailable(str(error)))] * len(batch)
        except Exception as error:  # the store itself failed: every caller hears it
            log.error("transaction failed: %s", error)
            outcomes = [Outcome(error=error)] * len(batch)
        else:
            down = next((o.error for o in outcomes if isinstance(o.error, StoreUnavailable)), None)
            if down is not None:  # lost part-way through one-by-one transactions
                self._store_down(down.reason, loop.time())
                failed = self._take_all()
                batch += failed
                outcomes += [Outcome(error=down)] * len(failed)
            elif self.unavailable is not None:
                log.warning("event store available again")
                self.unavailable = None
        self.batches += 1
        self.commands += len(batch)
        self.commit_seconds.observe(time.perf_counter() - started)
        for (_, future), outcome in zip(batch, outcomes):
            if future.done():
                continue
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome.value)
        for listener in self._listeners:
            listener()

    # On the store thread -------------------------------------------------------------

    def _transaction(self, commands: list[Command]) -> list[Outcome]:
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:
                time.sleep(conflict_pause(attempt))
            decided = self._decide(commands)
            if decided is None:
                break
            uow, outcomes = decided
            try:
                self.recordings.extend(uow.commit())  # the projections follow after
            except IntegrityError:  # another node wrote one of these AoRs first
                uow.abandon()
                continue
            except BaseException:
                uow.abandon()
                raise
            return outcomes
        return self._one_by_one(commands)

    def take_recordings(self) -> list:
        """What committed since the last call, oldest first (on the store thread)."""
        taken = list(self.recordings)
        self.recordings.clear()
        return taken

    def _decide(self, commands: list[Command]) -> tuple[UnitOfWork, list[Outcome]] | None:
        """Every command applied in one unit of work; None if one must fail on its own."""
        uow = UnitOfWork(self.app, self.clock.now(), self.cache)
        uow.prefetch(key for command in commands for key in aggregates_named(self.app, command))
        outcomes = []
        for command in commands:
            outcome = self._decide_one(uow, command)
            if outcome is not None and outcome.error is not None and uow.forget_cached():
                outcome = self._decide_one(uow, command)  # refused on cached state: again
            if outcome is None:
                uow.abandon()
                return None
            outcomes.append(outcome)
        return uow, outcomes

    def _decide_one(self, uow: UnitOfWork, command: Command) -> Outcome | None:
        """The command applied in `uow`, or refused; None if it must fail on its own."""
        uow.begin_command()
        try:
            return Outcome(execute(uow, command))
        except DomainError as error:
            return None if uow.command_changed() else Outcome(error=error)
        except STORE_DOWN:
            uow.abandon()
            raise
        except Exception:  # a bug must fail its own command, not the batch
            log.exception("command failed: %r", command)
            return None

    def _one_by_one(self, commands: list[Command]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for index, command in enumerate(commands):
            try:
                outcomes.append(Outcome(self.app.run(command, self.clock.now(), self.cache)))
            except DomainError as error:
                outcomes.append(Outcome(error=error))
            except StoreContended as error:
                log.warning("command given up, its AoR stays contended: %r", command)
                outcomes.append(Outcome(error=error))
            except STORE_DOWN as error:  # this one and the rest cannot be stored now
                unavailable = StoreUnavailable(str(error))
                return outcomes + [Outcome(error=unavailable)] * (len(commands) - index)
            except Exception as error:
                log.exception("command failed on its own: %r", command)
                outcomes.append(Outcome(error=error))
        return outcomes
