"""sipp registers with digest authentication against a real `serve` with `[auth]` on
(RFC 3261 22.1, RFC 7616), over UDP with serve alone and with two UDP workers: 401 then
200, a wrong password 401 again (as Kamailio's sample configuration answers a failed
auth_check: a new challenge), another user's AoR 403, and the Authorization header sipp
sent, replayed on a new REGISTER, refused with 401 while nothing changes.

The credentials are an htdigest file (MD5, as Apache's htdigest writes it). sipp's
[authentication] answers the challenge with -au/-ap; which answer came is read from its
message trace. Only 127.0.0.1 is used; every gateway is stopped by PID.
"""

from __future__ import annotations

import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from sip_gateway.auth import MD5, ha1
from tests.e2e.conftest import HOST, free_port, wait_for_workers
from tests.e2e.test_registrar_sipp import DOMAIN, SCENARIOS, SIPP_FLAGS, bindings

USERS = {"alice": "secret", "bob": "hunter2"}


def start(gateways, sqlite_url, tmp_path: Path, workers: int):
    users = tmp_path / "users.htdigest"
    users.write_text("".join(f"{user}:{DOMAIN}:{ha1(MD5, user, DOMAIN, password)}\n"
                             for user, password in USERS.items()))
    gateway = gateways.start(sqlite_url, f'[auth]\nrealm = "{DOMAIN}"\ncredentials = "{users}"\n'
                                         f"[listen]\nudp_workers = {workers}\n")
    if workers:
        wait_for_workers(gateway, workers)
    return gateway


def register(sipp: str, gateway, tmp_path: Path, user: str, auth_user: str,
             password: str) -> tuple[int, str]:
    """Run register-auth.xml once; the status of the answer to the credentials and the
    messages sipp traced."""
    run_dir = tmp_path / f"sipp-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    command = [sipp, f"{HOST}:{gateway.port}", "-sf", str(SCENARIOS / "register-auth.xml"),
               "-t", SIPP_FLAGS["udp"], "-m", "1", "-i", HOST, "-p", str(free_port()),
               "-cid_str", f"{user}-{run_dir.name}@e2e.test", "-key", "user", user,
               "-key", "domain", DOMAIN, "-au", auth_user, "-ap", password,
               "-trace_msg", "-trace_err", "-nostdin", "-timeout", "20s", "-timeout_error",
               "-recv_timeout", "5000"]
    result = subprocess.run(command, cwd=run_dir, capture_output=True, text=True, timeout=60)
    [trace] = run_dir.glob("register-auth_*_messages.log")
    messages = trace.read_text(errors="replace")
    assert result.returncode == 0, f"{result.stderr}\n{messages}\n{gateway.log()}"
    statuses = re.findall(r"^SIP/2\.0 (\d{3}) ", messages, re.MULTILINE)
    assert statuses[0] == "401", messages
    return int(statuses[-1]), messages


@pytest.mark.parametrize("workers", [0, 2])
def test_sipp_registers_with_digest_and_is_refused_when_it_should_be(
        gateways, sqlite_url, sipp, tmp_path, workers):
    gateway = start(gateways, sqlite_url, tmp_path, workers)
    status, messages = register(sipp, gateway, tmp_path, "alice", "alice", "secret")
    assert status == 200, messages
    assert list(bindings(gateway, f"sip:alice@{DOMAIN}"))

    status, messages = register(sipp, gateway, tmp_path, "bob", "bob", "wrong")
    assert status == 401, messages
    last_challenge = messages.rsplit("WWW-Authenticate:", 1)[1].split("\n", 1)[0]
    assert "stale" not in last_challenge
    assert not bindings(gateway, f"sip:bob@{DOMAIN}")

    status, messages = register(sipp, gateway, tmp_path, "bob", "alice", "secret")
    assert status == 403, messages
    assert not bindings(gateway, f"sip:bob@{DOMAIN}")


@pytest.mark.parametrize("workers", [0, 2])
def test_a_replayed_nonce_count_is_refused(gateways, sqlite_url, sipp, tmp_path, workers):
    gateway = start(gateways, sqlite_url, tmp_path, workers)
    status, messages = register(sipp, gateway, tmp_path, "alice", "alice", "secret")
    assert status == 200
    [sent] = [m for m in messages.split("----") if "Authorization:" in m and "REGISTER sip" in m]
    authorization = re.search(r"^\s*Authorization: (.*?)\r?$", sent, re.MULTILINE)[1]
    call_id = re.search(r"^\s*Call-ID: (.*?)\r?$", sent, re.MULTILINE)[1]
    # An eavesdropper's copy: the same credentials on a REGISTER of its own making.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        for attempt in range(6):  # with workers: whichever process takes it refuses it
            sock.sendto((
                f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-replay-{attempt};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=evil\r\n"
                f"To: <sip:alice@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {10 + attempt} REGISTER\r\n"
                f"Contact: <sip:alice@{HOST}:6666>\r\nExpires: 600\r\n"
                f"Authorization: {authorization}\r\nContent-Length: 0\r\n\r\n").encode(),
                (HOST, gateway.port))
            answer = sock.recv(65535).decode()
            assert answer.startswith("SIP/2.0 401 "), answer
    assert f"sip:alice@{HOST}:6666" not in bindings(gateway, f"sip:alice@{DOMAIN}")
