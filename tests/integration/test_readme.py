"""The README's diagrams and commands are the ones the code has."""

from pathlib import Path

from scripts.render_diagrams import render

ROOT = Path(__file__).resolve().parents[2]


def test_readme_state_diagrams_match_the_specification():
    text = (ROOT / "README.md").read_text()
    assert "stateDiagram-v2" in text
    assert render(text) == text, "run python3 scripts/render_diagrams.py"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "```sh\nbash scripts/test\n```" in readme
    assert "exec bash scripts/test" in (ROOT / ".ci" / "run").read_text()
