"""In-memory aggregates for the targets that reach the domain (the wiring of
tests/unit/test_notify_appliers.py): AoRs made on first use, the check that a refused
command left none of its changes behind, and the check that an aggregate's events
replay to the state it holds (what a restart or another node would read)."""

from __future__ import annotations

from domain import AddressOfRecord, normalize_aor
from domain.aor import AorIdentity
from domain.binding import ContactUpdate, RegisterRequest
from domain.events import RegistrationInitialized

T0 = 1_800_000_000.0
NODE = "fuzz"


class Aors:
    """AoR aggregates kept in memory, created on first use; `registered` AoRs start with
    one local binding (made a minute before T0 and committed)."""

    def __init__(self, *registered: str) -> None:
        self.aors: dict = {}
        self.committed: dict = {}  # aggregate id -> its events already "saved"
        for aor in registered:
            aggregate = self.load(normalize_aor(aor))
            aggregate.register(RegisterRequest(
                callid=f"{aor}-fuzz", cseq=1,
                contacts=(ContactUpdate("sip:fuzz@127.0.0.1:5999", 3600),)), NODE, T0 - 60)
            self.committed[aggregate.id] = aggregate.collect_events()

    def load(self, identity: AorIdentity) -> AddressOfRecord:
        if identity.id not in self.aors:
            self.aors[identity.id] = AddressOfRecord.initialize(identity, "fuzz", NODE,
                                                                "fuzz", T0 - 60)
        return self.aors[identity.id]

    def replayed(self) -> bool:
        """Whether every aggregate's events, replayed, give its state and bindings."""
        for aggregate in self.aors.values():
            replayed = None
            for event in [*self.committed.get(aggregate.id, ()), *aggregate.pending_events]:
                replayed = event.mutate(replayed)
            if (replayed.state, replayed.bindings) != (aggregate.state, aggregate.bindings):
                return False
        return True

    def unchanged(self) -> bool:
        """Whether no aggregate recorded more than its own creation since committed."""
        return all(isinstance(event, RegistrationInitialized)
                   for aggregate in self.aors.values() for event in aggregate.pending_events)
