"""Run one target under atheris (libFuzzer): `python3 -m scripts.fuzz.worker TARGET
[libFuzzer options] CORPUS_DIR...`. The project's own packages are instrumented for
coverage; a property violation or an undeclared exception stops the run with the input
written to `-artifact_prefix`."""

from __future__ import annotations

import importlib
import sys

import atheris

INSTRUMENTED = ["domain", "sip_gateway"]


def main(argv: list[str]) -> None:
    name = argv[1]
    with atheris.instrument_imports(include=INSTRUMENTED):
        target = importlib.import_module(f"scripts.fuzz.{name}")
    atheris.Setup([argv[0], *argv[2:]], target.check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
