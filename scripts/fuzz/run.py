"""Fuzz every target (or those named) for N inputs each, one after another, and count.

    python3 -m scripts.fuzz.run --runs 250000            # the documented long run
    python3 -m scripts.fuzz.run --runs 3000 registrar    # one target, briefly

Each target runs in a process of its own (scripts/fuzz/worker.py) on a fresh corpus of
its seed inputs; libFuzzer adds what reaches new coverage to it. Printed per target:
inputs run, coverage edges (`cov`) and features (`ft`) at the end, crashes, and the
seconds it took. A crash stops that target: its input is written to --artifacts as
`<target>-crash-<sha1>`, to be pinned as a regression test in tests/unit.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from scripts.fuzz import TARGETS
from scripts.fuzz.seeds import MAX_SEED, ROOT

_DONE = re.compile(r"^#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+)", re.M)
_EXECUTED = re.compile(r"^stat::number_of_executed_units: (\d+)", re.M)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
TIMEOUT_SECONDS = 10  # one input taking longer is a hang, reported like a crash


@dataclass(frozen=True)
class Outcome:
    target: str
    inputs: int
    coverage: int | None
    features: int | None
    crashes: tuple[str, ...]  # the artifacts written
    seconds: float

    def line(self) -> str:
        return (f"{self.target:<12} {self.inputs:>10,} {self.coverage or '-':>6} "
                f"{self.features or '-':>7} {len(self.crashes):>7} {self.seconds:>8.1f}")


HEADER = f"{'target':<12} {'inputs':>10} {'cov':>6} {'ft':>7} {'crashes':>7} {'seconds':>8}"


def fuzz(target: str, runs: int, artifacts: Path, seed: int = 0) -> Outcome:
    """Run `target` for `runs` inputs (its seeds included) and return what it counted."""
    artifacts.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as corpus:
        for data in import_module(f"scripts.fuzz.{target}").seed_inputs():
            (Path(corpus) / hashlib.sha1(data).hexdigest()).write_bytes(data)
        finished = subprocess.run(
            [sys.executable, "-m", "scripts.fuzz.worker", target, f"-runs={runs}",
             f"-max_len={MAX_SEED}", f"-seed={seed}", f"-timeout={TIMEOUT_SECONDS}",
             f"-artifact_prefix={artifacts}/{target}-", "-print_final_stats=1", corpus],
            cwd=ROOT, capture_output=True, text=True, errors="replace")
    log = finished.stderr
    done = _DONE.search(log)
    executed = _EXECUTED.search(log)
    crashes = tuple(_ARTIFACT.findall(log))
    if finished.returncode != 0 and not crashes:
        raise RuntimeError(f"{target}: the fuzzer failed (exit {finished.returncode}):\n"
                           f"{log[-3000:]}")
    return Outcome(target, int(executed[1]) if executed else 0,
                   int(done[2]) if done else None, int(done[3]) if done else None,
                   crashes, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"any of {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--runs", type=int, default=250_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's seed (0: random)")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "fuzz-artifacts",
                        help="where crashing inputs are written")
    options = parser.parse_args(argv)
    unknown = set(options.targets) - set(TARGETS)
    if unknown:
        parser.error(f"no such target: {', '.join(sorted(unknown))}")
    print(HEADER, flush=True)
    outcomes = []
    for target in options.targets or TARGETS:
        outcome = fuzz(target, options.runs, options.artifacts, options.seed)
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
        for artifact in outcome.crashes:
            print(f"  crash: {artifact}", flush=True)
    total = sum(o.inputs for o in outcomes)
    crashes = sum(len(o.crashes) for o in outcomes)
    print(f"{'total':<12} {total:>10,} {'':>6} {'':>7} {crashes:>7} "
          f"{sum(o.seconds for o in outcomes):>8.1f}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
