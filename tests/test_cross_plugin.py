"""Composition across real plugins: the lm recipe trains another plugin's model, and a checkpoint of a
plugin's own architecture loads from its folder in a process that never imported it."""

import json
import subprocess
import sys

import pytest

from paperloom.runner import execute

pytestmark = pytest.mark.cross_plugin


def test_lm_pretrain_trains_a_megalodon_model(tmp_path):
    pytest.importorskip("paperloom_megalodon")
    out, metrics = execute(
        "lm:pretrain",
        smoke=True,
        overrides=["model=megalodon:tiny", "model_args={}"],
        out=tmp_path / "run",
        device="cpu",
    )
    assert metrics["val_loss"] < metrics["init_val_loss"]
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "megalodon"

    # A fresh process: the checkpoint loads by folder (the plugin declares model_type "megalodon").
    code = (
        "from pathlib import Path; from paperloom.context import Run; "
        f"m = Run(out=Path('.'), plugin='lm', task='x').build({str(out / 'model')!r}); "
        "import torch; ids = torch.tensor([[1, 2, 3]]); "
        "print(type(m).__name__, m.generate(ids, max_new_tokens=4, do_sample=False).shape[1])"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-2:] == ["MegalodonForCausalLM", "7"]
