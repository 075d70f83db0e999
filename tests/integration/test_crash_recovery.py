"""A process killed between the event commit and the view update loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from infrastructure.commands import Register
from tests.support import open_test_service, register

CRASHING_WRITER = textwrap.dedent("""
    import os, signal, sys, time
    from infrastructure.bootstrap import open_service
    from infrastructure.commands import Register
    from infrastructure.settings import load_settings
    from domain import ContactUpdate, RegisterRequest
    settings = load_settings(overrides={"store": {"url": sys.argv[1]}})
    service = open_service(settings)
    request = RegisterRequest("crash-call", 1, (ContactUpdate("sip:alice@10.0.0.7", 3600),))
    service.app.run(Register("sip:alice@example.com", request), time.time())
    # The events are committed; the usrloc view has not been told. Die right here.
    os.kill(os.getpid(), signal.SIGKILL)
""")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infrastructure.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_killed_writer_then_any_command_catches_the_view_up(store_url):
    crashed = subprocess.run([sys.executable, "-c", CRASHING_WRITER, store_url],
                             capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    service = open_test_service(store_url)
    try:
        assert service.app.recorder.max_notification_id() == 3
        assert service.view.rows(), "opening the service caught the view up"
    finally:
        service.close()

    result = cli("query", "--json", "--store", store_url)
    assert result.returncode == 0, result.stderr
    [binding] = json.loads(result.stdout)
    assert (binding["contact"], binding["callid"], binding["cseq"]) == (
        "sip:alice@10.0.0.7", "crash-call", 1)


def test_a_view_left_behind_is_caught_up_by_the_next_command(store_url):
    service = open_test_service(store_url)
    try:
        service.app.run(Register("sip:bob@example.com",
                             register("b1", 1, ("sip:bob@10.0.0.8", 3600))), 1_900_000_000.0)
        assert service.view.rows() == []  # nothing has caught the view up yet
    finally:
        service.close()
    result = cli("query", "--json", "--store", store_url, "--aor", "bob@example.com")
    assert [b["contact"] for b in json.loads(result.stdout)] == ["sip:bob@10.0.0.8"]
