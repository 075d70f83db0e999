"""The commands the service takes: what the gateway, the CLI and the keeper may ask.

Each is a plain frozen value; infrastructure.command_handlers decides it inside a unit of
work. Commands carry what their decision needs (the NOTIFY mode and default lifetime, the
registrar's binding limit), so the same command decides the same way from every entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import Binding, ContactUpdate, RegisterRequest
from domain.reginfo import ReginfoDocument
from domain.resource_subscription import DialogState
from domain.watcher import WatcherDialog
from sip_gateway.server.notify_modes import NotifyMode

DEFAULT_SUBSCRIPTION = "default"


@dataclass(frozen=True)
class Register:
    """A REGISTER's binding update (RFC 3261 10.3); `request` None only asks for bindings."""

    aor: str
    request: RegisterRequest | None
    max_bindings: int | None = None


@dataclass(frozen=True)
class NotifyContext:
    """Where a document came from, and how it is taken."""

    mode: NotifyMode
    subscription_id: str = DEFAULT_SUBSCRIPTION  # the dialog id of the NOTIFY
    ended_reason: str | None = None  # Subscription-State: terminated;reason=...
    cseq: int | None = None  # the NOTIFY's CSeq number, which orders a dialog's NOTIFYs
    default_expires: int = 3600  # for contacts reported without expires
    claimed: bool = False  # the subscription keeper holds this dialog


@dataclass(frozen=True)
class ApplyNotify:
    """A reginfo document (None: a NOTIFY without body) received in `context`."""

    document: ReginfoDocument | None
    context: NotifyContext


@dataclass(frozen=True)
class ExpireDue:
    """Record `expired` for the lapsed bindings of these AoRs."""

    aor_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class CreateContact:
    """Create a binding administratively (RFC 3680 event `created`)."""

    aor: str
    update: ContactUpdate
    callid: str
    cause: str


@dataclass(frozen=True)
class ShortenContact:
    """Bring a binding's expiry forward (`shortened`), e.g. to force re-authentication."""

    aor: str
    contact: str
    expires: int
    cause: str


@dataclass(frozen=True)
class DeactivateContact:
    """Remove a binding; the UA should re-register at once (`deactivated`)."""

    aor: str
    contact: str
    cause: str


@dataclass(frozen=True)
class RejectContact:
    """Remove a binding; the UA should not re-register (`rejected`)."""

    aor: str
    contact: str
    cause: str


@dataclass(frozen=True)
class PutOnProbation:
    """Remove a binding; the UA may re-register after `retry_after` s (`probation`)."""

    aor: str
    contact: str
    retry_after: int
    cause: str


@dataclass(frozen=True)
class RemoveBindings:
    """Remove one binding of an AoR or, without `contact`, all of them, with `event`
    (`deactivated` or `rejected`): what usrloc's ul.rm_contact and ul.rm do."""

    aor: str
    contact: str | None
    event: str
    cause: str


@dataclass(frozen=True)
class ImportedBinding:
    """One binding read from another registrar's location table, and where it was."""

    aor: str
    binding: Binding
    cause: str


@dataclass(frozen=True)
class ImportBindings:
    """Record bindings another registrar holds (`created`, origin `import`), each on its
    own: one refused does not stop the others."""

    bindings: tuple[ImportedBinding, ...]


@dataclass(frozen=True)
class RequestSubscription:
    """Keep a reg subscription to `resource` (CLI `subscribe`, config, subscribe_on_register)."""

    resource: str
    expires: int
    origin: str = "cli"


@dataclass(frozen=True)
class WithdrawSubscription:
    """End the reg subscription to `resource` (CLI `unsubscribe`)."""

    resource: str
    origin: str = "cli"


@dataclass(frozen=True)
class RecordSubscriber:
    """What the subscription keeper learned about its dialog for `resource`."""

    resource: str
    established: DialogState | None = None
    failure: str | None = None
    dialog_lost: bool = False
    closed: str | None = None


@dataclass(frozen=True)
class Watch:
    """A reg SUBSCRIBE accepted (RFC 6665 4.2.1): a new watcher of `aor`, or the refresh
    of the dialog's watcher; `expires` 0 (a fetch, an unsubscribe) ends it at once."""

    aor: str
    dialog: WatcherDialog
    expires: int
    refresh: bool  # the SUBSCRIBE came in the dialog (it had our To tag)
    peer: bool = False


@dataclass(frozen=True)
class RecordNotified:
    """A NOTIFY was sent to a watcher with this version (None: no body) and CSeq."""

    dialog_id: str
    version: int | None
    cseq: int
    full: bool


@dataclass(frozen=True)
class EndWatch:
    """A watcher's subscription ends with this Subscription-State reason."""

    dialog_id: str
    reason: str


Command = (Register | ApplyNotify | ExpireDue | CreateContact | ShortenContact
           | DeactivateContact | RejectContact | PutOnProbation | RemoveBindings
           | ImportBindings | RequestSubscription
           | WithdrawSubscription | RecordSubscriber | Watch | RecordNotified | EndWatch)
