"""Typed errors: one root, domain invariants under DomainError, each with a SIP status hint."""


class PuaReginfoError(Exception):
    """Root of every error the project raises on purpose."""

    sip_status: int = 500


class DomainError(PuaReginfoError):
    """A command broke a rule of the registration model (RFC 3261 10.3, RFC 3680)."""

    sip_status = 400


class InvalidUri(DomainError):
    """A URI that is not a valid SIP, SIPS or tel URI (RFC 3261 19.1, RFC 3966)."""


class InvalidRequest(DomainError):
    """A registration request that RFC 3261 10.3 refuses (for example `*` with expires)."""


class OutOfOrderRequest(DomainError):
    """Same Call-ID with a CSeq not above the stored one (RFC 3261 10.3 step 7: the
    request fails; 400 as registrars answer it, e.g. Kamailio's "Invalid CSeq")."""


class IllegalTransition(DomainError):
    """An event the RFC 3680 state machine does not allow from the current state."""


class UnknownAddressOfRecord(DomainError):
    """No registration history exists for this AoR."""

    sip_status = 404


class UnknownContact(DomainError):
    """The AoR has no active binding for this contact."""

    sip_status = 404


class TooManyBindings(DomainError):
    """A REGISTER would leave the AoR with more bindings than the registrar allows."""

    sip_status = 403


class NotSubscribed(DomainError):
    """`unsubscribe` for a resource no subscription is kept for."""

    sip_status = 404


class UnknownWatcher(DomainError):
    """A SUBSCRIBE refresh, or a NOTIFY record, for a dialog no watcher has (481)."""

    sip_status = 481
