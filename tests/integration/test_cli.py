"""The `pua-reginfo` command line: contract of DESIGN section 5, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from infrastructure.cli import cli
from infrastructure.store import StoreUrl
from infrastructure.store_locks import PRUNE, store_lock

QUERY_KEYS = {"aor", "contact", "expires", "q", "callid", "cseq", "received", "path", "user_agent",
              "instance", "reg_id", "state", "event", "origin", "last_modified"}
AUDIT_KEYS = {"time", "version", "event", "contact", "origin", "cause", "node"}


@pytest.fixture
def run(store_url):
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, [*args, "--store", store_url])
        if ok:
            assert result.exit_code == 0, result.output + result.stderr
        return result

    return invoke


def query(run, *args: str) -> list[dict]:
    return json.loads(run("query", "--json", *args).stdout)


def test_query_on_an_empty_store(run):
    run("expire")  # a command that writes makes the store
    assert query(run) == []
    assert "no bindings" in run("query").stdout


@pytest.mark.parametrize("command", [("query",), ("audit", "alice"), ("status",)])
def test_a_command_that_only_reads_creates_no_store(tmp_path, command):
    missing = tmp_path / "typo.db"
    result = CliRunner().invoke(cli, [*command, "--store", f"sqlite:///{missing}"])
    assert result.exit_code == 1  # query used to answer "no bindings" from a new, empty file
    assert f"{missing} does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_contact_add_then_query_shows_the_binding_with_every_key(run):
    before = time.time()
    run("contact", "add", "Alice@Example.com", "sip:alice@10.0.0.1:5060", "--expires", "600",
        "--q", "0.5")
    [binding] = query(run)
    assert set(binding) == QUERY_KEYS
    assert binding["aor"] == "sip:alice@example.com"
    assert binding["contact"] == "sip:alice@10.0.0.1:5060"
    assert before + 598 <= binding["expires"] <= time.time() + 602
    assert (binding["q"], binding["event"], binding["origin"], binding["state"]) == (
        0.5, "created", "admin", "active")
    assert binding["callid"].startswith("admin-") and binding["cseq"] == 1


def test_query_filters_by_aor(run):
    run("contact", "add", "alice@example.com", "sip:alice@10.0.0.1", "--expires", "600")
    run("contact", "add", "bob@example.com", "sip:bob@10.0.0.2", "--expires", "600")
    assert [b["contact"] for b in query(run, "--aor", "sip:bob@example.com")] == ["sip:bob@10.0.0.2"]
    table = run("query").stdout
    assert "sip:alice@10.0.0.1" in table and "sip:bob@10.0.0.2" in table


def test_admin_actions_are_recorded_and_audited_in_order(run):
    for n in (1, 2, 3, 4):
        run("contact", "add", "alice@example.com", f"sip:alice@10.0.0.{n}", "--expires", "600")
    run("contact", "shorten", "alice@example.com", "sip:alice@10.0.0.1", "--expires", "60")
    run("contact", "deactivate", "alice@example.com", "sip:alice@10.0.0.2")
    run("contact", "probation", "alice@example.com", "sip:alice@10.0.0.3", "--retry-after", "90")
    run("contact", "reject", "alice@example.com", "sip:alice@10.0.0.4")
    [left] = query(run)
    assert (left["contact"], left["event"]) == ("sip:alice@10.0.0.1", "shortened")

    entries = json.loads(run("audit", "alice@example.com", "--json").stdout)
    assert all(AUDIT_KEYS <= set(e) for e in entries)
    assert [e["version"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["event"] for e in entries] == [
        "registration.init", "created", "registration.active", "created", "created", "created",
        "shortened", "deactivated", "probation", "rejected"]
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    assert entries[8]["retry_after"] == 90
    assert {e["origin"] for e in entries} == {"admin"}
    assert entries[7]["cause"] == "admin: contact deactivate" and entries[7]["node"]


def test_audit_at_shows_the_bindings_as_they_were(run):
    run("contact", "add", "alice@example.com", "sip:alice@10.0.0.1", "--expires", "600")
    time.sleep(0.05)
    middle = time.time()
    time.sleep(0.05)
    run("contact", "deactivate", "alice@example.com", "sip:alice@10.0.0.1")
    run("contact", "add", "alice@example.com", "sip:alice@10.0.0.2", "--expires", "600")
    then = json.loads(run("audit", "alice@example.com", "--at", f"{middle:.6f}", "--json").stdout)
    assert [b["contact"] for b in then] == ["sip:alice@10.0.0.1"]
    assert set(then[0]) == QUERY_KEYS
    now = json.loads(run("audit", "alice@example.com", "--at", "2100-01-01T00:00:00Z", "--json").stdout)
    assert now == []  # by 2100 both bindings have lapsed
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    assert [b["contact"] for b in json.loads(
        run("audit", "alice@example.com", "--at", iso, "--json").stdout)] == ["sip:alice@10.0.0.2"]
    assert "no bindings" in run("audit", "alice@example.com", "--at", "0").stdout


def test_expire_records_expired_for_lapsed_bindings(run):
    run("contact", "add", "alice@example.com", "sip:alice@10.0.0.1", "--expires", "1")
    run("contact", "add", "alice@example.com", "sip:alice@10.0.0.2", "--expires", "600")
    time.sleep(1.1)
    assert "expired 1 binding(s)" in run("expire").stdout
    assert "expired 0 binding(s)" in run("expire").stdout
    events = json.loads(run("audit", "alice@example.com", "--json").stdout)
    assert events[-1]["event"] == "expired" and events[-1]["origin"] == "expiry"


def test_rebuild_reports_progress_and_gives_the_same_view(run):
    for n in range(5):
        run("contact", "add", f"user{n}@example.com", f"sip:u@10.0.0.{n}", "--expires", "600")
    before = query(run)
    out = run("rebuild").stdout
    assert "rebuilding usrloc" in out and "rebuilt usrloc: 15 events applied, 5 binding(s)" in out
    assert query(run) == before


@pytest.mark.parametrize("args, message", [
    (("audit", "nobody@example.com"), "no registration history for sip:nobody@example.com"),
    (("contact", "deactivate", "alice@example.com", "sip:x@10.0.0.1"), "no registration for"),
    (("contact", "add", "alice@example.com", "http://x", "--expires", "5"), "unsupported URI scheme"),
    (("contact", "add", "alice", "sip:x@10.0.0.1", "--expires", "5"), "has no domain"),
    (("audit", "alice@example.com", "--at", "yesterday"), "bad time 'yesterday'"),
])
def test_errors_are_one_line_on_stderr_with_a_non_zero_exit(run, args, message):
    run("expire")  # the store exists: a command that only reads creates none
    result = run(*args, ok=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stderr.startswith("pua-reginfo: error: ")


def test_illegal_transitions_and_unknown_contacts_are_reported(run):
    run("contact", "add", "alice@example.com", "sip:alice@10.0.0.1", "--expires", "600")
    again = run("contact", "add", "alice@example.com", "sip:alice@10.0.0.1", "--expires", "60", ok=False)
    assert again.exit_code == 1 and "already bound" in again.stderr
    unknown = run("contact", "reject", "alice@example.com", "sip:bob@10.0.0.9", ok=False)
    assert unknown.exit_code == 1 and "no active binding for sip:bob@10.0.0.9" in unknown.stderr
    longer = run("contact", "shorten", "alice@example.com", "sip:alice@10.0.0.1", "--expires",
                 "900", ok=False)
    assert "would not shorten" in longer.stderr
    assert len(query(run)) == 1


@pytest.mark.parametrize("store, message", [
    ("postgresql://postgres@127.0.0.1:1/nope", "cannot open store postgresql://postgres@127.0.0.1:1/nope"),
    ("postgresql://postgres@127.0.0.1:5432/pua_reginfo_missing_db", 'database "pua_reginfo_missing_db" does not exist'),
    ("sqlite:///no/such/folder/x.db", "directory"),
    ("mysql://x/y", "unsupported store URL scheme"),
])
def test_unusable_stores_are_one_clear_line_without_traceback(store, message):
    result = subprocess.run([sys.executable, "-m", "infrastructure.cli", "query", "--store", store],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_bad_config_files_are_refused_by_name(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[usrloc]\nuse_domian = true\n")
    result = CliRunner().invoke(cli, ["query", "--config", str(config)])
    assert result.exit_code == 1 and "unknown setting [usrloc] use_domian" in result.stderr


def test_prune_refuses_bad_input_with_one_clear_line(run, store_url):
    bad = run("prune", "--before", "yesterday", ok=False)
    assert (bad.exit_code, bad.stderr) == (1, "pua-reginfo: error: bad time 'yesterday': use "
                                               "ISO-8601 (2026-11-26T12:00:00Z) or Unix seconds\n")
    missing = run("prune", ok=False)
    assert missing.exit_code == 2 and "Missing option '--before'" in missing.stderr
    for too_late in (time.time() + 3600, time.time() - 5):
        refused = run("prune", "--before", str(int(too_late)), ok=False)
        assert refused.exit_code == 1
        assert "the time must be at least 60 s in the past" in refused.stderr
        assert refused.stderr.count("\n") == 1
    lock = store_lock(StoreUrl.parse(store_url), PRUNE)
    assert lock.try_acquire()
    try:
        busy = run("prune", "--before", "2020-01-01T00:00:00Z", ok=False)
    finally:
        lock.release()
    assert busy.stderr == ("pua-reginfo: error: a prune or a rebuild is running on this "
                           "store; prune when it ends\n")


def test_prune_reports_what_it_deleted_and_audit_the_horizon(run):
    run("contact", "add", "alice@example.com", "sip:alice@10.0.0.1", "--expires", "600")
    done = run("prune", "--before", "2020-01-01T00:00:00Z").stdout
    assert done == ("history before 2020-01-01T00:00:00Z pruned: 0 AoR(s) cut at a horizon "
                    "snapshot, 0 removed, 0 event(s), 0 snapshot(s) and 0 settled "
                    "publication(s) deleted\n")
    report = json.loads(run("prune", "--before", "1500000000", "--json").stdout)
    assert report == {"before": "2017-07-14T02:40:00Z", "horizon": "2020-01-01T00:00:00Z",
                      "kept": 0, "removed": 0, "events": 0, "snapshots": 0,
                      "publications": 0, "stopped": False}
    early = run("audit", "bob@example.com", "--at", "2019-12-31T23:59:59Z", ok=False)
    assert early.stderr == ("pua-reginfo: error: no registration history for "
                            "sip:bob@example.com since 2020-01-01T00:00:00Z (the history "
                            "before it was pruned)\n")
    assert json.loads(run("audit", "bob@example.com", "--at", "2020-01-02T00:00:00Z",
                          "--json").stdout) == []
    assert json.loads(run("status", "--json").stdout)["horizon"] == 1577836800.0
    assert ("history kept from 2020-01-01T00:00:00+00:00 (older pruned)"
            in run("status").stdout)


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """`pua-reginfo status | head -1`: no error, no traceback, exit 0 (was exit 70 with
    "internal error: BrokenPipeError")."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    url = f"sqlite:///{tmp_path / 'x.db'}"
    root = Path(__file__).resolve().parents[2]
    assert CliRunner().invoke(cli, ["expire", "--store", url]).exit_code == 0
    for command in (["status"], ["query"], ["status", "--json"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first line
        try:
            done = subprocess.run([sys.executable, "-m", "infrastructure.cli", *command,
                                   "--store", url], cwd=root, stdout=write,
                                  stderr=subprocess.PIPE, timeout=60)
        finally:
            os.close(write)
        assert (done.returncode, done.stderr) == (0, b""), (command, done.stderr)


def test_contact_add_keeps_to_the_registrars_max_expires(run):
    out = run("contact", "add", "alice@example.com", "sip:alice@10.0.0.1", "--expires",
              "86400").stdout
    assert "expires in 3600 s ([registrar] max_expires; 86400 asked)" in out
    [binding] = query(run)
    assert binding["expires"] - time.time() <= 3601
