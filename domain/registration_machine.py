"""RFC 3680 section 5.1: the registration state machine, one per AoR.

Theory of operation. A registration is `init` while the AoR has no binding. The first
binding to become active makes it `active` (`activated`); it stays active while at least
one binding is active. When the last binding terminates it becomes `terminated`
(`terminated`), which is reported once; the next activation starts from `init` again
(`reset`, then `activated`).
"""

from domain.state_machine import StateMachineSpec, Transition

INIT, ACTIVE, TERMINATED = "init", "active", "terminated"

REGISTRATION_MACHINE = StateMachineSpec(
    "registration",
    states=[INIT, ACTIVE, TERMINATED],
    initial=INIT,
    transitions=[
        Transition(INIT, "activated", ACTIVE),
        Transition(ACTIVE, "terminated", TERMINATED),
        Transition(TERMINATED, "reset", INIT),
    ],
)
