"""A short coverage-guided run of every fuzz target (scripts/fuzz), so that the suite
keeps the targets and their properties honest between long runs (README "Fuzzing").

Each target runs under atheris in a process of its own, from its seed inputs, for a few
thousand inputs with a fixed seed: nothing but the project's declared errors may escape,
and every response built on the way must parse again.
"""

from __future__ import annotations

import pytest

from scripts.fuzz import TARGETS
from scripts.fuzz.run import fuzz

SHORT_RUN = 2_000
SEED = 3680


@pytest.mark.parametrize("target", TARGETS)
def test_a_short_fuzzing_run_finds_nothing(target, tmp_path):
    outcome = fuzz(target, SHORT_RUN, tmp_path, seed=SEED)
    assert outcome.crashes == (), [path.read_bytes()[:300] for path in tmp_path.iterdir()]
    assert outcome.inputs >= SHORT_RUN
    assert outcome.coverage
