"""The credentials of `[auth]`, in memory for every request, kept up to date aside.

`[auth] credentials` names an htdigest file (credentials_file.py) or a `postgresql://`
table (credentials_table.py). serve and each UDP worker load it at start, where any
problem stops them (one line each, as `config check` prints them), then keep it fresh:
the file is read again within FILE_CHECK seconds of a change (its modification time,
size or inode: an edit or a replacement), the table every TABLE_REFRESH seconds. A
reload that finds problems keeps the users it had and logs them; no REGISTER ever waits
for a file or a database.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from infrastructure.credentials_file import read_htdigest
from infrastructure.credentials_table import read_subscribers
from infrastructure.settings import AuthSettings, Settings, SettingsError
from sip_gateway.auth import UserCredentials

log = logging.getLogger("pua_reginfo.auth")
FILE_CHECK = 1.0  # seconds between two looks at the file
TABLE_REFRESH = 10.0  # seconds between two reads of the table


class Credentials:
    """The CredentialSource of one process: the users of the realm, by username."""

    def __init__(self, auth: AuthSettings) -> None:
        self.realm, self.location = auth.realm or "", auth.credentials or ""
        self.in_table = self.location.startswith(("postgresql://", "postgres://"))
        self.users: dict[str, UserCredentials] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._told: list[str] = []

    def lookup(self, username: str) -> UserCredentials | None:
        return self.users.get(username)

    def load(self) -> list[str]:
        """Read the source; on success the users are replaced. Its problems, if any."""
        stamp = self._file_stamp()
        if self.in_table:
            users, problems = read_subscribers(self.location, self.realm)
        else:
            users, problems = read_htdigest(Path(self.location), self.realm)
        if not problems:
            self.users, self._stamp = users, stamp
        return problems

    async def keep_fresh(self) -> None:
        """Reload on change (the file) or now and then (the table), until cancelled."""
        while True:
            await asyncio.sleep(TABLE_REFRESH if self.in_table else FILE_CHECK)
            if not self.in_table and self._file_stamp() == self._stamp:
                continue
            problems = await asyncio.to_thread(self.load)
            if problems and problems != self._told:
                for problem in problems:
                    log.warning("credentials not reloaded: %s", problem)
            elif not problems and not self.in_table:
                log.info("credentials reloaded: %d users of realm %s", len(self.users),
                         self.realm)
            self._told = problems

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self.in_table:
            return None
        try:
            status = os.stat(self.location)
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size, status.st_ino


def open_credentials(settings: Settings) -> Credentials | None:
    """The loaded credentials of `[auth]` (None when it is off); SettingsError with one
    line per problem when they cannot be used."""
    if not settings.auth.realm:
        return None
    credentials = Credentials(settings.auth)
    problems = credentials.load()
    if problems:
        raise SettingsError("\n".join(problems), problems)
    return credentials
