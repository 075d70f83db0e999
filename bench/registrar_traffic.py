"""A registrar's traffic as service commands, for stores of a given number of events.

Deterministic (seeded): local AoRs with one to three devices each register, refresh,
re-register after a reboot (new Call-ID), de-register (one contact, or `*`) and let
bindings lapse; a sweeper records `expired` for what lapsed, as `serve` does; an
administrator now and then creates, shortens, deactivates, rejects or puts on probation a
binding; and a notifier reports remote AoRs in full-state reginfo documents (RFC mode,
unsolicited NOTIFYs accepted) whose contacts carry +sip.instance/reg-id, GRUUs,
received, Path and User-Agent, and end with each of the terminating events. Commands are
group-committed like the gateway's (one unit of work per batch, aggregates cached between
batches) and the usrloc view follows each commit from what it committed, so the store
ends with the view built incrementally.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

from domain import ContactUpdate, DomainError, RegisterRequest
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo, TempGruu
from infrastructure.aggregate_cache import AggregateCache
from infrastructure.bootstrap import Service
from infrastructure.command_handlers import execute
from infrastructure.commands import (ApplyNotify, Command, CreateContact, DeactivateContact,
                                     ExpireDue, NotifyContext, PutOnProbation, Register,
                                     RejectContact, ShortenContact)
from infrastructure.unit_of_work import UnitOfWork
from sip_gateway.server.notify_modes import notify_mode

T0 = 1_900_000_000.0
BATCH = 50  # commands per transaction (a group commit)
STEP = 1.0  # simulated seconds between transactions
SWEEP_EVERY = 10  # transactions between two sweeps for lapsed bindings
TERMINATING = ("unregistered", "expired", "deactivated", "probation", "rejected")


@dataclass
class Device:
    aor: str
    contact: str
    instance: str | None
    reg_id: int | None
    expires: int
    callid: str
    cseq: int = 0
    bound: bool = False
    boots: int = 0


class RegistrarTraffic:
    """Commands of `local` registering AoRs and `remote` notified ones, by batch."""

    def __init__(self, local: int, remote: int, seed: int = 3680):
        self.rng = random.Random(seed)
        self.devices: list[Device] = []
        for a in range(local):
            for d in range(1 + (a % 3 == 0) + (a % 7 == 0)):
                outbound = (a + d) % 4 == 0
                self.devices.append(Device(
                    aor=f"sip:user{a}@example.com",
                    contact=f"sip:user{a}@10.{a % 200}.{d}.{a % 250 + 1}:{5060 + d};transport=udp",
                    instance=f"<urn:uuid:{UUID(int=a * 8 + d)}>" if outbound else None,
                    reg_id=1 if outbound else None,
                    expires=600 if (a + d) % 5 == 0 else 3600,
                    callid=f"dev-{a}-{d}"))
        self.remote = [RemoteAoR(r) for r in range(remote)]
        self.mode = notify_mode("rfc", accept_unsolicited=True)

    def batches(self) -> Iterator[tuple[float, list[Command]]]:
        n = 0
        while True:
            n += 1
            yield T0 + n * STEP, [self._command() for _ in range(BATCH)]

    def _command(self) -> Command:
        roll = self.rng.random()
        if roll < 0.08:
            remote = self.rng.choice(self.remote)
            return ApplyNotify(remote.document(self.rng),
                               NotifyContext(self.mode, remote.subscription))
        device = self.rng.choice(self.devices)
        if roll < 0.085:
            return self._admin(device)
        return self._register(device)

    def _register(self, device: Device) -> Register:
        roll = self.rng.random()
        expires = device.expires
        if device.bound and roll < 0.10:
            expires, device.bound = 0, False
        elif device.bound and roll < 0.12:  # rebooted: a new Call-ID
            device.boots += 1
            device.callid, device.cseq = f"dev-{device.contact}-{device.boots}", 0
        else:
            device.bound = True
        device.cseq += 1
        if expires == 0 and roll < 0.005:  # Contact: *
            return Register(device.aor, RegisterRequest(device.callid, device.cseq, (),
                                                        wildcard=True))
        update = ContactUpdate(device.contact, expires, q=0.5 if device.instance else None,
                               instance=device.instance, reg_id=device.reg_id,
                               methods=("INVITE", "MESSAGE") if device.instance else ())
        path = ("<sip:edge1.example.com;lr>",) if device.instance else ()
        received = f"udp:198.51.100.{len(device.aor) % 250}:5060"
        return Register(device.aor, RegisterRequest(
            device.callid, device.cseq, (update,), received=received, path=path,
            user_agent="bench-phone/2.1", socket="udp:127.0.0.1:5060"))

    def _admin(self, device: Device) -> Command:
        cause = "bench admin"
        choice = self.rng.randrange(5)
        if choice == 0:
            extra = f"sip:admin-{self.rng.randrange(10**6)}@192.0.2.7"
            return CreateContact(device.aor, ContactUpdate(extra, 1800), "admin-call", cause)
        device.bound = False if choice > 1 else device.bound
        if choice == 1:
            return ShortenContact(device.aor, device.contact, 30, cause)
        if choice == 2:
            return DeactivateContact(device.aor, device.contact, cause)
        if choice == 3:
            return RejectContact(device.aor, device.contact, cause)
        return PutOnProbation(device.aor, device.contact, 120, cause)


class RemoteAoR:
    """An AoR another registrar holds, reported to us by its notifier."""

    def __init__(self, n: int):
        self.n = n
        self.aor = f"sip:remote{n}@peer.example.net"
        self.subscription = f"peer-{n}"
        self.version = 0
        self.cseq = 0

    def document(self, rng: random.Random) -> ReginfoDocument:
        self.version += 1
        self.cseq += 1
        contacts = tuple(self._contact(c, rng) for c in range(1 + self.n % 3))
        return ReginfoDocument(self.version, "full", (RegistrationInfo(
            self.aor, f"reg-{self.n}", "active", contacts),))

    def _contact(self, c: int, rng: random.Random) -> ContactInfo:
        uri = f"sip:remote{self.n}@203.0.113.{self.n % 250 + 1}:{5070 + c}"
        params: tuple[tuple[str, str], ...] = ()
        gruus: dict = {}
        if c == 1:  # an outbound flow with GRUUs
            instance = f"<urn:uuid:{UUID(int=10**9 + self.n)}>"
            params = (("+sip.instance", f'"{instance}"'), ("reg-id", "1"), ("video", ""))
            gruus = dict(pub_gruu=f"sip:remote{self.n}@peer.example.net;gr=urn:uuid:{self.n}",
                         temp_gruu=TempGruu(f"sip:tgruu.{self.n}.{self.cseq}@peer.example.net;gr",
                                            1))
        roll = rng.random()
        if roll < 0.15:
            return ContactInfo(uri=uri, id=f"c{c}", state="terminated",
                               event=TERMINATING[self.cseq % len(TERMINATING)], expires=0,
                               callid=f"remote-{self.n}-{c}", cseq=self.cseq,
                               retry_after=60 if self.cseq % 5 == 3 else None,
                               unknown_params=params)
        return ContactInfo(
            uri=uri, id=f"c{c}", state="active", event="registered" if roll < 0.3 else "refreshed",
            expires=3600, q=0.8 if c else None, callid=f"remote-{self.n}-{c}", cseq=self.cseq,
            display_name="Remote Phone" if c == 2 else None, unknown_params=params,
            received="sip:198.18.0.9:5060" if c else None,
            path="<sip:p1.peer.example.net;lr>,<sip:p2.peer.example.net;lr>" if c == 2 else None,
            user_agent=f"peer-phone/{c}", **gruus)


def fill(service: Service, traffic: RegistrarTraffic, events: int) -> int:
    """Run batches until the store holds at least `events` events; returns how many."""
    cache = AggregateCache(len(traffic.devices) + len(traffic.remote) + 1000)
    stored = service.app.recorder.max_notification_id() or 0
    for number, (now, commands) in enumerate(traffic.batches()):
        if stored >= events:
            return stored
        if number % SWEEP_EVERY == 0:
            due = tuple(UUID(a) for a in service.view.due_aor_ids(now))
            if due:
                commands.append(ExpireDue(due))
        uow = UnitOfWork(service.app, now, cache)
        for command in commands:
            uow.begin_command()
            try:
                execute(uow, command)
            except DomainError:  # refused, like a gateway request answered 4xx
                if uow.command_changed():
                    raise
        recordings = uow.commit()
        service.project(recordings, publishing=False)
        if recordings:
            stored = recordings[-1].notification.id
    return stored
