"""The docs describe what exists: every data contract is documented, every plugin README has the shape's table."""

from pathlib import Path

import pytest

from paperloom import contracts

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())


def test_every_contract_is_documented():
    page = (ROOT / "docs" / "contracts.md").read_text()
    for name, tag in contracts.ALL.items():
        assert f"| `{name}` | `{tag}` |" in page, name


@pytest.mark.parametrize("name", PLUGINS)
def test_plugin_readme_has_the_component_table(name):
    readme = (ROOT / "plugins" / name / "README.md").read_text()
    assert "| component | module |" in readme
