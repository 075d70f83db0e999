"""RFC 6665 4.2 as the notifier keeps it: one watcher's subscription to an AoR's reg state.

Theory of operation. A SUBSCRIBE we accept creates the watcher, `active` (we authorize at
once: no `pending` state). Each NOTIFY we send is `notified`, each SUBSCRIBE refresh in
the dialog `refreshed`. `terminated` ends it: expiry, a fetch or an unsubscribe
(`timeout`), the AoR gone (`noresource`), serve shutting down (`deactivated`, so that the
watcher subscribes again elsewhere), or a NOTIFY that failed for good (RFC 6665 4.2.2:
408, 481, a transaction timeout). After `terminated` one more NOTIFY may be sent, the
final one that carries `Subscription-State: terminated` (none after a failure: the
dialog is gone).
"""

from domain.state_machine import StateMachineSpec, Transition

ACTIVE, TERMINATED = "active", "terminated"

# Subscription-State reasons (RFC 6665 4.1.3) a watcher ends with, and whether a final
# NOTIFY is still sent to it.
TIMEOUT, NORESOURCE, DEACTIVATED, REJECTED, GIVEUP = (
    "timeout", "noresource", "deactivated", "rejected", "giveup")
FAILED = "failed"  # the watcher's side failed a NOTIFY: no final NOTIFY (not a wire reason)
REASONS = (TIMEOUT, NORESOURCE, DEACTIVATED, REJECTED, GIVEUP, FAILED)
FINAL_NOTIFY = {reason: reason != FAILED for reason in REASONS}

WATCHER_MACHINE = StateMachineSpec(
    "watcher",
    states=[ACTIVE, TERMINATED],
    initial=ACTIVE,
    transitions=[
        Transition(ACTIVE, "refreshed", ACTIVE),
        Transition(ACTIVE, "notified", ACTIVE),
        Transition(ACTIVE, "terminated", TERMINATED),
        Transition(TERMINATED, "notified", TERMINATED),  # the final NOTIFY
    ],
)
