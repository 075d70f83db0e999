"""`import-location`: a Kamailio 5.6 location table (db_sqlite file or PostgreSQL) becomes
`created` events with origin `import`; a second run changes nothing; bad sources stop
with one line and nothing recorded."""

from __future__ import annotations

import json
import sqlite3
import time

import psycopg
import pytest
from click.testing import CliRunner

from domain import ContactUpdate
from infrastructure.cli import cli
from infrastructure.commands import CreateContact
from infrastructure.location_import import import_location, read_location
from tests.kamailio_location import insert_rows, local_time, location_ddl, location_row
from tests.support import clocked_service

ENV = {"PUA_REGINFO_REGINFO_DEFAULT_DOMAIN": "example.com"}
INSTANCE = "<urn:uuid:00000000-0000-1000-8000-00a0c91e6bf6>"
INVITE_ACK_BYE_OPTIONS = 1 | 4 | 8 | 512


def kamailio_rows(now: float) -> list[dict]:
    """Two AoRs live (alice with two contacts, one with every field set), one expired."""
    return [
        location_row("alice", "sip:alice@127.0.0.1:5070", now + 600, callid="a-1", cseq=7,
                     q=0.9, path="<sip:edge1@127.0.0.1;lr>,<sip:edge2@127.0.0.1;lr>",
                     received="sip:127.0.0.1:40000", user_agent="Phone\tv1",
                     socket="udp:127.0.0.1:5060", methods=INVITE_ACK_BYE_OPTIONS,
                     flags=2, cflags=4, instance=INSTANCE, reg_id=1),
        location_row("alice", "sip:alice@127.0.0.1:5071", now + 300, callid="a-2", cseq=3,
                     methods=-1),  # usrloc's ALL_METHODS as a signed INTEGER
        location_row("bob", "sip:bob@127.0.0.1:5072", now + 1200, callid="b-1",
                     domain="example.com", q=0.1),
        location_row("carol", "sip:carol@127.0.0.1:5073", now - 60, callid="c-1"),
    ]


def kamailio_sqlite(path, rows, table: str = "location"):
    with sqlite3.connect(path) as db:
        db.execute(location_ddl(table))
        insert_rows(db, rows, table)
    return f"sqlite:///{path}"


@pytest.fixture
def run(store_url):
    runner = CliRunner()

    def invoke(*args: str, status: int = 0):
        result = runner.invoke(cli, [*args, "--store", store_url], env=ENV)
        assert result.exit_code == status, result.output + result.stderr
        return result

    return invoke


def query(run) -> dict[str, dict]:
    return {b["contact"]: b for b in json.loads(run("query", "--json").stdout)}


def test_every_live_row_is_imported_with_its_fields(run, tmp_path):
    now = time.time()
    source = kamailio_sqlite(tmp_path / "kamailio.db", kamailio_rows(now))
    result = run("import-location", source)
    assert result.stdout.strip().endswith(
        "4 row(s): imported 3, skipped expired 1, already present 0, refused 0")
    found = query(run)
    assert set(found) == {"sip:alice@127.0.0.1:5070", "sip:alice@127.0.0.1:5071",
                          "sip:bob@127.0.0.1:5072"}
    first = found["sip:alice@127.0.0.1:5070"]
    assert abs(first["expires"] - (now + 600)) <= 1
    assert {k: first[k] for k in ("aor", "q", "callid", "cseq", "path", "received",
                                  "user_agent", "instance", "reg_id", "event", "origin")} == {
        "aor": "sip:alice@example.com", "q": 0.9, "callid": "a-1", "cseq": 7,
        "path": ["<sip:edge1@127.0.0.1;lr>", "<sip:edge2@127.0.0.1;lr>"],
        "received": "sip:127.0.0.1:40000", "user_agent": "Phone\tv1", "instance": INSTANCE,
        "reg_id": 1, "event": "created", "origin": "import"}
    second = found["sip:alice@127.0.0.1:5071"]
    assert (second["q"], second["instance"], second["reg_id"], second["user_agent"]) == (
        None, None, None, None)  # usrloc's "no q", "no reg-id" and empty User-Agent
    assert found["sip:bob@127.0.0.1:5072"]["aor"] == "sip:bob@example.com"
    tsv = run("query", "--format", "tsv").stdout.splitlines()
    header, rows = tsv[0].split("\t"), [dict(zip(tsv[0].split("\t"), line.split("\t")))
                                        for line in tsv[1:]]
    [full] = [r for r in rows if r["contact"] == "sip:alice@127.0.0.1:5070"]
    assert (full["methods"], full["flags"], full["cflags"], full["socket"]) == (
        "INVITE,ACK,BYE,OPTIONS", "2", "4", "udp:127.0.0.1:5060")
    assert full["user_agent"] == "Phone\\tv1"  # a tab inside a value is escaped
    assert "methods" in header and [r["methods"] for r in rows
                                    if r["contact"].endswith(":5071")] == [""]


def test_a_second_import_changes_nothing(run, tmp_path):
    source = kamailio_sqlite(tmp_path / "kamailio.db", kamailio_rows(time.time()))
    run("import-location", source)
    history = json.loads(run("audit", "alice", "--json").stdout)
    again = run("import-location", source, "--json")
    report = json.loads(again.stdout)
    assert (report["rows"], report["imported"], report["expired"], report["present"],
            report["refused"]) == (4, 0, 1, 3, [])
    assert json.loads(run("audit", "alice", "--json").stdout) == history
    assert [e["origin"] for e in history] == ["import"] * len(history)


def test_rows_that_cannot_be_bindings_are_refused_and_the_others_imported(run, tmp_path):
    now = time.time()
    run("contact", "add", "dave", "sip:dave@127.0.0.1:5080", "--expires", "600")
    rows = [
        location_row("erin", "sip:erin@127.0.0.1:5081", now + 600, callid="e-1"),
        location_row("erin", "sip:erin@127.0.0.1:5082", 0, callid="e-2",
                     last_modified=local_time(now)),  # usrloc's permanent contact
        location_row("frank", "not a uri", now + 600, callid="f-1"),
        location_row("gina", "sip:gina@127.0.0.1:5083", now + 600, callid="g-1", q=2.0),
        location_row("dave", "sip:dave@127.0.0.1:5080", now + 600, callid="d-9"),
        location_row("", "sip:nobody@127.0.0.1:5084", now + 600, callid="n-1"),
    ]
    source = kamailio_sqlite(tmp_path / "kamailio.db", rows)
    result = run("import-location", source, status=1)
    assert result.stdout.strip().endswith(
        "6 row(s): imported 1, skipped expired 0, already present 0, refused 5")
    refusals = result.stderr.splitlines()
    assert len(refusals) == 5 and all(r.startswith("pua-reginfo: refused: ") for r in refusals)
    text = "\n".join(refusals)
    for reason in ("permanent contact", "bad character in URI", "q 2 is above 1",
                   "is bound to sip:dave@example.com already, by Call-ID admin-",
                   "no username"):
        assert reason in text
    assert set(query(run)) == {"sip:dave@127.0.0.1:5080", "sip:erin@127.0.0.1:5081"}
    assert query(run)["sip:dave@127.0.0.1:5080"]["origin"] == "admin"  # left as it was


def garbage(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_text("this is not a database\n" * 200)
    return f"sqlite:///{path}"


def other_schema(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE location (username TEXT, contact TEXT, expires TEXT)")
    return f"sqlite:///{path}"


def empty_database(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("make_source, table, message", [
    (lambda tmp: f"sqlite:///{tmp / 'missing.db'}", "location", "missing.db does not exist"),
    (garbage, "location", "file is not a database"),
    (empty_database, "location", "has no table location"),
    (other_schema, "location", "is not a Kamailio 5.6 location table: no column ruid, domain"),
    (lambda tmp: kamailio_sqlite(tmp / "k.db", []), "location; DROP TABLE x",
     "is not a table name"),
    (lambda tmp: "mysql://kamailio@127.0.0.1/kamailio", "location",
     "unsupported source URL scheme 'mysql'"),
])
def test_a_source_that_cannot_be_read_is_one_line_and_nothing_is_recorded(
        tmp_path, sqlite_url, make_source, table, message):
    source = make_source(tmp_path)
    result = CliRunner().invoke(cli, ["import-location", source, "--table", table,
                                      "--store", sqlite_url], env=ENV)
    assert result.exit_code == 1
    assert result.stderr.startswith("pua-reginfo: error: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "pua-reginfo.db").exists()  # the store was never opened


def test_use_domain_keys_the_imported_records(tmp_path, sqlite_url):
    now = time.time()
    rows = [location_row("alice", "sip:alice@127.0.0.1:5070", now + 600, callid="x-1",
                         domain="a.example"),
            location_row("alice", "sip:alice@127.0.0.1:5071", now + 600, callid="x-2",
                         domain="b.example")]
    source = kamailio_sqlite(tmp_path / "kamailio.db", rows)
    for use_domain, records in (("false", 1), ("true", 2)):
        store = sqlite_url.replace(".db", f"-{use_domain}.db")
        env = {**ENV, "PUA_REGINFO_USRLOC_USE_DOMAIN": use_domain}
        result = CliRunner().invoke(cli, ["import-location", source, "--store", store], env=env)
        assert result.exit_code == 0, result.output + result.stderr
        stats = json.loads(CliRunner().invoke(cli, ["stats", "--json", "--store", store],
                                              env=env).stdout)
        assert (stats["records"], stats["contacts"]) == (records, 2)


def test_imported_bindings_are_not_published_until_the_aor_changes(tmp_path):
    service = clocked_service(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        service.catch_up_publisher()  # this node publishes from here on
        now = service.clock.now()
        source = kamailio_sqlite(tmp_path / "kamailio.db", kamailio_rows(now))
        report = import_location(service, read_location(source))
        assert report.imported == 3
        service.catch_up_publisher()
        assert service.publisher.view.pending(service.app.node) == []
        service.run(CreateContact("alice", ContactUpdate("sip:alice@127.0.0.1:5099", 60),
                                  "admin-1", "admin: contact add"))
        service.catch_up_publisher()
        [document] = service.publisher.view.pending(service.app.node)
        body = document.body.decode()
        # the AoR's full state: the imported bindings with the new one
        assert all(c in body for c in ("sip:alice@127.0.0.1:5070", "sip:alice@127.0.0.1:5071",
                                        "sip:alice@127.0.0.1:5099"))
    finally:
        service.close()


@pytest.mark.postgres
def test_a_postgresql_location_table(tmp_path, sqlite_url, postgres_databases):
    source = postgres_databases.create()
    now = time.time()
    with psycopg.connect(source, autocommit=True) as db:
        db.execute(location_ddl("location_old", postgres=True))
        insert_rows(db, kamailio_rows(now), "location_old", postgres=True)
    runner = CliRunner()
    args = ["import-location", source, "--table", "location_old", "--store", sqlite_url]
    result = runner.invoke(cli, args, env=ENV)
    assert result.exit_code == 0, result.output + result.stderr
    assert "imported 3, skipped expired 1" in result.stdout
    found = json.loads(runner.invoke(cli, ["query", "--json", "--store", sqlite_url],
                                     env=ENV).stdout)
    [first] = [b for b in found if b["contact"] == "sip:alice@127.0.0.1:5070"]
    assert abs(first["expires"] - (now + 600)) <= 1 and first["q"] == pytest.approx(0.9)
    assert first["path"] == ["<sip:edge1@127.0.0.1;lr>", "<sip:edge2@127.0.0.1;lr>"]
    again = runner.invoke(cli, args, env=ENV)
    assert "imported 0, skipped expired 1, already present 3" in again.stdout
    missing = runner.invoke(cli, ["import-location", source, "--store", sqlite_url], env=ENV)
    assert missing.exit_code == 1 and "has no table location" in missing.stderr
