"""Reginfo codec throughput: documents per second for strict parse, lenient parse and build.

    python3 bench/reginfo_codec.py [--rounds 7] [--seconds 0.3]

Two documents shaped like Kamailio's: one registration with 1 contact, and one with 20
contacts (each with a callid, cseq, q and two unknown-params). Each round runs one operation
for about `--seconds`; the figure is the median rate over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo  # noqa: E402
from sip_gateway.reginfo import (  # noqa: E402
    build_reginfo, parse_reginfo, parse_reginfo_lenient,
)


def document(contacts: int) -> ReginfoDocument:
    return ReginfoDocument(7, "full", (RegistrationInfo(
        "sip:alice@example.com", "0x7f441d4d5d70", "active", tuple(
            ContactInfo(f"sip:alice@192.0.2.{n}:5060;transport=udp", id=f"0x7f441d4d{n:04x}",
                        state="active", event="registered", expires=3600 - n, q=0.5,
                        callid=f"dev{n}-6628@192.0.2.{n}", cseq=n + 1,
                        unknown_params=(("+sip.instance", f'"<urn:uuid:{n:08d}>"'),
                                        ("reg-id", "1")))
            for n in range(1, contacts + 1))),))


def rate(operation: Callable[[], object], seconds: float) -> float:
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(50):
            operation()
        calls += 50
    return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args()
    print(f"{'document':<12}{'bytes':>7}{'strict/s':>12}{'lenient/s':>12}{'build/s':>12}")
    for contacts in (1, 20):
        doc = document(contacts)
        body = build_reginfo(doc)
        assert parse_reginfo(body) == doc
        operations = (lambda: parse_reginfo(body), lambda: parse_reginfo_lenient(body),
                      lambda: build_reginfo(doc))
        medians = [statistics.median(rate(operation, args.seconds) for _ in range(args.rounds))
                   for operation in operations]
        label = f"{contacts} contact" + ("s" if contacts > 1 else "")
        print(f"{label:<12}{len(body):>7}" + "".join(f"{value:>12,.0f}" for value in medians))


if __name__ == "__main__":
    main()
