"""The README's diagrams and commands are the ones the code has."""

import importlib
from pathlib import Path

from scripts.render_diagrams import FLOWS, render

ROOT = Path(__file__).resolve().parents[2]


def test_readme_state_diagrams_match_the_specification():
    text = (ROOT / "README.md").read_text()
    assert "stateDiagram-v2" in text
    assert render(text) == text, "run python3 scripts/render_diagrams.py"


def test_every_step_of_the_readme_flows_is_a_function_the_code_has():
    for name, steps in FLOWS.items():
        for _, _, where, _ in steps:
            module_name, qualified = where.split(":")
            found = importlib.import_module(module_name)
            for part in qualified.split("."):
                found = getattr(found, part)
            assert callable(found), f"{name}: {where}"
    text = (ROOT / "README.md").read_text()
    assert all(f"<!-- diagram:{name} " in text for name in FLOWS)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "```sh\nbash scripts/test\n```" in readme
    assert "exec bash scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_settings_example_loads(tmp_path):
    from infrastructure.settings import load_settings

    text = (ROOT / "README.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(example)
    settings = load_settings(path, env={})
    assert settings.notify.mode == "rfc" and settings.registrar.min_expires == 60
