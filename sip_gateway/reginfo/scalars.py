"""Attribute value syntax: XML Schema integers and decimals (RFC 3680 section 5.4), C atoi.

Every function returns None (or 0 for atoi) instead of raising: callers decide whether a
bad value is a refusal. Digits are ASCII only (Python's int() would also take other
scripts' digits and underscores), and digit strings are bounded before int() sees them.
"""

from __future__ import annotations

import math
import re

UNSIGNED_INT_END = 2**32  # xs:unsignedInt: the document version
UNSIGNED_LONG_END = 2**64  # xs:unsignedLong: expires, cseq, durations

XML_SPACE = " \t\r\n"
_UNSIGNED = re.compile(r"\+?([0-9]+)")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ATOI = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")

_LONG_MAX = 2**63 - 1  # glibc atoi is (int) strtol(): strtol clamps to a 64-bit long ...
_INT_SPAN = 2**32  # ... and the cast keeps the low 32 bits


def parse_unsigned(text: str, end: int) -> int | None:
    """A non-negative XML Schema integer below `end` (surrounding whitespace allowed)."""
    if text.isascii() and text.isdigit() and len(text) < 20:  # the usual case, no regex
        value = int(text)
        return value if value < end else None
    match = _UNSIGNED.fullmatch(text.strip(XML_SPACE))
    if match is None:
        return None
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > len(str(end)):
        return None
    value = int(digits)
    return value if value < end else None


def parse_qvalue(text: str) -> float | None:
    """An xs:decimal between 0 and 1 inclusive, as a float."""
    stripped = text.strip(XML_SPACE)
    if len(stripped) > 64 or not _DECIMAL.fullmatch(stripped):
        return None
    value = float(stripped)
    return value if 0.0 <= value <= 1.0 else None


def parse_float(text: str) -> float | None:
    """Any finite decimal or exponent number, as a float (lenient q)."""
    stripped = text.strip(XML_SPACE)
    if len(stripped) > 64 or not _FLOAT.fullmatch(stripped):
        return None
    value = float(stripped)
    return value if math.isfinite(value) else None


def c_atoi(text: str) -> int:
    """C `atoi` as glibc does it: leading spaces, an optional sign, digits; garbage gives 0."""
    if text.isascii() and text.isdigit() and len(text) < 10:  # the usual case, no regex
        return int(text)  # below 2**31: no clamping, no wrap
    sign, digits = _ATOI.match(text).groups()
    digits = digits.lstrip("0")
    if not digits:
        return 0
    value = int(digits) if len(digits) <= 19 else _LONG_MAX + 1
    value = min(_LONG_MAX, value) if sign != "-" else -min(_LONG_MAX + 1, value)
    return (value + _INT_SPAN // 2) % _INT_SPAN - _INT_SPAN // 2
