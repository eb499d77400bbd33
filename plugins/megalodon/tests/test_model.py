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
    model.generation_config.eos_token_id = None  # compare full lengths (no early stop at token 0)
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
    model.generation_config.eos_token_id = None
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


def test_rescale_nffn_keeps_the_per_layer_scale_after_init():
    """Official layer scale 0.1 * 0.5^layer survives `_init_weights`."""
    model = tiny(num_hidden_layers=4, rescale_nffn=True)
    for i, layer in enumerate(model.model.layers):
        torch.testing.assert_close(layer.ffn.alpha, torch.full_like(layer.ffn.alpha, 0.1 * 0.5**i))


def test_decoding_cache_is_detached_in_train_mode():
    """The cache stores CEMA states and norm statistics without the autograd graph (official: detached)."""
    model = tiny(chunk_size=8).train()
    out = model(torch.randint(0, 40, (2, 13)), use_cache=True)
    tensors = [*out.cache.final_norm]
    for layer in out.cache.layers:
        tensors += [layer.hx, *layer.norm, layer.k, layer.v]
    assert all(t is not None and t.grad_fn is None and not t.requires_grad for t in tensors)
    out.logits.sum().backward()  # the forward itself still trains


def test_initialization_embeddings_head_and_linear_layers():
    """Embeddings and LM head: N(0, 1/D) truncated at +-3 sigma (official); other linears: N(0, 0.02^2) truncated."""
    torch.manual_seed(0)
    model = MegalodonForCausalLM(preset_config("tiny", vocab_size=4000, hidden_size=64, norm_num_groups=4))
    for w in (model.model.embed_tokens.weight.detach(), model.lm_head.weight.detach()):
        s = 64**-0.5
        assert float(w.abs().max()) <= 3 * s + 1e-6
        assert abs(float(w.std()) / (s * 0.9866) - 1) < 0.03  # std of a +-3 sigma truncated normal: 0.9866 sigma
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and mod is not model.lm_head:
            assert float(mod.weight.detach().abs().max()) <= 0.06 + 1e-6, name
            if mod.bias is not None:
                assert float(mod.bias.detach().abs().max()) == 0, name
    fc1 = model.model.layers[0].ffn.fc1.weight.detach()
    assert abs(float(fc1.std()) / (0.02 * 0.9866) - 1) < 0.1


def same_loss_and_gradients(a, b, seed, loss_tol, rtol, atol, pad_first=0):
    """One forward+backward of models `a` and `b` on the same batch (the same dropout draws when `seed` is set):
    equal losses (within `loss_tol`) and equal gradients of every parameter."""
    ids = torch.randint(0, 40, (2, 24), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[0, :pad_first] = 0
    losses = []
    for m in (a, b):
        if seed is not None:
            torch.manual_seed(seed)
        loss = m(ids, attention_mask=mask if pad_first else None, labels=ids).loss
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], **loss_tol)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, rtol=rtol, atol=atol, msg=name)


def test_activation_checkpointing_option_gives_the_same_loss_and_gradients():
    """`activation_checkpointing_enable()` recomputes each layer in backward: same loss and gradients (dropout too)."""
    a = tiny(0, chunk_size=8, dropout=0.1).train()
    b = tiny(0, chunk_size=8, dropout=0.1).train()
    b.load_state_dict(a.state_dict())
    b.activation_checkpointing_enable()
    assert b.model.gradient_checkpointing
    same_loss_and_gradients(a, b, seed=1, loss_tol={}, rtol=1e-5, atol=1e-6)


def test_recompute_cema_norm_gives_the_same_loss_and_gradients():
    """`recompute_cema_norm` (default) stores only the inputs of CEMA / timestep norm: identical numbers."""
    a = tiny(0, chunk_size=8, recompute_cema_norm=False).train()
    b = tiny(0, chunk_size=8).train()
    assert b.config.recompute_cema_norm and b.model.layers[0].attn.cema.recompute and b.model.norm.recompute
    b.load_state_dict(a.state_dict())
    same_loss_and_gradients(a, b, seed=None, pad_first=5, loss_tol={"rtol": 0, "atol": 0}, rtol=1e-6, atol=1e-7)


def test_recompute_attention_option_gives_the_same_loss_and_gradients():
    """`recompute_attention=True` reruns projections + chunk attention + gate in backward (dropout replayed)."""
    kw = dict(chunk_size=8, dropout=0.1, attention_dropout=0.1, hidden_dropout=0.1)
    a = tiny(0, **kw).train()
    b = tiny(0, recompute_attention=True, **kw).train()
    b.load_state_dict(a.state_dict())
    same_loss_and_gradients(a, b, seed=3, loss_tol={"rtol": 0, "atol": 0}, rtol=1e-5, atol=1e-7)
