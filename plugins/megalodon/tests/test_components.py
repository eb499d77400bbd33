"""The components as other tasks build them: `ctx.build("megalodon:tiny", ...)`, a saved folder by path."""

import subprocess
import sys

import pytest
import torch

from paperloom.context import Run


def _ctx(tmp_path):
    return Run(out=tmp_path, plugin="megalodon", task="test")


def test_components_build_their_sizes_with_overrides(tmp_path):
    ctx = _ctx(tmp_path)
    tiny = ctx.build("megalodon:tiny", vocab_size=50, chunk_size=8)
    assert (tiny.config.hidden_size, tiny.config.chunk_size, tiny.config.vocab_size) == (32, 8, 50)
    small = ctx.build("megalodon:small", vocab_size=50, num_hidden_layers=1)
    assert (small.config.hidden_size, small.config.norm_num_groups, len(small.model.layers)) == (256, 32, 1)


def test_builder_drops_unknown_sizes_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="n_embd"):
        model = _ctx(tmp_path).build("megalodon:tiny", vocab_size=20, n_embd=99, hidden_size=16, norm_num_groups=4)
    assert model.config.hidden_size == 16 and not hasattr(model.config, "n_embd")


def test_saved_folder_loads_by_path_in_a_fresh_process(tmp_path):
    """`hf_model_types=("megalodon",)`: lm's folder loader imports this plugin to register the model type."""
    torch.manual_seed(0)
    _ctx(tmp_path).build("megalodon:tiny", vocab_size=30).save_pretrained(tmp_path / "m")
    code = ("from pathlib import Path; import torch; from paperloom.context import Run; "
            f"m = Run(out=Path('.'), plugin='lm', task='x').build({str(tmp_path / 'm')!r}); "
            "ids = torch.tensor([[1, 2, 3]]); "
            "print(type(m).__name__, m.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0).shape[1])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-2:] == ["MegalodonForCausalLM", "7"]
