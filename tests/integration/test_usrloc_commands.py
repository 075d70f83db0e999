"""`stats`, `contact rm` and `query --format tsv`: usrloc's statistics, ul.rm and ul.dump
in our words, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from infrastructure.cli import cli
from projections.usrloc.row import COLUMNS


@pytest.fixture
def run(store_url):
    runner = CliRunner()

    def invoke(*args: str, status: int = 0):
        result = runner.invoke(cli, [*args, "--store", store_url])
        assert result.exit_code == status, result.output + result.stderr
        return result

    return invoke


def add(run, aor: str, contact: str, expires: int = 600, *extra: str) -> None:
    run("contact", "add", aor, contact, "--expires", str(expires), *extra)


def test_stats_counts_records_contacts_and_expired_by_domain(run):
    add(run, "alice@example.com", "sip:alice@127.0.0.1:5070")
    add(run, "alice@example.com", "sip:alice@127.0.0.1:5071", 1)
    add(run, "bob@example.com", "sip:bob@127.0.0.1:5072")
    add(run, "carol@other.example", "sip:carol@127.0.0.1:5073")
    time.sleep(1.2)  # alice's second binding lapses; nothing sweeps it here
    stats = json.loads(run("stats", "--json").stdout)
    assert (stats["records"], stats["contacts"], stats["expired"]) == (3, 4, 1)
    assert stats["domains"] == [
        {"domain": "example.com", "records": 2, "contacts": 3, "expired": 1},
        {"domain": "other.example", "records": 1, "contacts": 1, "expired": 0}]
    text = run("stats").stdout
    assert "records 3, contacts 4, expired (not yet swept) 1" in text
    assert "other.example: records 1, contacts 1, expired 0" in text
    run("expire")
    assert json.loads(run("stats", "--json").stdout)["expired"] == 0


def test_contact_rm_removes_the_whole_aor_or_one_contact(run):
    for port in (5070, 5071, 5072):
        add(run, "alice@example.com", f"sip:alice@127.0.0.1:{port}")
    add(run, "bob@example.com", "sip:bob@127.0.0.1:5080")
    add(run, "bob@example.com", "sip:bob@127.0.0.1:5081")
    removed = run("contact", "rm", "alice@example.com").stdout.splitlines()
    assert sorted(removed) == [f"deactivated sip:alice@127.0.0.1:{p} on sip:alice@example.com"
                               for p in (5070, 5071, 5072)]
    run("contact", "rm", "bob@example.com", "sip:bob@127.0.0.1:5080", "--event", "rejected")
    left = json.loads(run("query", "--json").stdout)
    assert [b["contact"] for b in left] == ["sip:bob@127.0.0.1:5081"]
    history = json.loads(run("audit", "alice@example.com", "--json").stdout)
    ends = [(e["event"], e["origin"], e["cause"]) for e in history[-4:]]
    assert ends == [("deactivated", "admin", "admin: contact rm")] * 3 + [
        ("registration.terminated", "admin", "admin: contact rm")]
    bob = json.loads(run("audit", "bob@example.com", "--json").stdout)
    assert (bob[-1]["event"], bob[-1]["contact"]) == ("rejected", "sip:bob@127.0.0.1:5080")
    again = run("contact", "rm", "alice@example.com", status=1)
    assert again.stderr == "pua-reginfo: error: sip:alice@example.com has no active binding\n"
    nobody = run("contact", "rm", "nobody@example.com", status=1)
    assert "no registration for sip:nobody@example.com" in nobody.stderr


def test_query_tsv_has_a_header_and_every_column_of_the_usrloc_row(run):
    add(run, "alice@example.com", "sip:alice@127.0.0.1:5070", 600, "--q", "0.5")
    add(run, "bob@example.com", "sip:bob@127.0.0.1:5080")
    lines = run("query", "--format", "tsv").stdout.splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = [dict(zip(COLUMNS, line.split("\t"))) for line in lines[1:]]
    assert all(len(line.split("\t")) == len(COLUMNS) for line in lines[1:])
    as_json = {b["contact"]: b for b in json.loads(run("query", "--json").stdout)}
    assert set(as_json) == {r["contact"] for r in rows}
    for row in rows:
        binding = as_json[row["contact"]]
        assert row["aor"] == binding["aor"] and row["callid"] == binding["callid"]
        assert int(row["cseq"]) == binding["cseq"]
        assert abs(float(row["expires"]) - binding["expires"]) < 1
        assert (row["q"] or None) == (None if binding["q"] is None else f"{binding['q']:g}")
        assert (row["received"], row["instance"], row["path"]) == ("", "", "[]")
        assert (row["state"], row["event"], row["origin"]) == ("active", "created", "admin")
    one = run("query", "--format", "tsv", "--aor", "bob@example.com").stdout.splitlines()
    assert len(one) == 2 and one[1].split("\t")[COLUMNS.index("contact")] == (
        "sip:bob@127.0.0.1:5080")
    assert run("query", "--format", "json").stdout == run("query", "--json").stdout


def test_query_tsv_of_no_binding_is_the_header_alone(run):
    run("expire")  # a command that writes makes the store
    assert run("query", "--format", "tsv").stdout == "\t".join(COLUMNS) + "\n"
