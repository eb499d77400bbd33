"""Discovery: entry points, broken and incompatible plugins, name conflicts, test mode."""

from conftest import make_dist

from paperloom.plugins import check_compatible, discover

GOOD = """
from paperloom import Component, PluginInfo, Task, hookimpl

@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="a good plugin")

@hookimpl
def paperloom_components():
    return [Component("m", "model", "fakeplug_good:build", produces=("thing",))]

@hookimpl
def paperloom_tasks():
    return [Task("demo", "fakeplug_good:run", "fakeplug_good:Cfg")]
"""


def test_builtin_is_registered_through_the_same_hooks(core_only):
    core = core_only.plugin("core")
    assert {"mlp", "regression", "mse"} <= set(core.components)
    assert "demo" in core.tasks
    assert core_only.pm.has_plugin("core")


def test_entry_point_plugin_is_discovered(fake_site):
    make_dist(
        fake_site, "fakeplug-good", "1.2.3", "good", "fakeplug_good", GOOD, requires=("paperloom-core>=0.2,<0.3",)
    )
    reg = discover()
    p = reg.plugin("good")
    assert (p.distribution, p.version, p.info.summary) == ("fakeplug-good", "1.2.3", "a good plugin")
    assert reg.component("good:m", "model")[1].produces == ("thing",)


def test_import_error_is_isolated(fake_site):
    make_dist(fake_site, "fakeplug-good", "1.0", "good", "fakeplug_good", GOOD)
    make_dist(fake_site, "fakeplug-bad", "1.0", "bad", "fakeplug_bad", "raise RuntimeError('boom at import')\n")
    reg = discover()
    assert "boom at import" in reg.plugins["bad"].error
    assert reg.plugin("good").error is None  # the healthy one keeps working


def test_malformed_declarations_are_reported(fake_site):
    src = """
from paperloom import Component, hookimpl

@hookimpl
def paperloom_components():
    return [Component("m", "spaceship", "x:y")]
"""
    make_dist(fake_site, "fakeplug-kind", "1.0", "kind", "fakeplug_kind", src)
    reg = discover()
    assert "kind 'spaceship'" in reg.plugins["kind"].error
    assert not reg.plugins["kind"].components


def test_incompatible_core_is_refused_before_import(fake_site):
    # The module would raise if imported: the version check must come first.
    make_dist(
        fake_site,
        "fakeplug-old",
        "1.0",
        "old",
        "fakeplug_old",
        "raise SystemExit('imported!')\n",
        requires=("paperloom-core>=9.0",),
    )
    reg = discover()
    assert "requires paperloom-core>=9.0" in reg.plugins["old"].error
    assert "this core is 0.2.0" in reg.plugins["old"].error


def test_a_plugin_depending_on_the_unrelated_pypi_paperloom_is_refused(fake_site):
    make_dist(
        fake_site,
        "fakeplug-pypi",
        "1.0",
        "pypi",
        "fakeplug_pypi",
        "raise SystemExit('imported!')\n",
        requires=("paperloom>=0.1,<0.2",),
    )
    assert "depends on 'paperloom', an unrelated PyPI package" in discover().plugins["pypi"].error


def test_two_distributions_claiming_one_name(fake_site):
    make_dist(fake_site, "fakeplug-one", "1.0", "dup", "fakeplug_one", GOOD.replace("fakeplug_good", "fakeplug_one"))
    make_dist(fake_site, "fakeplug-two", "1.0", "dup", "fakeplug_two", GOOD.replace("fakeplug_good", "fakeplug_two"))
    reg = discover()
    err = reg.plugins["dup"].error
    assert "fakeplug-one" in err and "fakeplug-two" in err
    assert not reg.pm.has_plugin("dup")


def test_disable_env_ignores_installed_plugins(fake_site, monkeypatch):
    make_dist(fake_site, "fakeplug-good", "1.0", "good", "fakeplug_good", GOOD)
    monkeypatch.setenv("PAPERLOOM_DISABLE_PLUGINS", "1")
    assert set(discover().plugins) == {"core"}
    monkeypatch.setenv("PAPERLOOM_DISABLE_PLUGINS", "good")
    assert "good" not in discover().plugins


def test_check_compatible_agrees_with_packaging():
    from packaging.specifiers import SpecifierSet

    assert check_compatible(">=0.1,<0.2", "0.1.5") is None
    assert check_compatible(None, "0.1.0") is None
    assert "requires paperloom-core<0.1" in check_compatible("<0.1", "0.1.0")
    for spec in (">=0.2,<0.3", ">=0.2", "<0.2", "==0.2.0", "!=0.2.0", ">0.1.9,<=0.2", ">=0.2.0rc1", "~=0.2"):
        for version in ("0.1.9", "0.2", "0.2.0", "0.2.5", "0.3.0", "1.0"):
            expected = version in SpecifierSet(spec, prereleases=True)
            assert (check_compatible(spec, version) is None) == expected, (spec, version)
