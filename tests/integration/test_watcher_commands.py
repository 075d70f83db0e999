"""The notifier's watchers over a real store (SQLite and PostgreSQL): subscribe, NOTIFYs
recorded with their versions, refresh, fetch, unsubscribe, and a restart (a fresh load)
going on with the next version."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from domain.errors import IllegalTransition, UnknownWatcher
from domain.watcher import WatcherDialog, watcher_id
from infrastructure.cli import cli
from infrastructure.commands import EndWatch, RecordNotified, Register, Watch
from infrastructure.status import service_status
from tests.support import register, run_at_next_second

ALICE = "sip:alice@example.com"


run = run_at_next_second


def dialog(n: int = 1) -> WatcherDialog:
    return WatcherDialog(f"w{n}@phone", f"ours-{n}", f"theirs-{n}", "sip:watcher@example.com",
                         "sip:watcher@10.0.0.9:5062", ("<sip:p.example.com;lr>",), "udp")


def stored(service, n: int = 1):
    return service.app.repository.get(watcher_id(dialog(n).dialog_id))


def test_a_watcher_keeps_its_versions_across_a_reload(service):
    run(service, Watch("alice", dialog(), 600, refresh=False))
    run(service, RecordNotified(dialog().dialog_id, 0, 1, True))
    run(service, RecordNotified(dialog().dialog_id, 1, 2, False))
    watcher = stored(service)
    assert (watcher.aor, watcher.dialog, watcher.active) == (ALICE, dialog(), True)
    assert (watcher.next_version(), watcher.next_cseq()) == (2, 3)
    assert watcher.expires_at == pytest.approx(service.clock.now() - 2 + 600)
    with pytest.raises(IllegalTransition):
        run(service, RecordNotified(dialog().dialog_id, 5, 3, False))
    assert stored(service).next_version() == 2  # a refused record changes nothing


def test_refresh_fetch_and_unsubscribe(service):
    run(service, Watch(ALICE, dialog(), 600, refresh=False))
    run(service, Watch(ALICE, dialog(), 3600, refresh=True))
    assert stored(service).expires_at == pytest.approx(service.clock.now() + 3600)
    run(service, Watch(ALICE, dialog(), 0, refresh=True))  # unsubscribe
    watcher = stored(service)
    assert (watcher.state, watcher.reason, watcher.final_due) == ("terminated", "timeout", True)
    run(service, RecordNotified(dialog().dialog_id, 0, 1, True))  # the final NOTIFY
    assert not stored(service).final_due
    with pytest.raises(UnknownWatcher):
        run(service, Watch(ALICE, dialog(), 600, refresh=True))
    fetched = run(service, Watch(ALICE, dialog(2), 0, refresh=False))  # a fetch
    assert (fetched.state, fetched.final_due) == ("terminated", True)


def test_the_views_read_past_watcher_events(service):
    """Watcher events share the log with the AoRs': every projection skips them."""
    run(service, Register(ALICE, register("r1", 1, ("sip:alice@10.0.0.1", 600))))
    run(service, Watch(ALICE, dialog(), 600, refresh=False))
    run(service, RecordNotified(dialog().dialog_id, 0, 1, True))
    run(service, Register(ALICE, register("r1", 2, ("sip:alice@10.0.0.2", 600))))
    service.catch_up()
    live = {row.contact for row in service.view.rows()}
    assert live == {"sip:alice@10.0.0.1", "sip:alice@10.0.0.2"}
    assert service.catch_up_publisher() >= 0
    assert service.catch_up_subscriptions() >= 0
    service.rebuild()
    assert {row.contact for row in service.view.rows()} == live


def test_a_refresh_of_an_unknown_dialog_is_481(service):
    with pytest.raises(UnknownWatcher) as raised:
        run(service, Watch(ALICE, dialog(3), 600, refresh=True))
    assert raised.value.sip_status == 481
    with pytest.raises(UnknownWatcher):
        run(service, EndWatch(dialog(3).dialog_id, "failed"))


def test_a_failed_notify_ends_the_watcher_without_a_final_notify(service):
    run(service, Watch(ALICE, dialog(), 600, refresh=False))
    run(service, RecordNotified(dialog().dialog_id, 0, 1, True))
    run(service, EndWatch(dialog().dialog_id, "failed"))
    watcher = stored(service)
    assert (watcher.state, watcher.reason, watcher.final_due) == ("terminated", "failed", False)


def test_the_watchers_view_follows_and_forgets_what_is_done(service):
    run(service, Watch(ALICE, dialog(1), 600, refresh=False))
    run(service, Watch(ALICE, dialog(2), 600, refresh=False, peer=True))
    run(service, RecordNotified(dialog(1).dialog_id, 0, 1, True))
    assert service.catch_up_watchers() == 3
    rows = {row.dialog.dialog_id: row for row in service.watchers.view.of_aor(ALICE)}
    first, peer = rows[dialog(1).dialog_id], rows[dialog(2).dialog_id]
    assert (first.state, first.document_version, first.cseq, first.peer) == ("active", 0, 1,
                                                                            False)
    assert first.dialog == dialog(1) and first.expires_at == pytest.approx(
        service.clock.now() - 2 + 600)
    assert (peer.peer, peer.document_version, peer.cseq) == (True, None, 0)
    run(service, EndWatch(dialog(2).dialog_id, "failed"))  # no final NOTIFY owed
    run(service, Watch(ALICE, dialog(1), 0, refresh=True))  # unsubscribed: one owed
    service.catch_up_watchers()
    [owed] = service.watchers.view.current()
    assert (owed.dialog, owed.state, owed.final_due) == (dialog(1), "terminated", True)
    run(service, RecordNotified(dialog(1).dialog_id, 1, 2, True))
    service.catch_up_watchers()
    assert service.watchers.view.current() == [] and service.watchers.view.of_aor(ALICE) == []


def test_status_lists_the_watchers(service, store_url):
    run(service, Watch(ALICE, dialog(1), 600, refresh=False))
    run(service, RecordNotified(dialog(1).dialog_id, 0, 1, True))
    run(service, Watch(ALICE, dialog(2), 600, refresh=False, peer=True))
    run(service, EndWatch(dialog(2).dialog_id, "deactivated"))  # its final NOTIFY still due
    [first, second] = sorted(service_status(service)["watchers"], key=lambda w: w["dialog"])
    assert first == {
        "aor": ALICE, "watcher": "sip:watcher@example.com", "state": "active", "reason": None,
        "expires_at": pytest.approx(service.clock.now() - 3 + 600), "version": 0, "cseq": 1,
        "peer": False, "final_due": False, "dialog": dialog(1).dialog_id,
        "remote_target": "sip:watcher@10.0.0.9:5062", "transport": "udp"}
    assert (second["state"], second["reason"], second["final_due"], second["peer"]) == (
        "terminated", "deactivated", True, True)
    out = CliRunner().invoke(cli, ["status", "--store", store_url])
    assert out.exit_code == 0, out.output
    assert "watchers: 2" in out.output
    assert (f"  {ALICE} watched by sip:watcher@example.com (udp sip:watcher@10.0.0.9:5062): "
            "active, expires ") in out.output
    assert "sync peer): terminated (deactivated)" in out.output and "final NOTIFY due" in out.output
