"""RFC 3680 section 5.1: the contact state machine, one per binding.

Theory of operation. A binding starts in `init`. A REGISTER (`registered`) or any other
means such as administration (`created`) makes it `active`. While active, a REGISTER may
refresh it (`refreshed`) and an administrator may bring its expiry forward (`shortened`).
It ends in `terminated` when it lapses (`expired`), when a REGISTER removes it
(`unregistered`), or when an administrator removes it: re-register now (`deactivated`),
re-register after retry-after (`probation`), or do not re-register (`rejected`). A
terminated contact is reported once and forgotten, which returns it to `init`.
"""

from domain.state_machine import StateMachineSpec, Transition

INIT, ACTIVE, TERMINATED = "init", "active", "terminated"

ACTIVATING_EVENTS = ("registered", "created")
CONTINUING_EVENTS = ("refreshed", "shortened")
TERMINATING_EVENTS = ("expired", "deactivated", "probation", "unregistered", "rejected")

CONTACT_MACHINE = StateMachineSpec(
    "contact",
    states=[INIT, ACTIVE, TERMINATED],
    initial=INIT,
    transitions=[Transition(INIT, e, ACTIVE) for e in ACTIVATING_EVENTS]
    + [Transition(ACTIVE, e, ACTIVE) for e in CONTINUING_EVENTS]
    + [Transition(ACTIVE, e, TERMINATED) for e in TERMINATING_EVENTS],
)
