"""registry.yaml agrees with every plugin's own metadata, and lists every plugin in plugins/."""

from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from paperloom.plugins import discover
from paperloom.registry_file import FIELDS, load_registry

ROOT = Path(__file__).resolve().parents[1]
_, ENTRIES = load_registry(str(ROOT / "registry.yaml"))


def pyproject(entry: dict) -> dict:
    return tomllib.loads((ROOT / entry["path"] / "pyproject.toml").read_text())["project"]


def test_every_plugin_folder_is_listed():
    folders = {p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file()}
    assert folders == {Path(e["path"]).name for e in ENTRIES}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_entry_matches_the_plugins_metadata(entry):
    assert set(FIELDS) <= set(entry)
    project = pyproject(entry)
    assert entry["distribution"] == project["name"] == f"paperloom-{entry['name']}"
    assert entry["version"] == project["version"]
    assert project["entry-points"]["paperloom.plugins"] == {
        entry["name"]: f"paperloom_{entry['name'].replace('-', '_')}.plugin"
    }
    reqs = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert "paperloom" not in reqs  # an unrelated PyPI package
    assert str(reqs["paperloom-core"].specifier) == str(Requirement("paperloom-core" + entry["core"]).specifier)
    # a plugin built on another registry plugin (the lm library) says so, so `core install` brings both
    needed = {n.removeprefix("paperloom-") for n in reqs if n.startswith("paperloom-") and n != "paperloom-core"}
    assert needed == set(entry.get("requires", []))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_entry_matches_the_installed_plugin(entry):
    reg = discover()
    if entry["name"] not in reg.plugins:
        pytest.skip(f"{entry['name']} is not installed in this environment")
    plugin = reg.plugin(entry["name"])
    assert plugin.version == entry["version"]
    assert sorted(plugin.tasks) == sorted(entry["tasks"])
    assert plugin.info.summary and "demo" in plugin.tasks


def test_the_index_shipped_in_the_core_equals_the_repositorys():
    from paperloom.registry_file import PACKAGED

    assert PACKAGED.read_text() == (ROOT / "registry.yaml").read_text()
