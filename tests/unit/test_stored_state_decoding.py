"""orjson, which a rebuild decodes stored event states with, reads what the event store's
JSON transcoder writes as the standard library's json does, or refuses it, except for an
integer beyond 64 bits: a float of at least 2**63 then, which the rebuild does not take
(it reads that event through the application's mapper, projections/usrloc/stored_rows.py).
"""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st
from eventsourcing.persistence import JSONTranscoder

LARGE = 2.0**63
plain = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.text()
         | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(plain, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@given(values)
def test_orjson_reads_a_stored_state_as_json_does_or_refuses_it(value):
    try:
        data = JSONTranscoder().encode({"state": value})
    except UnicodeEncodeError:  # a lone surrogate: never stored
        return
    expected = json.loads(data.decode("utf8"))
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    assert repr(decoded) == repr(expected)  # the same values, of the same types


@given(st.integers(2**64, 2**200) | st.integers(-2**200, -2**63 - 1))
def test_an_integer_beyond_64_bits_comes_back_a_float_the_rebuild_does_not_take(number):
    decoded = orjson.loads(JSONTranscoder().encode({"cseq": number}))["cseq"]
    assert type(decoded) is float and not -LARGE < decoded < LARGE
    assert json.loads(json.dumps(number)) == number


def test_what_json_reads_otherwise_orjson_refuses():
    for data in (b'{"q":NaN}', b'{"x":"\\ud800"}', b'{"x":1e400}', b'{"q":Infinity}'):
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        raise AssertionError(f"orjson read {data!r}")
