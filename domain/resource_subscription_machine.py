"""RFC 6665 4.1 as we keep it: the state of one standing subscription to a resource.

Theory of operation. A request makes it `requested`; the keeper's first accepted SUBSCRIBE
makes it `active` (`established`, again after every refresh). A failed attempt whose
dialog survives (`failed`) changes nothing; one that leaves no dialog (`lost`: never
established, or the notifier forgot it) makes it `waiting` for the next attempt after
back-off. `withdrawn` (unsubscribe) stops wanting it while the keeper ends the dialog;
`closed` means nothing more will be sent (refused by the notifier, or the withdrawal
done). A new request (`renewed`) makes a withdrawn or closed subscription `requested`
again, and otherwise only changes the lifetime asked for.
"""

from domain.state_machine import StateMachineSpec, Transition

REQUESTED, ACTIVE, WAITING, WITHDRAWN, CLOSED = (
    "requested", "active", "waiting", "withdrawn", "closed")
WANTED = (REQUESTED, ACTIVE, WAITING)  # the keeper keeps a dialog for these

RESOURCE_SUBSCRIPTION_MACHINE = StateMachineSpec(
    "resource subscription",
    states=[REQUESTED, ACTIVE, WAITING, WITHDRAWN, CLOSED],
    initial=REQUESTED,
    transitions=[Transition(s, "renewed", s) for s in WANTED]
    + [Transition(s, "renewed", REQUESTED) for s in (WITHDRAWN, CLOSED)]
    + [Transition(s, "established", ACTIVE) for s in WANTED]
    + [Transition(s, "failed", s) for s in (*WANTED, WITHDRAWN)]
    + [Transition(s, "lost", WAITING) for s in WANTED]
    + [Transition(WITHDRAWN, "lost", WITHDRAWN)]
    + [Transition(s, "withdrawn", WITHDRAWN) for s in WANTED]
    + [Transition(s, "closed", CLOSED) for s in (*WANTED, WITHDRAWN)],
)


def is_wanted(state: str) -> bool:
    """Whether the keeper should keep a dialog for a subscription in `state`."""
    return state in WANTED
