"""Bindings seeded fast through the store's command path: `contact add` in batches.

`contact add` from the command line costs a process per binding; here the same command
(CreateContact, decided by the same handler) runs in units of work of BATCH commands, one
transaction each, as the group commit would. Each AoR `<prefix><n>@example.com` gets
`per_aor` bindings `sip:<prefix><n>-<k>@192.0.2.<k>:5060`, each with a lifetime drawn
uniformly from `[first, first + spread)` seconds. A command's lifetime is whole seconds
(as a REGISTER's), so each batch is decided at a random moment of the second before it:
the expiries fall at any fraction of a second, not on one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from domain import ContactUpdate
from infrastructure.bootstrap import Service
from infrastructure.command_handlers import execute
from infrastructure.commands import CreateContact
from infrastructure.unit_of_work import UnitOfWork

BATCH = 100  # commands per transaction; each batch decided at its own fraction of a second


def seed_bindings(service: Service, count: int, first: float, spread: float, per_aor: int = 4,
                  prefix: str = "exp", rng: random.Random | None = None,
                  clock: Callable[[], float] = time.time) -> dict[str, float]:
    """Create `count` bindings; returns each one's contact URI with its absolute expiry."""
    rng = rng or random.Random(16)
    expiries: dict[str, float] = {}
    commands = []
    for n in range(count):
        aor, k = divmod(n, per_aor)
        contact = f"sip:{prefix}{aor}-{k}@192.0.2.{k + 1}:5060"
        lifetime = int(first + rng.random() * spread)
        commands.append(CreateContact(f"sip:{prefix}{aor}@example.com",
                                      ContactUpdate(contact, lifetime), f"seed-{n}", "seed"))
    for start in range(0, len(commands), BATCH):
        now = clock() - rng.random()
        uow = UnitOfWork(service.app, now)
        for command in commands[start:start + BATCH]:
            uow.begin_command()
            execute(uow, command)
            expiries[command.update.uri] = now + command.update.expires
        uow.commit()
    service.catch_up()
    return expiries
