"""A real Kamailio 5.6 next to a real `pua-reginfo serve`, all on loopback, stopped by PID.

Two Kamailio instances run from the templates in tests/interop/kamailio/, rendered into
the test's tmp_path with ports chosen here, their sqlite database and ctl socket there too:

- a presence server (presence + presence_reginfo) that takes PUBLISH and SUBSCRIBE for
  Event: reg and NOTIFYs the watchers;
- a registrar (usrloc + registrar + pua + pua_reginfo) that PUBLISHes its registrations to
  that presence server and applies reg NOTIFYs with reginfo_handle_notify.

    lab = kamailio                                   # the fixture
    presence = lab.start_presence()
    registrar = lab.start_registrar(presence)
    registrar.reginfo_subscribe("sip:bob@example.com")
    registrar.ul_dump()                              # [UsrlocContact, ...] from kamcmd

REGISTERs come from sipp (tests/interop/sipp/register.xml, one REGISTER per run: sipp
matches answers by Call-ID, so a burst is many runs). Missing Kamailio is a failure, never a skip: the
interop suite is part of the definition of done.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, Gateways, RunningGateway, free_port, options
from tests.e2e.conftest import gateways, sipp  # noqa: F401 (fixtures)
from tests.e2e.sipp_peer import SippPeer

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "kamailio"
SCENARIOS = HERE / "sipp"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
NEEDED_MODULES = ("presence.so", "presence_reginfo.so", "pua.so", "pua_reginfo.so",
                  "usrloc.so", "registrar.so", "db_sqlite.so", "tm.so", "ctl.so")
SQL = Path("/usr/share/kamailio/db_sqlite")
PACKAGES = "kamailio kamailio-presence-modules kamailio-sqlite-modules"
DOMAIN = "example.com"


def require_kamailio() -> tuple[str, str]:
    """kamailio and kamcmd with the modules the lab loads, or a loud failure."""
    kamailio, kamcmd = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None), \
        shutil.which("kamcmd") or ("/usr/sbin/kamcmd" if Path("/usr/sbin/kamcmd").exists()
                                   else None)
    missing = [m for m in NEEDED_MODULES if not (MODULES / m).exists()]
    if kamailio is None or kamcmd is None or missing:
        pytest.fail(f"the interop tests need Kamailio 5.6 (Debian packages {PACKAGES}; "
                    f"scripts/test installs them): kamailio={kamailio} kamcmd={kamcmd} "
                    f"missing modules={missing}")
    return kamailio, kamcmd


# --- Kamailio processes ------------------------------------------------------------------

@dataclass(frozen=True)
class UsrlocContact:
    """One contact of `kamcmd ul.dump`."""

    aor: str  # the usrloc key: "alice", or "bob@example.com" for NOTIFY-learned ones
    address: str
    expires: int  # seconds left; -1 permanent
    q: float
    callid: str
    cseq: int
    user_agent: str
    path: str = ""  # the Path values usrloc keeps, comma-joined


def parse_ul_dump(text: str) -> list[UsrlocContact]:
    """The live contacts of a `kamcmd ul.dump` answer (its indented `Key: value` tree);
    one shown `expired` has lapsed and only waits for usrloc's timer to remove it."""
    contacts: list[UsrlocContact] = []
    aor, fields = None, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("AoR:"):
            aor = line.split(":", 1)[1].strip()
        elif line == "Contact: {":
            fields = {}
        elif fields is not None and line == "}":
            if fields["Expires"] not in ("expired", "deleted"):  # lapsed: awaits usrloc's timer
                expires = -1 if fields["Expires"] == "permanent" else int(fields["Expires"])
                contacts.append(UsrlocContact(
                    aor or "", fields["Address"], expires, float(fields["Q"]),
                    fields["Call-ID"], int(fields["CSeq"]), fields.get("User-Agent", ""),
                    fields.get("Path", "").replace("[not set]", "")))
            fields = None
        elif fields is not None and ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return contacts


@dataclass
class Kamailio:
    """One Kamailio started from a template; stopped by its PID."""

    name: str
    port: int
    ctl: Path
    log_path: Path
    kamcmd: str
    process: subprocess.Popen

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    def log(self, tail: int = 20000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def rpc(self, *command: str) -> str:
        result = subprocess.run([self.kamcmd, "-s", f"unix:{self.ctl}", *command],
                                capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, f"kamcmd {command}: {result.stderr}\n{self.log()}"
        return result.stdout

    def ul_dump(self) -> list[UsrlocContact]:
        return parse_ul_dump(self.rpc("ul.dump"))

    def reginfo_subscribe(self, uri: str, expires: int = 3600) -> None:
        """Make this registrar run reginfo_subscribe(uri, expires) (an OPTIONS it knows)."""
        branch = uuid.uuid4().hex
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            sock.settimeout(2)
            local = sock.getsockname()[1]
            sock.sendto((
                f"OPTIONS sip:reginfo@{HOST}:{self.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:control@{DOMAIN}>;tag=c{branch[:8]}\r\n"
                f"To: <sip:reginfo@{HOST}:{self.port}>\r\nCall-ID: {branch}@control\r\n"
                f"CSeq: 1 OPTIONS\r\nX-Reginfo-Subscribe: {uri}\r\n"
                f"X-Reginfo-Expires: {expires}\r\nContent-Length: 0\r\n\r\n").encode(),
                (HOST, self.port))
            answer = sock.recv(65535).decode(errors="replace")
        assert answer.startswith("SIP/2.0 200") and "X-Reginfo-Subscribe-RC: 1" in answer, answer

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class KamailioLab:
    """Starts the Kamailio instances of one test and stops every one of them afterwards."""

    def __init__(self, tmp_path: Path):
        self.kamailio, self.kamcmd = require_kamailio()
        self.tmp_path = tmp_path
        self.running: list[Kamailio] = []

    def start_presence(self) -> Kamailio:
        return self._start("presence", {})

    def start_registrar(self, presence: Any, versions: bool = True,
                        publish: bool = True) -> Kamailio:
        """`presence`: what has the port its SUBSCRIBEs and PUBLISHes go to (a Kamailio
        presence server, or our service as notifier). versions=False: pua's default, every
        reginfo document says version="0". publish=False: no PUBLISH at all."""
        return self._start("registrar", {"PRESENCE_PORT": str(presence.port),
                                         "VERSIONS": "1" if versions else "0",
                                         "PUBLISH": "1" if publish else "0"})

    def start_location_registrar(self) -> Kamailio:
        """A registrar whose usrloc writes its location table (db_mode 1) to
        `self.database(instance)`."""
        return self._start("location", {})

    def database(self, instance: Kamailio) -> Path:
        return self.tmp_path / f"{instance.name}.db"

    def _start(self, role: str, values: dict[str, str]) -> Kamailio:
        name = f"{role}-{len(self.running)}"
        port = free_port()
        database = self.tmp_path / f"{name}.db"
        with sqlite3.connect(database) as db:  # the tables presence and pua check at startup
            db.executescript((SQL / "standard-create.sql").read_text()
                             + (SQL / "presence-create.sql").read_text()
                             + (SQL / "usrloc-create.sql").read_text())
        ctl = self.tmp_path / f"{name}.ctl"
        values = {"PORT": str(port), "DB": str(database), "CTL": str(ctl), **values}
        text = (TEMPLATES / f"{role}.cfg").read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        assert not re.search(r"@[A-Z]+(_[A-Z]+)?@", text.split("request_route")[1]), f"unfilled placeholder in {role}.cfg"
        config = self.tmp_path / f"{name}.cfg"
        config.write_text(text)
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [self.kamailio, "-f", str(config), "-DD", "-E", "-Y", str(self.tmp_path),
                 "-m", "64", "-M", "8"], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        instance = Kamailio(name, port, ctl, log_path, self.kamcmd, process)
        self.running.append(instance)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not instance.alive():
                raise AssertionError(f"kamailio {name} exited at once:\n{instance.log()}")
            if options(port).startswith(b"SIP/2.0 200") and ctl.exists():
                return instance
            time.sleep(0.1)
        raise AssertionError(f"kamailio {name} did not answer OPTIONS:\n{instance.log()}")

    def stop_all(self) -> None:
        for instance in reversed(self.running):
            instance.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {k.name} log (tail)\n{k.log(6000)}" for k in self.running)


@pytest.fixture
def kamailio(tmp_path):
    lab = KamailioLab(tmp_path)
    try:
        yield lab
    finally:
        lab.stop_all()


# --- our service ---------------------------------------------------------------------------

def service_config(port: int, presence: Kamailio, subscribe: Iterable[str] = (), *,
                   notify_mode: str = "rfc", kamailio_compat: bool = False,
                   publish: bool = True, transport: str = "udp") -> str:
    """serve on 127.0.0.1:port, publishing to and subscribing at the Kamailio presence
    server over `transport`, subscribed to `subscribe`; REGISTERs down to 1 s accepted."""
    tcp = ";transport=tcp" if transport == "tcp" else ""
    proxy = f"sip:{HOST}:{presence.port}{tcp}"
    text = (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            f'[registrar]\ndomains = ["{DOMAIN}"]\nmin_expires = 1\n[node]\nid = "interop"\n'
            f'[reginfo]\ndefault_domain = "{DOMAIN}"\n'
            f'publish_reginfo = {"true" if publish else "false"}\n'
            f'outbound_proxy = "{proxy}"\n'
            f'server_address = "sip:reginfo@{HOST}:{port}{tcp}"\n'
            f'kamailio_compat = {"true" if kamailio_compat else "false"}\n'
            f'[notify]\nmode = "{notify_mode}"\n')
    for uri in subscribe:
        text += f'[[subscribe]]\nuri = "{uri}"\nexpires = 3761\n'
    return text


def start_service(gateways: Gateways, store_url: str, presence: Kamailio,
                  subscribe: Iterable[str] = (), **options) -> RunningGateway:
    port = free_port()
    while port == presence.port:
        port = free_port()
    return gateways.start(store_url, service_config(port, presence, subscribe, **options))


def our_bindings(gateway: RunningGateway, aor: str | None = None) -> list[dict]:
    result = gateway.cli("query", "--json", *(("--aor", aor) if aor else ()))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def our_status(gateway: RunningGateway) -> dict:
    result = gateway.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- sipp UAs --------------------------------------------------------------------------------

@dataclass
class Registrations:
    """sipp UAs REGISTERing at one registrar (Kamailio or us); one sipp run per REGISTER."""

    sipp: str
    workdir: Path
    target: int
    runs: list[SippPeer] = field(default_factory=list)

    def register(self, user: str, callid: str, seq: int, contact: str, expires: int,
                 ua: str = "pua-reginfo-interop") -> float:
        """Send one REGISTER and return when its 200 OK arrived (Unix seconds)."""
        for attempt in range(3):  # a free port may be taken before sipp binds it (errno 98)
            peer = SippPeer(self.sipp, SCENARIOS / "register.xml", free_port(), self.workdir,
                            keys={"user": user, "domain": DOMAIN, "contact": contact,
                                  "expires": expires, "seq": seq, "ua": ua},
                            calls=1, timeout=10,
                            extra=("-cid_str", callid, f"{HOST}:{self.target}"),
                            name=f"register-{self.target}-{len(self.runs)}")
            self.runs.append(peer)
            try:
                peer.start()
                break
            except AssertionError as error:
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
        status = peer.wait(15)
        assert status == 0, f"REGISTER {user} {contact} failed (sipp {status})\n{peer.describe()}"
        return next(m.time for m in peer.messages() if m.status == 200)

    def batch(self, rows: Iterable[tuple[str, str, int, str, int]]) -> list[float]:
        """REGISTER (user, Call-ID, CSeq, Contact, Expires) rows one after the other.

        One sipp run each: sipp matches answers to its calls by Call-ID, so a scenario
        cannot take Call-IDs from an injection file."""
        return [self.register(user, callid, seq, contact, expires)
                for user, callid, seq, contact, expires in rows]

    def stop_all(self) -> None:
        for peer in self.runs:
            peer.stop()


@pytest.fixture
def registrations(sipp, tmp_path):  # noqa: F811 (the e2e fixture)
    """`registrations(port)` -> Registrations aimed at that registrar; stopped afterwards."""
    made: list[Registrations] = []

    def make(target: int) -> Registrations:
        made.append(Registrations(sipp, tmp_path, target))
        return made[-1]
    try:
        yield make
    finally:
        for registrations in made:
            registrations.stop_all()


def wait_for(condition: Callable[[], object], timeout: float, what: str,
             context: Callable[[], str] = lambda: "") -> object:
    """Poll condition() until truthy; return its value or fail with the context."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout} s\n{context()}")
        time.sleep(0.1)
