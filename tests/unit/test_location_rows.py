"""How a Kamailio 5.6 location row's columns read as a binding's fields."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from infrastructure.location_import.rows import (
    ExpiredRow, RefusedRow, imported, methods, path_entries,
)

NOW = 1_800_000_000.0


def row(**columns):
    base = {"ruid": "uloc-1", "username": "alice", "domain": None,
            "contact": "sip:alice@127.0.0.1:5070", "received": None, "path": None,
            "expires": NOW + 60, "q": -1.0, "callid": "c-1", "cseq": 2,
            "last_modified": NOW - 10, "flags": 0, "cflags": 0, "user_agent": "",
            "socket": None, "methods": None, "instance": None, "reg_id": 0}
    return {**base, **columns}


@pytest.mark.parametrize("bits, names", [
    (None, ()), (0, ()), (0xFFFFFFFF, ()), (-1, ()),  # none given, or every method
    (1 | 4 | 8, ("INVITE", "ACK", "BYE")),
    (32 | 64 | 128 | 256, ("REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE")),
    (512 | 2048 | 4096, ("OPTIONS", "UPDATE", "REFER")),
])
def test_usrloc_method_bits(bits, names):
    assert methods(bits) == names


@pytest.mark.parametrize("column, entries", [
    (None, ()), ("", ()),
    ("<sip:p1@127.0.0.1;lr>", ("<sip:p1@127.0.0.1;lr>",)),
    ("<sip:p1@127.0.0.1;lr>, <sip:p2@127.0.0.1;lr>",
     ("<sip:p1@127.0.0.1;lr>", "<sip:p2@127.0.0.1;lr>")),
    ('"a, b" <sip:p1@127.0.0.1;lr;x="1,2">,<sip:p2@127.0.0.1>',
     ('"a, b" <sip:p1@127.0.0.1;lr;x="1,2">', "<sip:p2@127.0.0.1>")),
])
def test_path_column_splits_at_top_level_commas(column, entries):
    assert path_entries(column) == entries


@pytest.mark.parametrize("expires", [
    NOW + 60, int(NOW + 60),  # expires_type = 1: Unix seconds
    datetime.fromtimestamp(NOW + 60),  # a naive datetime is local time
    datetime.fromtimestamp(NOW + 60, timezone.utc),
    datetime.fromtimestamp(NOW + 60).strftime("%Y-%m-%d %H:%M:%S"),
    (NOW + 60) / 86400 + 2440587.5,  # db_sqlite: a Julian day
    str((NOW + 60) / 86400 + 2440587.5),
])
def test_expires_in_every_form_usrloc_writes(expires):
    taken = imported(row(expires=expires), "location", NOW)
    assert taken.binding.expires == NOW + 60
    assert taken.aor == "alice" and taken.cause == "import location ruid=uloc-1"


def test_usrloc_defaults_are_our_absent_values():
    binding = imported(row(domain="example.com"), "location", NOW).binding
    assert (binding.q, binding.reg_id, binding.user_agent, binding.methods, binding.path) == (
        None, None, None, (), ())
    assert binding.registered_at == NOW - 10


def test_a_lapsed_row_is_expired_not_refused():
    assert imported(row(expires=NOW - 1), "location", NOW) == ExpiredRow(
        "alice sip:alice@127.0.0.1:5070")


@pytest.mark.parametrize("columns, reason", [
    ({"expires": 0}, "permanent contact"),
    ({"expires": 2440587.5}, "permanent contact"),  # db_sqlite's epoch
    ({"expires": "inf"}, "expires is not a time"),
    ({"expires": "tomorrow"}, "expires is not a time"),
    ({"cseq": "x"}, "cseq is not a number"),
    ({"reg_id": -3}, "reg_id -3 is out of range"),
    ({"q": 1.5}, "q 1.5 is above 1"),
    ({"callid": ""}, "no Call-ID"),
    ({"contact": ""}, "no contact"),
    ({"contact": "sip:"}, "URI"),
])
def test_a_row_that_cannot_be_a_binding_says_why(columns, reason):
    with pytest.raises(RefusedRow, match=reason):
        imported(row(**columns), "location", NOW)
