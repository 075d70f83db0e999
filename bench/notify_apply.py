"""NOTIFY application throughput: documents per second through intake, parse and apply.

    python3 bench/notify_apply.py [--documents 600] [--aors 100] [--rounds 3] [--stores sqlite,postgresql]

Each document is a full-state reginfo body for one AoR (its own subscription, versions
counting up) with 1 or 20 active contacts, refreshed with a new CSeq every time. One
document per transaction (group commit comes with the gateway). Parse-only rates are in
bench/reginfo_codec.py. Medians over rounds, each round on an empty store.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stores import empty_store  # noqa: E402
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo  # noqa: E402
from infrastructure.bootstrap import open_service  # noqa: E402
from infrastructure.commands import ApplyNotify, NotifyContext  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402
from sip_gateway.server.notify_modes import notify_mode, read_notify  # noqa: E402
from sip_gateway.reginfo import build_reginfo  # noqa: E402


def body(aor: int, version: int, contacts: int) -> bytes:
    return build_reginfo(ReginfoDocument(version, "full", (RegistrationInfo(
        f"sip:user{aor}@example.com", f"r{aor}", "active", tuple(
            ContactInfo(uri=f"sip:user{aor}@10.{aor % 250}.{c}.1:5060", id=f"c{c}",
                        state="active", event="registered" if version == 0 else "refreshed",
                        expires=3600, q=0.5, callid=f"call-{aor}-{c}", cseq=version + 1)
            for c in range(contacts))),)))


def one_round(kind: str, mode: str, contacts: int, documents: int, aors: int) -> float:
    bodies = [body(n % aors, n // aors, contacts) for n in range(documents)]
    with empty_store(kind) as url:
        settings = load_settings(env={}, overrides={"store": {"url": url}, "node": {"id": "bench"}})
        service = open_service(settings)
        try:
            now = time.time()
            started = time.perf_counter()
            taking = notify_mode(mode, accept_unsolicited=True)
            for n, data in enumerate(bodies):
                intake = read_notify(data, taking)
                context = NotifyContext(taking, f"sub-{n % aors}")
                result = service.app.run(ApplyNotify(intake.document, context), now + n * 0.001)
                assert result.code == 1, result.reason
            return documents / (time.perf_counter() - started)
        finally:
            service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=600)
    parser.add_argument("--aors", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'store':<11} {'mode':<9} {'contacts':>8} {'docs/s':>8}  (median of {args.rounds})")
    for kind in args.stores.split(","):
        for mode in ("rfc", "kamailio"):
            for contacts in (1, 20):
                rates = [one_round(kind, mode, contacts, args.documents, args.aors)
                         for _ in range(args.rounds)]
                print(f"{kind:<11} {mode:<9} {contacts:>8} {statistics.median(rates):>8,.0f}")


if __name__ == "__main__":
    main()
