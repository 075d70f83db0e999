"""A state machine specification declared with `transitions`, used as data only.

The `Machine` is model-less: nothing is ever attached to it, so no trigger can change an
aggregate's state without an event. From it we derive a plain `(state, event) -> state`
table that commands check, and the Mermaid diagram that the README shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from transitions import Machine

from domain.errors import IllegalTransition


@dataclass(frozen=True)
class Transition:
    source: str
    event: str
    dest: str


class StateMachineSpec:
    """States and transitions of one machine (RFC 3680, RFC 6665), as a checkable table."""

    def __init__(self, name: str, states: list[str], initial: str, transitions: list[Transition]):
        self.name = name
        self.machine = Machine(
            model=None,
            states=states,
            initial=initial,
            transitions=[[t.event, t.source, t.dest] for t in transitions],
            auto_transitions=False,
        )
        self.initial = initial
        self.states = tuple(self.machine.states)
        self.table: dict[tuple[str, str], str] = {
            (source, name): items[0].dest
            for name, event in self.machine.events.items()
            for source, items in event.transitions.items()
        }
        self.events = tuple(self.machine.events)

    def allows(self, state: str, event: str) -> bool:
        """Whether `event` may happen in `state` (a command records it only then)."""
        return (state, event) in self.table

    def next_state(self, state: str, event: str) -> str:
        """The state after `event` in `state`; IllegalTransition if the RFC forbids it."""
        try:
            return self.table[(state, event)]
        except KeyError:
            raise IllegalTransition(
                f"{self.name}: event {event!r} is not allowed in state {state!r}"
            ) from None

    def mermaid(self) -> str:
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        lines += [f"    {src} --> {dst}: {event}" for (src, event), dst in self.table.items()]
        return "\n".join(lines)
