"""An htdigest file of `user:realm:HA1` lines (Apache's htdigest writes them, MD5), a
SHA-256 HA1 (RFC 8760) allowed as a fourth field: `user:realm:HA1-MD5:HA1-SHA-256`; an
empty MD5 field leaves only SHA-256. Lines of other realms are skipped, blank lines and
`#` comments too. A malformed line is a problem naming the file and the line, never
what the line holds (an HA1 opens the realm as well as the password does).
"""

from __future__ import annotations

import re
from pathlib import Path

from sip_gateway.auth import MD5, SHA256, UserCredentials

_HEX = {a: re.compile(f"[0-9a-fA-F]{{{a.hex_length}}}") for a in (MD5, SHA256)}
Users = dict[str, UserCredentials]


def read_htdigest(path: Path, realm: str) -> tuple[Users, list[str]]:
    """The users of `realm` in the file, and its problems (one line each)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        return {}, [f"[auth] credentials: cannot read {path}: {reason}"]
    users: Users = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"[auth] credentials {path} line {number}"
        fields = line.split(":")
        if len(fields) not in (3, 4) or not fields[0]:
            problems.append(f"{where}: not user:realm:HA1 (or user:realm:HA1:HA1-SHA-256)")
            continue
        user, line_realm, md5, sha256 = (*fields, "")[:4]
        if line_realm != realm:
            continue
        wrong = [f"the {a.token} HA1 is not {a.hex_length} hex digits"
                 for a, value in ((MD5, md5), (SHA256, sha256))
                 if value and _HEX[a].fullmatch(value) is None]
        if wrong or not (md5 or sha256):
            problems.append(f"{where}: {'; '.join(wrong) or 'no HA1'}")
        elif user in users:
            problems.append(f"{where}: user {user!r} is listed twice for realm {realm!r}")
        else:
            users[user] = UserCredentials(md5.lower() or None, sha256.lower() or None)
    return users, problems
