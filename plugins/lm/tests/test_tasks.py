"""lm:pretrain and lm:evaluate on tiny models; checkpoint folders load by path, a plugin's own model_type too."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from paperloom_lm.causal_lm import cut, evaluate_lm, loss_by_length

from paperloom import UserError
from paperloom.runner import execute
from paperloom.testing import assert_conforms


def test_conforms():
    assert_conforms("lm")


def test_pretrain_trains_a_llama_and_exports_a_folder_that_evaluates(tmp_path):
    out, metrics = execute(
        "lm:pretrain", smoke=True, overrides=["model=lm:llama", "model_args={}"], out=tmp_path / "r", device="cpu"
    )
    assert metrics["steps"] == 4 and metrics["val_loss"] < metrics["init_val_loss"]
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "llama"
    _, ev = execute(
        "lm:evaluate",
        smoke=True,
        overrides=[f"model={out / 'model'}", "split=val", "context_lengths=[]"],
        out=tmp_path / "e",
        device="cpu",
    )
    assert ev["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)  # the same held-out blocks
    _, by_len = execute(
        "lm:evaluate", smoke=True, overrides=[f"model={out / 'model'}"], out=tmp_path / "t", device="cpu"
    )
    assert {"val_loss_ctx16", "val_loss_ctx32", "val_ppl_ctx32"} <= set(by_len)


def test_token_budget_sets_the_steps(tmp_path):
    _, m = execute(
        "lm:pretrain",
        smoke=True,
        overrides=["token_budget=1000", "trainer.batch_size=4"],
        out=tmp_path / "r",
        device="cpu",
    )
    assert m["steps"] == 8 and m["tokens"] == 8 * 4 * 32  # ceil(1000 / (4 x 32))


def test_evaluate_val_split_refuses_other_lengths(tmp_path):
    with pytest.raises(UserError, match="split = 'val' evaluates pretrain's held-out blocks"):
        execute("lm:evaluate", smoke=True, overrides=["split=val", "context_lengths=[64]"], out=tmp_path / "r")


def test_loss_by_length_is_the_token_weighted_mean_of_a_plain_loop():
    torch.manual_seed(0)
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_layer=1, n_embd=16, n_head=2, n_positions=64)).eval()
    stream = torch.randint(0, 50, (200,))
    got = loss_by_length(model, stream, [10, 25], batch_size=3, device="cpu")
    for length in (10, 25):
        rows = stream[: (200 // length) * length].view(-1, length)
        losses = [float(model(input_ids=r[None], labels=r[None]).loss) for r in rows]
        assert got[f"val_loss_ctx{length}"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    assert evaluate_lm(model, cut(stream, 10))["val_loss"] == pytest.approx(got["val_loss_ctx10"], rel=1e-6)


ARCH_MODEL = """
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

class FakeConfig(GPT2Config):
    model_type = "fakegpt"

class FakeLM(GPT2LMHeadModel):
    config_class = FakeConfig

AutoConfig.register("fakegpt", FakeConfig)
AutoModelForCausalLM.register(FakeConfig, FakeLM)

def build(ctx, vocab_size=64):
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


def test_checkpoint_of_a_plugin_architecture_loads_from_its_folder(tmp_path):
    """A folder saved with a plugin's own model_type loads in a fresh process that never imported the plugin."""
    site = tmp_path / "site"
    info = site / "fakeplug_arch-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug-arch\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[paperloom.plugins]\narch = fakeplug_arch\n")
    (site / "fakeplug_arch.py").write_text(textwrap.dedent(ARCH_PLUGIN))
    (site / "fakeplug_arch_model.py").write_text(ARCH_MODEL)
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    folder = tmp_path / "ckpt"
    subprocess.run(
        [sys.executable, "-c", f"import fakeplug_arch_model as m; m.build(None).save_pretrained({str(folder)!r})"],
        check=True,
        env=env,
    )
    load = (
        f"from paperloom.context import Run; from pathlib import Path; "
        f"m = Run(out=Path('.'), plugin='lm', task='x').build({str(folder)!r}); print(type(m).__name__)"
    )
    res = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("FakeLM")
    res = subprocess.run(
        [sys.executable, "-c", load], capture_output=True, text=True, env={**env, "PAPERLOOM_DISABLE_PLUGINS": "arch"}
    )
    assert "model_type 'fakegpt' is not known to transformers and no installed plugin declares it" in res.stderr


def test_a_corrupt_weights_file_in_a_model_folder_is_a_one_line_error(tmp_path):
    out, _ = execute("lm:pretrain", smoke=True, out=tmp_path / "r", device="cpu")
    weights = out / "model" / "model.safetensors"
    weights.write_bytes(b"\x00" * 64)
    res = subprocess.run([sys.executable, "-m", "paperloom", "run", "lm:evaluate", "--smoke", "--set",
                          f"model={out / 'model'}", "--out", str(tmp_path / "e")], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out / 'model'}:") and "re-save it" in last and "Traceback" not in res.stderr
    assert not (tmp_path / "e").exists()  # the failed start left nothing behind


def test_lm_pretrain_on_two_processes_equals_one_on_the_same_global_batch(tmp_path):
    """DDP (gloo, CPU): 2 processes x 4 sequences train on exactly the 8-sequence batches of 1 process."""
    base = ["run", "lm:pretrain", "--smoke", "--device", "cpu", "--set", "trainer.max_steps=3",
            "trainer.accelerator=cpu", "model_args={n_layer: 1, n_embd: 32, n_head: 2, resid_pdrop: 0.0, "
            "embd_pdrop: 0.0, attn_pdrop: 0.0}", "export=false"]
    runs = {}
    for name, extra in (("one", ["trainer.batch_size=8"]),
                        ("two", ["trainer.batch_size=4", "trainer.devices=2", "trainer.strategy=ddp"])):
        res = subprocess.run([sys.executable, "-m", "paperloom", *base, *extra, "--out", str(tmp_path / name)],
                             capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert runs["one"]["init_val_loss"] == pytest.approx(runs["two"]["init_val_loss"], abs=1e-6)
    assert runs["one"]["val_loss"] == pytest.approx(runs["two"]["val_loss"], abs=1e-5)
