"""Lexical pieces shared by the SIP header parsers (RFC 3261 25.1): tokens, quoted strings,
`;name=value` parameters, and comma lists split outside quotes and angle brackets."""

from __future__ import annotations

import re

from sip_gateway.errors import MalformedMessage

Params = tuple[tuple[str, "str | None"], ...]

TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
QUOTED_STRING = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
TOKEN = re.compile(f"[{TOKEN_CHARS}]+")
# gen-value = token / host / quoted-string; host adds ':' and brackets for IPv6.
_PARAM_VALUE = rf"[{TOKEN_CHARS}:\[\]]+|{QUOTED_STRING}"
_PARAM = re.compile(rf"[ \t]*;[ \t]*([{TOKEN_CHARS}]+)(?:[ \t]*=[ \t]*({_PARAM_VALUE}))?[ \t]*")
_QUOTED_PAIR = re.compile(r"\\(.)")


def show(text: str, limit: int = 60) -> str:
    """A short one-line rendering of peer text for error reasons."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def is_token(text: str) -> bool:
    return TOKEN.fullmatch(text) is not None


def unquote(text: str) -> str:
    """The content of a quoted-string (quoted-pairs resolved); other text unchanged."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", text[1:-1])
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str, header: str) -> Params:
    """`;name[=value]...` into (name, raw value or None) pairs; quoted values keep quotes."""
    params = []
    pos, end = 0, len(text)
    while pos < end:
        match = _PARAM.match(text, pos)
        if match is None:
            raise MalformedMessage(f"bad parameter in {header} header at {show(text[pos:])}")
        params.append((match[1], match[2]))
        pos = match.end()
    return tuple(params)


def find_param(params: Params, name: str) -> str | None:
    """The unquoted value of the first parameter `name` (any case); "" for a flag."""
    name = name.lower()
    for key, value in params:
        if key.lower() == name:
            return "" if value is None else unquote(value)
    return None


def has_param(params: Params, name: str) -> bool:
    name = name.lower()
    return any(key.lower() == name for key, _ in params)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def split_list(text: str) -> list[str]:
    """Split a comma list outside quoted strings and `<...>` (RFC 3261 7.3.1); drop empties."""
    if "," not in text:  # one item: nothing to split
        item = text.strip(" \t")
        return [item] if item else []
    if '"' not in text and "<" not in text:
        parts = text.split(",")
    else:
        parts = []
        start = 0
        quoted = escaped = angled = False
        for index, char in enumerate(text):
            if quoted:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    quoted = False
            elif angled:
                angled = char != ">"
            elif char == '"':
                quoted = True
            elif char == "<":
                angled = True
            elif char == ",":
                parts.append(text[start:index])
                start = index + 1
        parts.append(text[start:])
    return [part for part in (p.strip(" \t") for p in parts) if part]
