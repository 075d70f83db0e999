"""An ordered, case-insensitive SIP header container (RFC 3261 7.3) with compact forms."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from sip_gateway.sip.grammar import split_list

# RFC 3261 7.3.3 and the IANA SIP header registry.
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}
COMPACT_KEYS = {short: full.lower() for short, full in COMPACT_FORMS.items()}

# Headers whose grammar is a comma list (`#element`), so that several lines and several
# comma-separated values mean the same. Not split: auth challenges and credentials, dates,
# product strings and every single-valued header (Call-ID, CSeq, From, To, Subject ...).
_LIST_SPELLED = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info",
    "Allow", "Allow-Events", "Call-Info", "Contact", "Content-Encoding",
    "Content-Language", "Error-Info", "In-Reply-To", "P-Associated-URI", "Path",
    "Proxy-Require", "Record-Route", "Reject-Contact", "Request-Disposition", "Require",
    "Route", "Security-Client", "Security-Server", "Security-Verify", "Service-Route",
    "Supported", "Unsupported", "Via", "Warning",
)
LIST_HEADERS = frozenset(name.lower() for name in _LIST_SPELLED)

# Names as requests and responses usually spell them, with their keys: looked up before
# header_key lower-cases and expands a name (every one is a valid header name).
_SPELLED = (
    "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type", "Content-Length",
    "Expires", "Min-Expires", "User-Agent", "Server", "Date", "Event", "Subscription-State",
    "SIP-ETag", "SIP-If-Match", "Retry-After", "Authorization", "WWW-Authenticate",
    "Proxy-Authorization", "Proxy-Authenticate", "Subject", "Priority", "Timestamp",
)
KNOWN_KEYS = {
    **{name: name.lower() for name in _SPELLED + _LIST_SPELLED},
    **COMPACT_KEYS,
    **{short.upper(): key for short, key in COMPACT_KEYS.items()},
}

_NAME = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded."""
    key = KNOWN_KEYS.get(name)
    if key is None:
        key = name.lower()
        key = COMPACT_KEYS.get(key, key)
    return key


class Headers:
    """Header lines in wire order with their original names; lookup by any case or compact form."""

    __slots__ = ("_lines", "_first")

    def __init__(self, lines: Iterable[tuple[str, str]] = ()) -> None:
        self._lines: list[tuple[str, str, str]] = []  # (key, name as written, value)
        self._first: dict[str, str] | None = None  # get() results, built on demand
        for name, value in lines:
            self.add(name, value)

    @classmethod
    def _trusted(cls, lines: list[tuple[str, str, str]]) -> Headers:
        """Adopt (key, name, value) triples the parser has already checked."""
        headers = cls.__new__(cls)
        headers._lines = lines
        headers._first = None
        return headers

    def with_top(self, name: str, value: str) -> Headers:
        """A copy whose first `name` value is `value` (the rest of a comma list, and every
        other line, as they were); `value` must be a checked header value."""
        key = header_key(name)
        lines = list(self._lines)
        for index, (line_key, written, old) in enumerate(lines):
            if line_key == key:
                rest = split_list(old)[1:] if key in LIST_HEADERS else []
                lines[index:index + 1] = [(key, written, value)] + (
                    [(key, written, ", ".join(rest))] if rest else [])
                break
        else:
            lines.append((key, name, value))
        headers = Headers._trusted(lines)
        top = split_list(value)[:1] if key in LIST_HEADERS else [value]
        if self._first is not None and top:  # every other first value is as it was
            headers._first = {**self._first, key: top[0]}
        return headers

    def extend_checked(self, lines: Iterable[tuple[str, str]]) -> None:
        """Append lines our own code wrote (names and values already well formed)."""
        self._lines.extend((header_key(name), name, value) for name, value in lines)
        self._first = None

    def wire(self) -> Iterator[tuple[str, str, str]]:
        """(key, name, value) triples in wire order."""
        return iter(self._lines)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of get_all(name) (topmost Via, first Contact), else `default`."""
        return self._first_by_key().get(header_key(name), default)

    def _first_by_key(self) -> dict[str, str]:
        """What get() answers for every name, worked out in one pass over the lines."""
        first = self._first
        if first is None:
            first = self._first = {}
            for key, _, value in self._lines:
                if key in first:
                    continue
                if key in LIST_HEADERS:
                    values = split_list(value)
                    if not values:
                        continue
                    value = values[0]
                first[key] = value
        return first

    def get_all(self, name: str) -> list[str]:
        """Values of every line named `name`; comma lists split for the LIST_HEADERS."""
        key = header_key(name)
        if key not in self._first_by_key():  # no line, or (a list) no line with an item
            return []
        values = [value for line_key, _, value in self._lines if line_key == key]
        if key in LIST_HEADERS:
            return [item for value in values for item in split_list(value)]
        return values

    def add(self, name: str, value: str) -> None:
        """Append a line."""
        self._lines.append((header_key(name), _check_name(name), _check_value(value)))
        self._first = None

    def set(self, name: str, value: str) -> None:
        """Replace every line named `name` by one line, where the first of them was."""
        key = header_key(name)
        line = (key, _check_name(name), _check_value(value))
        self._first = None
        for index, (line_key, _, _) in enumerate(self._lines):
            if line_key == key:
                self._lines[index] = line
                self._lines[index + 1 :] = [ln for ln in self._lines[index + 1 :] if ln[0] != key]
                return
        self._lines.append(line)

    def remove(self, name: str) -> int:
        """Remove every line named `name`; returns how many there were."""
        key = header_key(name)
        before = len(self._lines)
        self._lines = [line for line in self._lines if line[0] != key]
        self._first = None
        return before - len(self._lines)

    def count(self, name: str) -> int:
        """How many lines are named `name` (not how many comma-separated values)."""
        key = header_key(name)
        return sum(1 for line in self._lines if line[0] == key)

    def copy(self) -> Headers:
        return Headers._trusted(list(self._lines))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(line[0] == key for line in self._lines)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __eq__(self, other: object) -> bool:
        # Same lines, same order, names as written: what the wire would carry.
        if not isinstance(other, Headers):
            return NotImplemented
        return [line[1:] for line in self._lines] == [line[1:] for line in other._lines]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


def _check_name(name: str) -> str:
    # A usual spelling (KNOWN_KEYS) is a valid name.
    if not isinstance(name, str) or (name not in KNOWN_KEYS and _NAME.fullmatch(name) is None):
        raise ValueError(f"not a SIP header name: {name!r}")
    return name


def _check_value(value: str) -> str:
    if not isinstance(value, str) or _BAD_VALUE.search(value):
        raise ValueError(f"SIP header values are one line without control characters: {value!r}")
    return value.strip(" \t")
