"""Coverage-guided fuzzing of the protocol edge with atheris (issue 16).

One module per target, each with `NAME`, `seed_inputs()` (real messages from tests/fixtures and
the hostile corpus) and `check(data)`, the property: nothing but the project's declared
errors escapes, and a response built on the way is a valid SIP response that parses
again. `worker.py` runs one target under libFuzzer, `run.py` runs them all and counts.
"""

TARGETS = ("sip_message", "sip_stream", "reginfo", "registrar", "notify")
