"""Settings: defaults, then a TOML file, then `PUA_REGINFO_<SECTION>_<KEY>` env, then flags.

Sections and keys mirror the pua_reginfo, usrloc and registrar module parameters. Unknown
sections or keys, wrong types and inconsistent values are refused with one clear line
(a typo in a config file must never be silently ignored).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from domain import AorPolicy, InvalidUri, PuaReginfoError, SipUri, parse_uri
from infrastructure.store import StoreError, StoreUrl
from sip_gateway.transport.listeners import parse_listen

ENV_PREFIX = "PUA_REGINFO_"
DEFAULT_STORE_URL = "sqlite:///./pua-reginfo.db"


class SettingsError(PuaReginfoError):
    """Settings that cannot be used; the message names the key, one line per problem."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class ReginfoSettings:
    default_domain: str | None = None
    publish_reginfo: bool = True
    outbound_proxy: str | None = None
    server_address: str | None = None
    kamailio_compat: bool = False  # PUBLISH bodies as Kamailio 5.6 writes them
    subscribe_on_register: bool = False  # keep a reg subscription for every local AoR


@dataclass(frozen=True)
class UsrlocSettings:
    use_domain: bool = False
    case_sensitive: bool = False


@dataclass(frozen=True)
class NotifySettings:
    mode: str = "rfc"
    accept_unsolicited_notify: bool = False
    reply_code: int = 200


@dataclass(frozen=True)
class RegistrarSettings:
    domains: tuple[str, ...] = ()
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_contacts: int = 100  # bindings per AoR; 0: no limit


@dataclass(frozen=True)
class SecuritySettings:
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_rate: int = 0  # requests per second from one untrusted source address; 0: no limit


@dataclass(frozen=True)
class AuthSettings:
    """Digest authentication of REGISTER and of untrusted SUBSCRIBEs; off without a realm."""

    realm: str | None = None  # "example.com" turns it on
    credentials: str | None = None  # an htdigest file's path, or a postgresql:// URL
    nonce_lifetime: int = 300  # seconds a challenge's nonce may be used


@dataclass(frozen=True)
class NotifierSettings:
    """The notifier role: who may SUBSCRIBE to our AoRs' reg state, and for how long."""

    enabled: bool = True  # false: SUBSCRIBE is refused 405, as before the role existed
    default_expires: int = 3761  # RFC 3680 3's suggestion, for a SUBSCRIBE without Expires
    min_expires: int = 60  # shorter asks get 423 with Min-Expires
    max_expires: int = 86400  # longer asks are shortened to this
    watch_own: bool = False  # untrusted sources may watch the AoR in their From
    peers: tuple[str, ...] = ()  # sync peers: networks or From URIs; they hear our own changes


@dataclass(frozen=True)
class MetricsSettings:
    """The operator's HTTP endpoint: /metrics (Prometheus), /health/live, /health/ready."""

    listen: str | None = None  # "127.0.0.1:9090"; None: no endpoint
    ready_max_lag: int = 5  # seconds the usrloc view may be behind before "not ready"


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"  # debug (with the SIP message trace), info, warning, error; any case
    format: str = "text"  # or "json": one object per line, request fields as keys


MAX_UDP_WORKERS = 64


@dataclass(frozen=True)
class ListenSettings:
    udp: tuple[str, ...] = ("127.0.0.1:5060",)
    tcp: tuple[str, ...] = ("127.0.0.1:5060",)
    tcp_idle_timeout: int = 300  # seconds without any byte before a connection is closed
    tcp_header_timeout: int = 10  # seconds a message may take to arrive completely
    tcp_max_connections: int = 1024
    udp_receive_buffer: int = 4 * 1024 * 1024  # bytes the kernel may queue per UDP socket
    udp_workers: int = 0  # processes that take UDP requests beside serve's (0: serve alone)


@dataclass(frozen=True)
class StoreSettings:
    url: str = DEFAULT_STORE_URL
    timeout: int = 8  # seconds a transaction may take before serve answers 503
    max_pending: int = 5000  # requests that may wait for the store; more get 503
    cache_size: int = 50_000  # aggregates serve keeps in memory between transactions
    sqlite_synchronous: str = "normal"  # "full": fsync every commit (power-cut safe)
    retain_days: int | None = None  # serve prunes the history older than this; None: keep all


@dataclass(frozen=True)
class NodeSettings:
    id: str = field(default_factory=socket.gethostname)
    event_loop: str = "uvloop"  # or "asyncio" (the standard library's)


@dataclass(frozen=True)
class SubscribeSettings:
    uri: str
    expires: int = 3761


@dataclass(frozen=True)
class Settings:
    reginfo: ReginfoSettings = ReginfoSettings()
    usrloc: UsrlocSettings = UsrlocSettings()
    notify: NotifySettings = NotifySettings()
    registrar: RegistrarSettings = RegistrarSettings()
    security: SecuritySettings = SecuritySettings()
    auth: AuthSettings = AuthSettings()
    listen: ListenSettings = ListenSettings()
    store: StoreSettings = StoreSettings()
    node: NodeSettings = field(default_factory=NodeSettings)
    notifier: NotifierSettings = NotifierSettings()
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()
    subscribe: tuple[SubscribeSettings, ...] = ()

    @property
    def aor_policy(self) -> AorPolicy:
        return AorPolicy(
            use_domain=self.usrloc.use_domain,
            case_sensitive=self.usrloc.case_sensitive,
            default_domain=self.reginfo.default_domain,
        )


_SECTION_CLASSES = {
    "reginfo": ReginfoSettings,
    "usrloc": UsrlocSettings,
    "notify": NotifySettings,
    "registrar": RegistrarSettings,
    "security": SecuritySettings,
    "auth": AuthSettings,
    "listen": ListenSettings,
    "store": StoreSettings,
    "node": NodeSettings,
    "notifier": NotifierSettings,
    "metrics": MetricsSettings,
    "log": LogSettings,
}


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build validated Settings from a TOML file, the environment and explicit overrides."""
    data: dict[str, Any] = {}
    if config_file is not None:
        data = _read_toml(Path(config_file))
    raw: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if name == "subscribe":
            continue
        if name not in _SECTION_CLASSES:
            raise SettingsError(f"unknown settings section [{name}]")
        if not isinstance(value, dict):
            raise SettingsError(f"[{name}] must be a table")
        raw[name] = dict(value)
    for (section, key), value in _from_env(env).items():
        raw.setdefault(section, {})[key] = value
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is not None:
                raw.setdefault(section, {})[key] = value
    sections = {name: _build_section(name, raw.get(name, {})) for name in _SECTION_CLASSES}
    settings = Settings(**sections, subscribe=_subscriptions(data.get("subscribe", [])))
    _validate(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except OSError as error:
        raise SettingsError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"config file {path} is not valid TOML: {error}") from None


def _from_env(env: Mapping[str, str] | None) -> dict[tuple[str, str], str]:
    found = {}
    for name, value in (env or {}).items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in _SECTION_CLASSES if rest.startswith(s + "_")), None)
        if section is None:  # a typo in a variable must not be ignored, as in a file
            raise SettingsError(f"unknown environment variable {name} (sections: "
                                f"{', '.join(sorted(_SECTION_CLASSES))})")
        found[(section, rest[len(section) + 1 :])] = value
    return found


def _build_section(name: str, values: dict[str, Any]) -> Any:
    cls = _SECTION_CLASSES[name]
    known = {f.name: f for f in fields(cls)}
    converted = {}
    for key, value in values.items():
        if key not in known:
            raise SettingsError(f"unknown setting [{name}] {key}")
        converted[key] = _convert(f"[{name}] {key}", known[key].type, value)
    return replace(cls(), **converted)


def _convert(label: str, kind: Any, value: Any) -> Any:
    kind = str(kind)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{label} must be true or false, not {value!r}")
    if kind == "int | None" and (value is None or value == ""):
        return None
    if kind in ("int", "int | None"):
        if isinstance(value, bool):
            raise SettingsError(f"{label} must be a whole number, not {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{label} must be a whole number, not {value!r}") from None
    if kind.startswith("tuple"):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise SettingsError(f"{label} must be a list of strings")
        return tuple(str(item).strip() for item in items if str(item).strip())
    if value is None:
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{label} must be a string, not {value!r}")
    return value.strip() or None if "None" in kind else value.strip()


def _subscriptions(items: Any) -> tuple[SubscribeSettings, ...]:
    if not isinstance(items, list):
        raise SettingsError("[[subscribe]] must be an array of tables")
    result = []
    for item in items:
        if not isinstance(item, dict) or "uri" not in item:
            raise SettingsError("every [[subscribe]] needs a uri")
        unknown = set(item) - {"uri", "expires"}
        if unknown:
            raise SettingsError(f"unknown setting [[subscribe]] {sorted(unknown)[0]}")
        expires = _convert("[[subscribe]] expires", "int", item.get("expires", 3761))
        result.append(SubscribeSettings(str(item["uri"]), expires))
    return tuple(result)


def _validate(settings: Settings) -> None:
    found = problems_of(settings)
    if found:
        raise SettingsError("\n".join(found), found)


def problems_of(settings: Settings) -> list[str]:
    """Every problem of `settings` that `serve` would stop at, one line each."""
    problems: list[str] = []
    say = problems.append
    if settings.notify.mode not in ("rfc", "kamailio"):
        say(f"[notify] mode must be 'rfc' or 'kamailio', not {settings.notify.mode!r}")
    if settings.notify.reply_code not in (200, 202):
        say("[notify] reply_code must be 200 or 202")
    reg = settings.registrar
    if not 0 < reg.min_expires <= reg.default_expires <= reg.max_expires:
        say("[registrar] needs 0 < min_expires <= default_expires <= max_expires "
            f"(have {reg.min_expires}, {reg.default_expires}, {reg.max_expires})")
    if reg.max_contacts < 0:
        say("[registrar] max_contacts must not be negative (0: no limit)")
    for domain in reg.domains:
        if not _HOSTNAME.fullmatch(domain):
            say(f"[registrar] domains: {domain!r} is not a host name")
    for network in settings.security.trusted:
        if not _is_network(network):
            say(f"[security] trusted: {network!r} is not a network")
    if settings.security.max_rate < 0:
        say("[security] max_rate must not be negative (0: no limit)")
    problems.extend(_auth_problems(settings.auth))
    parsed: dict[str, Any] = {}
    for label, uri in (
        ("[reginfo] outbound_proxy", settings.reginfo.outbound_proxy),
        ("[reginfo] server_address", settings.reginfo.server_address),
        *(("[[subscribe]] uri", s.uri) for s in settings.subscribe),
    ):
        if uri is not None:
            try:
                parsed[label] = parse_uri(uri)
            except InvalidUri as error:
                say(f"{label}: {error}")
    reginfo = settings.reginfo
    if (settings.subscribe or reginfo.subscribe_on_register) and not reginfo.server_address:
        say("subscriptions need [reginfo] server_address (From and Contact of our "
            "SUBSCRIBEs)")
    server = parsed.get("[reginfo] server_address")
    if server is not None and not isinstance(server, SipUri):
        say("[reginfo] server_address must be a sip: or sips: URI")
    for sub in settings.subscribe:
        if sub.expires <= 0:
            say("[[subscribe]] expires must be positive")
    listen = settings.listen
    for kind, addresses in (("udp", listen.udp), ("tcp", listen.tcp)):
        for address in addresses:
            try:
                parse_listen(address)
            except ValueError:
                say(f"[listen] {kind}: {address!r} is not an IP address and port "
                    "(127.0.0.1:5060, [::1]:5060)")
    if min(listen.tcp_idle_timeout, listen.tcp_header_timeout, listen.tcp_max_connections) <= 0:
        say("[listen] tcp timeouts and tcp_max_connections must be positive")
    if listen.udp_receive_buffer < 65536:
        say("[listen] udp_receive_buffer must be at least 65536 bytes")
    if not 0 <= listen.udp_workers <= MAX_UDP_WORKERS:
        say(f"[listen] udp_workers must be 0 to {MAX_UDP_WORKERS}")
    if listen.udp_workers and not hasattr(socket, "SO_REUSEPORT"):
        say("[listen] udp_workers needs SO_REUSEPORT (Linux)")
    if not settings.node.id:
        say("[node] id must not be empty")
    try:
        StoreUrl.parse(settings.store.url)
    except StoreError as error:
        say(f"[store] url: {error}")
    if settings.store.timeout <= 0 or settings.store.max_pending <= 0:
        say("[store] timeout and max_pending must be positive")
    if settings.store.retain_days is not None and settings.store.retain_days < 1:
        say("[store] retain_days must be at least 1 (leave it out to keep the whole history)")
    if settings.store.cache_size < 0:
        say("[store] cache_size must not be negative")
    notifier = settings.notifier
    if not 0 < notifier.min_expires <= notifier.default_expires <= notifier.max_expires:
        say("[notifier] needs 0 < min_expires <= default_expires <= max_expires (have "
            f"{notifier.min_expires}, {notifier.default_expires}, {notifier.max_expires})")
    for peer in notifier.peers:
        if ":" in peer and peer.split(":", 1)[0].lower() in ("sip", "sips"):
            try:
                parse_uri(peer)
            except InvalidUri as error:
                say(f"[notifier] peers: {error}")
        elif not _is_network(peer):
            say(f"[notifier] peers: {peer!r} is neither a network nor a sip: URI")
    metrics = settings.metrics
    if metrics.listen is not None:
        try:
            parse_listen(metrics.listen)
        except ValueError:
            say(f"[metrics] listen: {metrics.listen!r} is not an IP address and port "
                "(127.0.0.1:9090, [::1]:9090)")
    if settings.log.level.lower() not in ("debug", "info", "warning", "error"):
        say(f"[log] level must be debug, info, warning or error, not {settings.log.level!r}")
    if settings.log.format not in ("text", "json"):
        say(f"[log] format must be \"text\" or \"json\", not {settings.log.format!r}")
    if metrics.ready_max_lag <= 0:
        say("[metrics] ready_max_lag must be positive (seconds)")
    if settings.node.event_loop not in ("uvloop", "asyncio"):
        say("[node] event_loop must be \"uvloop\" or \"asyncio\"")
    if settings.store.sqlite_synchronous not in ("normal", "full"):
        say("[store] sqlite_synchronous must be \"normal\" or \"full\"")
    return problems


def _auth_problems(auth: AuthSettings) -> list[str]:
    """The [auth] keys' own problems; whether the credentials can be read is checked
    when serve or `config check` loads them (infrastructure/credentials.py)."""
    problems = []
    if auth.realm is not None and _REALM.fullmatch(auth.realm) is None:
        problems.append(f"[auth] realm {auth.realm!r} must be printable, without quotes "
                        "or backslashes")
    if auth.realm and not auth.credentials:
        problems.append("[auth] realm needs [auth] credentials (an htdigest file or a "
                        "postgresql:// URL)")
    if auth.credentials and not auth.realm:
        problems.append("[auth] credentials needs [auth] realm (the realm of the HA1s)")
    if auth.nonce_lifetime <= 0:
        problems.append("[auth] nonce_lifetime must be positive (seconds)")
    return problems


_REALM = re.compile(r'[^"\\\x00-\x1f\x7f]{1,253}')
_HOSTNAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+"
                       r"|\[[0-9A-Fa-f:.]+\]")


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
