"""Store URLs: `sqlite:///path` (the embedded default) or `postgresql://user@host:port/db`.

A URL becomes the eventsourcing persistence environment. Secrets never appear in messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from domain import PuaReginfoError


class StoreError(PuaReginfoError):
    """A store URL that cannot be used, or a store that cannot be reached."""


@dataclass(frozen=True)
class StoreUrl:
    kind: str  # "sqlite" or "postgresql"
    env: dict[str, str]
    display: str

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep:
            raise StoreError(f"store URL {url!r} needs a scheme: sqlite:///path or postgresql://...")
        if scheme == "sqlite":
            return cls._sqlite(rest, url)
        if scheme in ("postgresql", "postgres"):
            return cls._postgres(url)
        raise StoreError(f"unsupported store URL scheme {scheme!r} (sqlite or postgresql)")

    @classmethod
    def _sqlite(cls, rest: str, url: str) -> StoreUrl:
        if not rest.startswith("/") or rest == "/":
            raise StoreError(f"SQLite store URL {url!r} must look like sqlite:///path/to/file.db")
        path = rest[1:]
        if path == ":memory:":
            name = "file:pua-reginfo-memory?mode=memory&cache=shared"
        else:
            name = str(Path(path).expanduser())
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": name,
               "SQLITE_LOCK_TIMEOUT": "10"}
        return cls("sqlite", env, url)

    @classmethod
    def _postgres(cls, url: str) -> StoreUrl:
        parts = urlsplit(url)
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise StoreError(f"PostgreSQL store URL {_hide(url)!r} names no database")
        try:
            port = parts.port or 5432
        except ValueError:
            raise StoreError(f"bad port in store URL {_hide(url)!r}") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": query.get("connect_timeout", "5"),
            "POSTGRES_LOCK_TIMEOUT": query.get("lock_timeout", "5"),
            "POSTGRES_POOL_SIZE": query.get("pool_size", "5"),
            "POSTGRES_MAX_OVERFLOW": "10",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"]
        return cls("postgresql", env, _hide(url))

    def connect_kwargs(self) -> dict:
        """psycopg.connect keyword arguments of a PostgreSQL store."""
        env = self.env
        return {"dbname": env["POSTGRES_DBNAME"], "host": env["POSTGRES_HOST"],
                "port": env["POSTGRES_PORT"], "user": env["POSTGRES_USER"],
                "password": env["POSTGRES_PASSWORD"] or None,
                "connect_timeout": int(env["POSTGRES_CONNECT_TIMEOUT"])}


def probe(store: StoreUrl, must_exist: bool = False) -> None:
    """Fail fast, with the real reason, when the store's file or server cannot be reached;
    with `must_exist` (a command that only reads), also when a SQLite file is not there,
    rather than create an empty store under a mistyped path."""
    if store.kind == "sqlite":
        name = store.env["SQLITE_DBNAME"]
        parent = Path(name).resolve().parent
        if not name.startswith("file:") and not parent.is_dir():
            raise StoreError(f"cannot open store {store.display}: directory {parent} does not exist")
        if must_exist and not name.startswith("file:") and not Path(name).exists():
            raise StoreError(f"cannot open store {store.display}: {name} does not exist "
                             "(a command that only reads creates no store)")
        return
    import psycopg

    try:
        connection = psycopg.connect(**store.connect_kwargs())
    except psycopg.Error as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        reason = lines[0].strip() if lines else type(error).__name__
        reason = reason.removeprefix("connection failed: ").replace("FATAL:  ", "")
        raise StoreError(f"cannot open store {store.display}: {reason}") from None
    connection.close()


def _hide(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
