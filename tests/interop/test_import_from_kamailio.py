"""Migration from a real Kamailio 5.6: its usrloc writes the location table (db_sqlite,
db_mode 1) while UAs REGISTER several contacts per AoR, with q values and a Path; then
`import-location` of that file gives, in `query`, what `kamcmd ul.dump` shows."""

from __future__ import annotations

import json
import socket
import time
import uuid

from click.testing import CliRunner

from infrastructure.cli import cli
from tests.e2e.conftest import HOST
from tests.interop.conftest import DOMAIN

PATH = "<sip:edge1@127.0.0.1:5998;lr>,<sip:edge2@127.0.0.1:5999;lr>"
ENV = {"PUA_REGINFO_REGINFO_DEFAULT_DOMAIN": DOMAIN}


def register(port: int, user: str, callid: str, cseq: int, contacts: list[str],
             expires: int = 600, path: str | None = None, agent: str = "interop-phone/1.0"):
    """One REGISTER over UDP to 127.0.0.1:port; returns the status line of its answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        local, branch = sock.getsockname()[1], uuid.uuid4().hex
        headers = [
            f"REGISTER sip:{DOMAIN} SIP/2.0",
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{branch};rport",
            "Max-Forwards: 70", f"From: <sip:{user}@{DOMAIN}>;tag={branch[:10]}",
            f"To: <sip:{user}@{DOMAIN}>", f"Call-ID: {callid}", f"CSeq: {cseq} REGISTER",
            f"Contact: {', '.join(contacts)}", f"Expires: {expires}",
            f"User-Agent: {agent}", *([f"Path: {path}", "Supported: path"] if path else []),
            "Content-Length: 0"]
        sock.sendto(("\r\n".join(headers) + "\r\n\r\n").encode(), (HOST, port))
        return sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]


def test_import_location_of_kamailio_usrloc_matches_its_ul_dump(kamailio, tmp_path):
    registrar = kamailio.start_location_registrar()
    port = registrar.port
    regs = [
        ("alice", "alice-1@interop", 4, [f"<sip:alice@{HOST}:5070>;q=0.9",
                                         f"<sip:alice@{HOST}:5071>;q=0.4"], 600, PATH),
        ("alice", "alice-2@interop", 1, [f"<sip:alice@{HOST}:5072>"], 300, None),
        ("bob", "bob-1@interop", 7, [f"<sip:bob@{HOST}:5080>;q=0.5;expires=900"], 600,
         f"<sip:edge1@{HOST}:5998;lr>"),
        ("carol", "carol-1@interop", 1, [f"<sip:carol@{HOST}:5090>"], 1, None),
    ]
    for user, callid, cseq, contacts, expires, path in regs:
        answer = register(port, user, callid, cseq, contacts, expires, path)
        assert answer.startswith("SIP/2.0 200"), f"{answer}\n{registrar.log()}"
    time.sleep(2.2)  # carol's binding lapses; usrloc's timer has not removed its row yet

    dumped = registrar.ul_dump()
    dumped_at = time.time()
    assert sorted(c.address for c in dumped) == [
        f"sip:alice@{HOST}:5070", f"sip:alice@{HOST}:5071", f"sip:alice@{HOST}:5072",
        f"sip:bob@{HOST}:5080"]

    store = f"sqlite:///{tmp_path / 'pua-reginfo.db'}"
    source = f"sqlite:///{kamailio.database(registrar)}"
    runner = CliRunner()
    result = runner.invoke(cli, ["import-location", source, "--store", store], env=ENV)
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout.strip().endswith(
        "5 row(s): imported 4, skipped expired 1, already present 0, refused 0"), result.stdout

    ours = {b["contact"]: b for b in json.loads(
        runner.invoke(cli, ["query", "--json", "--store", store], env=ENV).stdout)}
    assert set(ours) == {c.address for c in dumped}
    for contact in dumped:
        binding = ours[contact.address]
        assert binding["aor"] == f"sip:{contact.aor}@{DOMAIN}"
        assert abs((binding["expires"] - dumped_at) - contact.expires) <= 2, (binding, contact)
        assert binding["q"] == (None if contact.q < 0 else contact.q), (binding, contact)
        assert (binding["callid"], binding["cseq"], binding["user_agent"]) == (
            contact.callid, contact.cseq, contact.user_agent)
        assert ",".join(binding["path"]) == contact.path
        assert (binding["event"], binding["origin"]) == ("created", "import")
    assert ours[f"sip:alice@{HOST}:5070"]["path"] == PATH.split(",")

    again = runner.invoke(cli, ["import-location", source, "--store", store], env=ENV)
    assert "imported 0, skipped expired 1, already present 4, refused 0" in again.stdout
