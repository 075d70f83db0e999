"""serve's logs as `[log]` asks: JSON lines with the request fields, the level in any case
(file or environment), and the SIP message trace at debug."""

from __future__ import annotations

import json

from tests.e2e.conftest import HOST, free_port
from tests.e2e.watching import register


def json_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_json_logs_carry_the_request_fields_and_debug_traces_every_message(gateways,
                                                                          tmp_path):
    port = free_port()
    gateway = gateways.start(f"sqlite:///{tmp_path / 'store.db'}",
                             f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = []\n'
                             '[log]\nformat = "json"\n',
                             env={"PUA_REGINFO_LOG_LEVEL": "Debug"})
    assert register(port, "alice", f"sip:alice@{HOST}:7001", 600, 1,
                    call_id="json-log-1") == "SIP/2.0 200 OK"
    assert gateway.stop() == 0
    log = gateway.log()
    lines = json_lines(log)
    assert lines and all(not line.strip() or line.startswith("{") for line in log.splitlines()), log
    [request] = [e for e in lines if e.get("method") == "REGISTER"]
    assert request["aor"] == "sip:alice@example.com" and request["call_id"] == "json-log-1"
    assert request["result"] == 200 and request["origin"] == "register"
    assert request["source"].startswith(f"udp:{HOST}:") and request["latency_ms"] >= 0
    assert request["level"] == "info" and request["time"].endswith("+00:00")
    traced = [e["message"] for e in lines if e["logger"] == "pua_reginfo.sip.trace"]
    assert any(m.startswith("received over udp") and "Call-ID: json-log-1" in m
               for m in traced), traced
    assert any(m.startswith("sent over udp") and "SIP/2.0 200 OK" in m for m in traced)


def test_at_warning_no_request_is_logged_and_text_is_the_default(gateways, tmp_path):
    port = free_port()
    gateway = gateways.start(f"sqlite:///{tmp_path / 'store.db'}",
                             f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = []\n'
                             '[log]\nlevel = "WARNING"\n')
    assert register(port, "alice", f"sip:alice@{HOST}:7001", 600, 1) == "SIP/2.0 200 OK"
    assert gateway.stop() == 0
    log = gateway.log()
    assert "method=REGISTER" not in log and "serving" not in log
    assert not json_lines(log)
