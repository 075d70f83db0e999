"""A contact binding of an AoR and the binding key that identifies it (RFC 3261 10.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from domain.uri import parse_uri

Params = tuple[tuple[str, "str | None"], ...]
MAX_CSEQ = 2**31 - 1  # RFC 3261 8.1.1.5
MAX_REG_ID = 2**31 - 1  # RFC 5626 4.2


def preference(q: float | None, contact: str, key: str = "") -> tuple[float, str, str]:
    """Sort key of bindings: highest q first (RFC 3261 16.6, no q counts as 1.0), then by
    contact URI and binding key, so that every listing of an AoR orders alike."""
    return (-(q if q is not None else 1.0), contact, key)


@lru_cache(maxsize=65536, typed=True)
def binding_key(contact: str, instance: str | None = None, reg_id: int | None = None) -> str:
    """Identity of a binding within its AoR.

    RFC 5626 keys an outbound flow by (+sip.instance, reg-id) and RFC 5627 a GRUU binding
    by +sip.instance; otherwise the contact URI under RFC 3261 19.1.4 comparison. Computed
    once per (contact, instance, reg-id): every REGISTER and NOTIFY names its bindings
    again, and the comparison key costs more than the rest of a refresh's decision.
    """
    if instance:
        return f"instance|{instance}|{'' if reg_id is None else reg_id}"
    return "uri|" + parse_uri(contact).comparison_key()


@dataclass(frozen=True)
class Binding:
    """Everything known of one binding; `expires` and `registered_at` are Unix seconds."""

    contact: str
    expires: float
    callid: str
    cseq: int
    registered_at: float
    q: float | None = None
    received: str | None = None
    path: tuple[str, ...] = ()
    user_agent: str | None = None
    instance: str | None = None
    reg_id: int | None = None
    methods: tuple[str, ...] = ()
    flags: int = 0
    cflags: int = 0
    socket: str | None = None
    display_name: str | None = None
    params: Params = ()
    pub_gruu: str | None = None
    temp_gruu: str | None = None
    temp_gruu_first_cseq: int | None = None
    subscription: str | None = None  # the subscription that told us, None when local
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", binding_key(self.contact, self.instance, self.reg_id))

    def is_due(self, now: float) -> bool:
        return self.expires <= now

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires - now + 0.5))

    def with_expires(self, expires: float) -> Binding:
        return self.changed(expires=expires)

    def changed(self, **values: object) -> Binding:
        """A copy with `values` (dataclasses.replace without running __init__ again, and
        a third of copy.copy's cost)."""
        after = object.__new__(type(self))
        after.__dict__.update(self.__dict__, **values)
        return after

    @property
    def is_local(self) -> bool:
        """Learned from a REGISTER or an administrator here, not from a NOTIFY."""
        return self.subscription is None


@dataclass(frozen=True)
class ContactUpdate:
    """One Contact of a REGISTER, its expiry already resolved (0 removes the binding)."""

    uri: str
    expires: int
    q: float | None = None
    instance: str | None = None
    reg_id: int | None = None
    methods: tuple[str, ...] = ()
    display_name: str | None = None
    params: Params = ()
    flags: int = 0
    cflags: int = 0

    @cached_property
    def key(self) -> str:
        return binding_key(self.uri, self.instance, self.reg_id)


@dataclass(frozen=True)
class RegisterRequest:
    """The binding-relevant content of a REGISTER (RFC 3261 10.3)."""

    callid: str
    cseq: int
    contacts: tuple[ContactUpdate, ...] = ()
    wildcard: bool = False
    received: str | None = None
    path: tuple[str, ...] = ()
    user_agent: str | None = None
    socket: str | None = None

    @property
    def cause(self) -> str:
        return f"REGISTER call-id={self.callid} cseq={self.cseq}"
