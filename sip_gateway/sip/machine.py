"""The one step of every table-driven machine of the SIP edge (transactions, publication,
subscriber dialog): look the transition up, or report our own misuse."""

from __future__ import annotations

from collections.abc import Mapping

from sip_gateway.errors import Misuse

Table = Mapping[tuple[str, str], str]


class TransactionMisuse(Misuse):
    """Our own code broke the transaction layer's contract (not a peer's fault, 500)."""


def step(table: Table, state: str, event: str, misuse: type[Misuse], what: str) -> str:
    """The state after `event` in `state`; `misuse` when the table has no such transition."""
    try:
        return table[(state, event)]
    except KeyError:
        raise misuse(f"{what}: {event} not allowed in state {state}") from None
