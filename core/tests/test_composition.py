"""Composition: a task names another plugin's component; kinds and data contracts are checked first."""

import pytest

from paperloom import UserError
from paperloom.run import execute
from paperloom.testing import registry_with

MAKER = """
from paperloom import Component, PluginInfo, hookimpl

def build_scaler(factor=2.0):
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
        execute("user:demo", overrides=["model=core:gpt2"], out=tmp_path / "r", reg=reg)
    msg = str(exc.value)
    assert "'core:gpt2' produces ['causal-lm']" in msg and "user needs 'scalar-fn'" in msg


def test_builtin_lm_task_trains_a_llama_component(tmp_path):
    """core:train-lm composes with any causal-LM component (here the built-in Llama)."""
    reg = registry_with()
    out, metrics = execute(
        "core:train-lm",
        overrides=["model=core:llama", "model_args={}"],
        smoke=True,
        out=tmp_path / "r",
        reg=reg,
        device="cpu",
    )
    assert metrics["steps"] == 4
    assert metrics["val_loss"] < metrics["init_val_loss"]
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.model_type == "llama"


ARCH_MODEL = """
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

class FakeConfig(GPT2Config):
    model_type = "fakegpt"

class FakeLM(GPT2LMHeadModel):
    config_class = FakeConfig

AutoConfig.register("fakegpt", FakeConfig)
AutoModelForCausalLM.register(FakeConfig, FakeLM)

def build(vocab_size=64):
    return FakeLM(FakeConfig(vocab_size=vocab_size, n_layer=1, n_embd=16, n_head=2, n_positions=32))
"""

ARCH_PLUGIN = """
from paperloom import Component, PluginInfo, hookimpl

@hookimpl
def paperloom_plugin():
    return PluginInfo(summary="a new HF architecture")

@hookimpl
def paperloom_components():
    return [Component("net", "model", "fakeplug_arch_model:build", produces=("causal-lm",),
                      hf_model_types=("fakegpt",))]
"""


def test_checkpoint_of_a_plugin_architecture_loads_from_its_folder(fake_site, tmp_path):
    """A folder saved with a plugin's own model_type loads through core:hf-causal-lm in a fresh process."""
    import subprocess
    import sys

    from conftest import make_dist

    (fake_site / "fakeplug_arch_model.py").write_text(ARCH_MODEL)
    make_dist(fake_site, "fakeplug-arch", "1.0", "arch", "fakeplug_arch", ARCH_PLUGIN)
    env = {"PYTHONPATH": str(fake_site), "PATH": "/usr/bin:/bin"}
    folder = tmp_path / "ckpt"
    save = f"import fakeplug_arch_model as m; m.build().save_pretrained({str(folder)!r})"
    subprocess.run([sys.executable, "-c", save], check=True, env=env)
    load = (
        f"from paperloom.run import Run; from pathlib import Path; "
        f"m = Run(out=Path('.'), plugin='core', task='x').build({str(folder)!r}); print(type(m).__name__)"
    )
    res = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("FakeLM")
    res = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True, env={**env, "PAPERLOOM_DISABLE_PLUGINS": "arch"}
    )
    assert "model_type 'fakegpt' is not known to transformers and no installed plugin declares it" in res.stderr
