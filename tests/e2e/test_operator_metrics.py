"""The operator's endpoint of a running `serve`: /metrics moves with the traffic, and
/health/ready (with OPTIONS) turns 503 while the event store is away and back after.

One gateway registers, publishes to a scripted presence server, keeps a subscription
there, takes NOTIFYs in it (one full state, one with a version gap, one broken), and
notifies a watcher; every family of the endpoint is scraped before and after.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import HOST, free_port, options, wait_for_workers
from tests.e2e.hostile_corpus import reginfo_body
from tests.e2e.python_peer import PythonPeer
from tests.e2e.test_store_outage import admin, register as register_alice, wait_for_options
from tests.e2e.watching import UdpWatcher, register


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    status, text = get(port, "/metrics")
    assert status == 200, text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((f"pua_reginfo_{name}", tuple(sorted(labels.items()))), 0.0)


def config(port: int, peer_port: int, metrics_port: int) -> str:
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            f'[reginfo]\ndefault_domain = "example.com"\n'
            f'outbound_proxy = "sip:{HOST}:{peer_port}"\n'
            f'server_address = "sip:reginfo@{HOST}:{port}"\n'
            f'[metrics]\nlisten = "{HOST}:{metrics_port}"\n'
            f'[[subscribe]]\nuri = "sip:bob@example.com"\nexpires = 600\n')


def test_every_family_moves_with_the_traffic(gateways, tmp_path):
    peer = PythonPeer.start(free_port())
    port, metrics_port = free_port(), free_port()
    watcher = UdpWatcher("sip:alice@example.com")
    try:
        gateway = gateways.start(f"sqlite:///{tmp_path / 'store.db'}",
                                 config(port, peer.port, metrics_port))
        assert get(metrics_port, "/health/live") == (200, "live\n")
        assert peer.wait_for(lambda p: p.dialogs, 10), gateway.log()
        before = scrape(metrics_port)

        assert register(port, "alice", f"sip:alice@{HOST}:7001", 600, 1) == "SIP/2.0 200 OK"
        assert register(port, "alice", f"sip:alice@{HOST}:7002", 1, 2).startswith(
            "SIP/2.0 423")
        (call_id,) = peer.dialogs
        peer.notify(call_id, reginfo_body(1, user="bob"))
        peer.notify(call_id, reginfo_body(2, user="bob").replace(
            b'version="0" state="full"', b'version="5" state="partial"'))  # 1 to 4 lost
        peer.notify(call_id, b"<reginfo")
        assert peer.wait_for(lambda p: len([r for r in p.responses
                                            if r.headers.get("CSeq", "").endswith("NOTIFY")])
                             >= 3, 10), gateway.log()
        watcher.subscribe(port)
        watcher.wait(1, 10, gateway.log)
        assert peer.wait_for(lambda p: p.publishes, 10), gateway.log()
        time.sleep(1.5)  # the PUBLISH's answer recorded, a sweep measured the view
        after = scrape(metrics_port)
    finally:
        watcher.close()
        peer.stop()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("sip_requests_total", method="REGISTER", code="200") == 1
    assert moved("sip_requests_total", method="REGISTER", code="423") == 1
    assert moved("sip_requests_total", method="SUBSCRIBE", code="200") == 1
    assert moved("sip_requests_total", method="NOTIFY", code="400") == 1
    assert moved("sip_request_duration_seconds_count", method="REGISTER") == 2
    assert moved("sip_request_duration_seconds_bucket", method="REGISTER", le="+Inf") == 2
    assert moved("notify_results_total", result="1") == 2
    assert moved("notify_refused_total", reason="malformed_reginfo") == 1
    assert moved("notify_version_gaps_total") == 1
    assert moved("store_commit_batch_size_count") >= 3
    assert moved("store_commit_duration_seconds_count") >= 3
    assert moved("events_recorded_total") >= 4
    assert value(after, "view_aors") == 2 and value(after, "view_bindings") == 2  # alice, bob
    assert value(after, "projection_lag_events", projection="usrloc") == 0
    assert value(after, "view_lag_seconds") == 0
    assert value(after, "store_available") == 1
    assert moved("publish_responses_total", result="200") >= 1
    assert value(after, "publications", state="published") == 1
    assert value(after, "publish_outbox_documents") == 0
    assert value(after, "subscriptions", state="active") == 1
    assert value(before, "subscribe_responses_total", result="200") >= 1
    assert moved("notifier_notifies_total", result="delivered", state="full") == 1
    assert value(after, "watchers") == 1 and value(after, "leading") == 1
    assert after[("process_resident_memory_bytes", ())] > 0
    assert gateway.stop() == 0


def test_a_scrape_names_no_path_but_its_own(gateways, tmp_path):
    port, metrics_port = free_port(), free_port()
    gateways.start(f"sqlite:///{tmp_path / 'store.db'}",
                   f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = []\n'
                   f'[metrics]\nlisten = "{HOST}:{metrics_port}"\n')
    assert get(metrics_port, "/health/ready") == (200, "ready\n")
    assert get(metrics_port, "/nothing")[0] == 404
    request = urllib.request.Request(f"http://{HOST}:{metrics_port}/metrics", method="POST",
                                     data=b"x")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 405
    assert raw(metrics_port, b"HEAD /health/live HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\n")
    assert raw(metrics_port, b"\x16\x03\x01 hello\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(metrics_port, b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 9000) == b""  # cut off
    assert options(port).startswith(b"SIP/2.0 200")  # none of it reached SIP


def raw(port: int, request: bytes) -> bytes:
    """What the endpoint answers to `request`, as sent, up to its close."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.mark.postgres
def test_ready_and_options_say_503_while_the_store_is_away(gateways, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    port, metrics_port = free_port(), free_port()
    gateway = gateways.start(postgres_url, f'[listen]\nudp = ["{HOST}:{port}"]\n'
                                           f'tcp = ["{HOST}:{port}"]\n[store]\ntimeout = 2\n'
                                           f'[metrics]\nlisten = "{HOST}:{metrics_port}"\n')
    assert get(metrics_port, "/health/ready") == (200, "ready\n")
    try:
        admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              f"WHERE datname = '{database}'")
        wait_for_options(port, 503)
        status, text = get(metrics_port, "/health/ready")
        assert status == 503 and "event store unavailable" in text, text
        assert get(metrics_port, "/health/live")[0] == 200  # sick, not dead
        refused, _ = register_alice(port, 1)
        assert refused is not None and refused.status == 503
        down = scrape(metrics_port)  # the store's own figures are missing, the rest is there
        assert value(down, "store_available") == 0
        assert value(down, "sip_unavailable_total", cause="store_down") >= 1
        assert value(down, "sip_unavailable_total", cause="not_ready") >= 1  # OPTIONS
        assert value(down, "view_aors") == 0
    finally:
        admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    wait_for_options(port, 200, timeout=20)
    assert get(metrics_port, "/health/ready") == (200, "ready\n")
    assert options(port).startswith(b"SIP/2.0 200")
    assert value(scrape(metrics_port), "store_available") == 1
    assert gateway.stop() == 0


def test_requests_taken_by_udp_workers_are_counted_too(gateways, tmp_path):
    """The kernel spreads the REGISTERs over serve and its workers; each process counts
    its own and the workers tell serve, so a scrape sees every one of them."""
    port, metrics_port = free_port(), free_port()
    gateway = gateways.start(f"sqlite:///{tmp_path / 'store.db'}",
                             f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = []\nudp_workers = 2\n'
                             f'[metrics]\nlisten = "{HOST}:{metrics_port}"\n')
    wait_for_workers(gateway, 2)
    for n in range(40):
        assert register(port, f"user{n}", f"sip:user{n}@{HOST}:7000", 600, 1,
                        call_id=f"worker-metrics-{n}") == "SIP/2.0 200 OK"
    deadline, counted = time.monotonic() + 10, 0.0
    while time.monotonic() < deadline:
        counted = value(scrape(metrics_port), "sip_requests_total", method="REGISTER",
                        code="200")
        if counted == 40:
            break
        time.sleep(0.25)
    assert counted == 40, gateway.log()[-2000:]
    assert gateway.stop() == 0
