"""The HF model: decoding with cached state == full forward; save / from_pretrained / generate; conventions."""

import pytest
import torch
from paperloom_megalodon.model import PRESETS, MegalodonConfig, MegalodonForCausalLM, preset_config
from transformers import AutoConfig, AutoModelForCausalLM


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return MegalodonForCausalLM(preset_config("tiny", vocab_size=40, **kw)).eval()


@pytest.mark.parametrize("seed,chunk,prompt", [(0, 16, 5), (1, 8, 8), (2, 4, 11), (3, 64, 1)])
def test_token_by_token_equals_full_forward(seed, chunk, prompt):
    model = tiny(seed, chunk_size=chunk)
    ids = torch.randint(0, 40, (2, 37), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        full = model(ids).logits
        out = model(ids[:, :prompt], use_cache=True)
        steps, cache = [out.logits], out.cache
        t = prompt
        while t < ids.shape[1]:  # single tokens, then a multi-token piece that crosses a chunk border
            n = 1 if t < 25 else min(6, ids.shape[1] - t)
            out = model(ids[:, t:t + n], cache=cache, use_cache=True)
            steps.append(out.logits)
            cache, t = out.cache, t + n
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-4)
    assert cache.get_seq_length() == 37


def test_generate_matches_greedy_full_recompute_and_left_padding():
    model = tiny(1, chunk_size=4)
    ids = torch.randint(3, 40, (2, 6), generator=torch.Generator().manual_seed(0))
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                         pad_token_id=0)
    x = ids
    with torch.no_grad():
        for _ in range(12):
            x = torch.cat([x, model(x).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, x)
    # a left-padded row generates what it generates alone (padding counts toward chunk positions, so this
    # holds exactly while prompt + generation fit one chunk; RoPE is relative, pads are skipped by the norm)
    model = tiny(1, chunk_size=64)
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids[:1, 3:]], 1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1]])
    alone = model.generate(ids[:1, 3:], attention_mask=torch.ones(1, 3, dtype=torch.long), max_new_tokens=6,
                           do_sample=False, pad_token_id=0)
    batched = model.generate(padded, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(batched[0, 3:], alone[0])


def test_save_and_load_with_auto_classes_then_generate(tmp_path):
    model = tiny(2)
    model.save_pretrained(tmp_path / "m")
    cfg = AutoConfig.from_pretrained(tmp_path / "m")
    assert cfg.model_type == "megalodon" and isinstance(cfg, MegalodonConfig)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m", local_files_only=True).eval()
    assert isinstance(loaded, MegalodonForCausalLM)
    ids = torch.randint(0, 40, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)
    gen = loaded.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert gen.shape == (1, 28)


def test_hf_conventions_for_layer_slicing():
    model = tiny()
    layers = model.model.layers
    assert isinstance(layers, torch.nn.ModuleList) and len(layers) == model.config.num_hidden_layers
    assert model.get_input_embeddings() is model.model.embed_tokens and model.get_output_embeddings() is model.lm_head
    names = {n.split(".")[0] + "." + n.split(".")[1] for n, _ in model.named_parameters()}
    assert {"model.embed_tokens", "model.layers", "model.norm", "lm_head.weight"} <= names


def test_loss_backward_reaches_every_parameter_and_ignores_minus_100():
    model = tiny(chunk_size=8).train()
    ids = torch.randint(0, 40, (2, 24))
    labels = ids.clone()
    labels[:, :10] = -100
    out = model(ids, labels=labels)
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    logits = out.logits[:, :-1].reshape(-1, 40)
    ref = torch.nn.functional.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, ref)


def test_cema_switch_and_swiglu_and_presets():
    assert tiny(use_cema=False).model.layers[0].attn.cema is None
    assert tiny(swiglu=True).model.layers[0].ffn.fc3 is not None
    big = preset_config("7b", vocab_size=32000)
    assert (big.num_hidden_layers, big.hidden_size, big.chunk_size, big.cema_ndim) == (32, 4096, 4096, 16)
    assert PRESETS["small"]["chunk_size"] == 2048 and PRESETS["small"]["norm_num_groups"] == 32
    with pytest.raises(ValueError, match="norm_num_groups"):
        MegalodonConfig(hidden_size=30, norm_num_groups=4)
    with pytest.raises(ValueError, match="kernel_backend"):
        MegalodonConfig(kernel_backend="cuda")


def test_long_sequence_cost_is_chunked():
    """Changing a token in chunk 0 changes later chunks only through CEMA / norm statistics."""
    model = tiny(chunk_size=8, use_cema=False)
    ids = torch.randint(3, 40, (1, 32))
    other = ids.clone()
    other[0, 2] = (ids[0, 2] + 1) % 40
    with torch.no_grad():
        a, b = model(ids).logits, model(other).logits
    assert (a[0, 8:] - b[0, 8:]).abs().max() < (a[0, 2:8] - b[0, 2:8]).abs().max()
