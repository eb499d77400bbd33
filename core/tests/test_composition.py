"""Composition: a task names another plugin's component; kinds and data contracts are checked first."""

import pytest

from paperloom import UserError
from paperloom.runner import execute
from paperloom.testing import registry_with

MAKER = """
from paperloom import Component, PluginInfo, hookimpl

def build_scaler(ctx, factor=2.0):
    return lambda x: factor * x

@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="makes models")

@hookimpl
def paperloom_components():
    return [Component("double", "model", "fakeplug_maker:build_scaler", produces=("scalar-fn",)),
            Component("triple", "model", "fakeplug_maker:build_scaler", produces=("scalar-fn",),
                      defaults={"factor": 3.0}),
            Component("text", "dataset", "fakeplug_maker:build_scaler", produces=("text",))]
"""

USER = """
from dataclasses import dataclass
from paperloom import PluginInfo, Task, hookimpl
from paperloom.config import option

@dataclass
class Cfg:
    model: str = option("maker:double", component="model", contract="scalar-fn")
    x: float = option(5.0)

def run(cfg, ctx):
    fn = ctx.build(cfg.model)
    return {"y": fn(cfg.x)}

@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="uses models")

@hookimpl
def paperloom_tasks():
    return [Task("demo", "fakeplug_user:run", "fakeplug_user:Cfg")]
"""


@pytest.fixture
def reg(fake_site):
    (fake_site / "fakeplug_maker.py").write_text(MAKER)
    (fake_site / "fakeplug_user.py").write_text(USER)
    return registry_with(("maker", "fakeplug_maker"), ("user", "fakeplug_user"))


def test_task_builds_another_plugins_component(reg, tmp_path):
    _, metrics = execute("user:demo", out=tmp_path / "a", reg=reg, device="cpu")
    assert metrics["y"] == 10.0
    _, metrics = execute(
        "user:demo", overrides=["model=maker:triple", "x=2"], out=tmp_path / "b", reg=reg, device="cpu"
    )
    assert metrics["y"] == 6.0  # the component's declared defaults reach its builder


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("maker:dubble", "plugin 'maker' has no model 'dubble' (did you mean double?)"),
        ("maker:text", "maker:text is a dataset, but a model is needed here"),
        ("nobody:x", "unknown plugin 'nobody'"),
    ],
)
def test_bad_references_fail_before_running(reg, tmp_path, value, fragment):
    with pytest.raises(UserError) as exc:
        execute("user:demo", overrides=[f"model={value}"], out=tmp_path / "r", reg=reg)
    assert fragment in str(exc.value)
    assert not (tmp_path / "r").exists()  # nothing was created


def test_contract_mismatch_names_both_sides(reg, tmp_path):
    with pytest.raises(UserError) as exc:
        execute("user:demo", overrides=["model=core:mlp"], out=tmp_path / "r", reg=reg)
    msg = str(exc.value)
    assert "'core:mlp' produces ['regressor']" in msg and "user needs 'scalar-fn'" in msg


def test_a_folder_needs_an_installed_folder_loader(reg, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(UserError, match="no installed plugin loads a 'scalar-fn' model from a checkpoint folder"):
        execute("user:demo", overrides=[f"model={folder}"], out=tmp_path / "r", reg=reg)


def test_hook_examples_name_modules_that_exist():
    """The examples in hookspecs.py are the built-in plugin's real references."""
    import re

    from paperloom import hookspecs
    from paperloom.context import load_ref

    refs = re.findall(
        r'"(paperloom[\w.]*:[\w.]+)"',
        hookspecs.__doc__ + "".join(f.__doc__ or "" for f in vars(hookspecs).values() if callable(f)),
    )
    assert len(refs) >= 3
    for ref in refs:
        assert load_ref(ref) is not None, ref


def test_hooks_are_called_through_pluggy(fake_site):
    """A function named like a hook but not marked @hookimpl is not a declaration."""
    (fake_site / "fakeplug_unmarked.py").write_text(
        "from paperloom import PluginInfo, Task\ndef paperloom_plugin():\n    return PluginInfo(summary='unmarked')\n"
    )
    reg = registry_with(("unmarked", "fakeplug_unmarked"))
    assert reg.plugins["unmarked"].info.summary == ""


def test_stage_context_implements_the_whole_protocol(tmp_path):
    from paperloom.context import Run
    from paperloom.interfaces import RunContext

    run = Run(out=tmp_path, plugin="core", task="fit", registry=registry_with())
    stage = run.stage("baseline")
    assert isinstance(stage, RunContext) and isinstance(run, RunContext)
    assert stage.checkpoint_dir == tmp_path / "stages" / "baseline" / "checkpoints"
    stage.log_metrics({"loss": 1.0}, step=3)
    stage.save_metrics({"loss": 0.5})
    assert (tmp_path / "metrics.jsonl").read_text().strip() == '{"step": 3, "baseline/loss": 1.0}'
    assert run.metrics == {"baseline/loss": 0.5}
    assert type(stage.build("core:mlp", hidden=4)).__name__ == "Sequential"


def test_an_evaluator_must_consume_what_the_task_gives_it():
    from paperloom.interfaces import Component
    from paperloom.runner import resolve_task_config

    reg = registry_with()
    reg.plugins["core"].components["lm-eval"] = Component(
        "lm-eval", "evaluator", "paperloom.builtin.components:build_mse", consumes=("causal-lm",)
    )
    with pytest.raises(UserError, match=r"evaluator = 'core:lm-eval' consumes \['causal-lm'\], but core gives it"):
        resolve_task_config(reg, "core:fit", overrides=["evaluator=core:lm-eval"])


def test_switching_a_component_drops_the_arguments_written_for_the_default(tmp_path):
    from paperloom.runner import resolve_task_config

    reg = registry_with()
    *_, cfg = resolve_task_config(reg, "core:fit", smoke=True)
    assert cfg.model_args == {"hidden": 16}  # the smoke sizes of the default model
    *_, cfg = resolve_task_config(reg, "core:fit", overrides=["model=core:mlp"], smoke=True)
    assert cfg.model_args == {"hidden": 16}  # same component: kept
    reg.plugins["core"].components["mlp2"] = reg.plugins["core"].components["mlp"].__class__(
        "mlp2", "model", "paperloom.builtin.components:build_mlp", produces=("regressor",)
    )
    *_, cfg = resolve_task_config(reg, "core:fit", overrides=["model=core:mlp2"], smoke=True)
    assert cfg.model_args == {}  # written for core:mlp, not for the component swapped in
    *_, cfg = resolve_task_config(reg, "core:fit", overrides=["model=core:mlp2", "model_args={hidden: 3}"])
    assert cfg.model_args == {"hidden": 3}


def test_a_stage_with_its_own_seed_hands_it_to_builders(tmp_path):
    from paperloom.context import Run

    seen = []
    run = Run(out=tmp_path, plugin="core", task="fit", seed=7, registry=registry_with())
    from paperloom.builtin import components

    original = components.build_mlp
    components.build_mlp = lambda ctx, **kw: seen.append(ctx.seed) or original(ctx, **kw)
    try:
        run.stage("s3", seed=3).build("core:mlp")
        run.stage("run-seed").build("core:mlp")
    finally:
        components.build_mlp = original
    assert seen == [3, 7]


LOADERS = """
from paperloom import Component, PluginInfo, hookimpl

def load_a(ctx, path):
    return ("a", path)

def load_b(ctx, path):
    return ("b", path)

@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="loads folders")

@hookimpl
def paperloom_components():
    return [Component("lm-folder", "model", "fakeplug_loaders:load_a", produces=("causal-lm",), loads_folder=True),
            Component("clip-folder", "model", "fakeplug_loaders:load_b", produces=("image-text-encoder",),
                      loads_folder=True)]
"""


def test_build_picks_the_folder_loader_of_the_contract(fake_site, tmp_path):
    """With two folder loaders installed, `ctx.build(folder, contract=...)` takes the one of that contract."""
    from paperloom.context import Run

    (fake_site / "fakeplug_loaders.py").write_text(LOADERS)
    reg = registry_with(("loaders", "fakeplug_loaders"))
    run = Run(out=tmp_path, plugin="loaders", task="t", registry=reg)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    assert run.build(str(folder), contract="image-text-encoder") == ("b", str(folder))
    assert run.build(str(folder), contract="causal-lm") == ("a", str(folder))
