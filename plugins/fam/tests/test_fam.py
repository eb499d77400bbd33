"""Fidelity of the BSWA / FAM loop (fam.py through FAMForCausalLM) against the plain loop reference
(reference.py) and against the unwrapped Hugging Face model, on random inputs (several seeds and shapes)."""

import pytest
import torch
from conftest import gpt2, llama
from paperloom_fam.model import FAMForCausalLM
from reference import GPT2, Llama, reference

CASES = [  # (architecture, seed, length, block, mem, fam_len)
    ("llama", 0, 13, 4, 1, 2), ("llama", 1, 16, 4, 2, 3), ("llama", 2, 9, 3, 0, 1),
    ("gpt2", 0, 11, 4, 1, 2), ("gpt2", 1, 12, 3, 2, 4),
]


# HF's rotary module computes RoPE angles in float32 (the reference in float64): ~1e-7 on Llama logits; GPT-2
# (no RoPE) agrees to float64 rounding. A wrong mask, memory or FAM update is off by > 1e-2.
TOL = {"llama": 1e-6, "gpt2": 1e-10}


def build(arch, seed):
    return (llama(seed) if arch == "llama" else gpt2(seed)), (Llama if arch == "llama" else GPT2)


@pytest.mark.parametrize("arch,seed,length,block,mem,fam_len", CASES)
def test_fam_equals_the_plain_loop_reference(arch, seed, length, block, mem, fam_len):
    base, Ref = build(arch, seed)
    model = FAMForCausalLM.wrap(base, block_size=block, mem_segments=mem, fam_len=fam_len).eval()
    ids = torch.randint(0, 40, (2, length), generator=torch.Generator().manual_seed(seed))
    out = model(ids, output_fam_states=True)
    for row in range(2):
        logits, fams = reference(Ref(base), ids[row], block, mem, fam_len, model.fam_prompt)
        torch.testing.assert_close(out.logits[row], logits, atol=TOL[arch], rtol=0)
        assert len(out.fam_states) == len(fams) == length // block  # only complete blocks are compressed
        for got, want in zip(out.fam_states, fams):
            torch.testing.assert_close(got[:, row], want, atol=TOL[arch], rtol=0)


@pytest.mark.parametrize("positions", ["last", "float", "zero"])
@pytest.mark.parametrize("zero_first", [True, False])
def test_position_modes_and_first_residual_match_the_reference(positions, zero_first):
    base, Ref = build("llama", 3)
    model = FAMForCausalLM.wrap(base, block_size=4, mem_segments=1, fam_len=3, fam_positions=positions,
                                zero_first_residual=zero_first).eval()
    ids = torch.randint(0, 40, (1, 14), generator=torch.Generator().manual_seed(3))
    logits, _ = reference(Ref(base), ids[0], 4, 1, 3, model.fam_prompt, zero_first, positions)
    torch.testing.assert_close(model(ids).logits[0], logits, atol=TOL["llama"], rtol=0)


def test_position_offset_and_a_given_initial_fam_match_the_reference():
    base, Ref = build("llama", 4)
    model = FAMForCausalLM.wrap(base, block_size=4, mem_segments=1, fam_len=2).eval()
    ids = torch.randint(0, 40, (1, 10), generator=torch.Generator().manual_seed(4))
    given = [torch.randn(1, 2, 32, dtype=torch.float64) for _ in range(2)]
    out = model(ids, position_offset=7, initial_fam=given).logits[0]
    want, _ = reference(Ref(base), ids[0], 4, 1, 2, start=7, initial=[g[0] for g in given])
    torch.testing.assert_close(out, want, atol=TOL["llama"], rtol=0)


@pytest.mark.parametrize("arch,seed,length,block,mem", [("llama", 0, 12, 4, 1), ("gpt2", 1, 10, 3, 2),
                                                        ("llama", 2, 7, 2, 0)])
def test_fam_len_zero_is_bswa_exactly(arch, seed, length, block, mem):
    base, Ref = build(arch, seed)
    model = FAMForCausalLM.wrap(base, block_size=block, mem_segments=mem, fam_len=0).eval()
    ids = torch.randint(0, 40, (1, length), generator=torch.Generator().manual_seed(seed))
    logits, fams = reference(Ref(base), ids[0], block, mem, 0)
    assert model.fam_prompt is None and fams == []
    torch.testing.assert_close(model(ids).logits[0], logits, atol=TOL[arch], rtol=0)


@pytest.mark.parametrize("make", [lambda s: llama(s), lambda s: gpt2(s), lambda s: llama(s, kv=1, cls="qwen2"),
                                  lambda s: llama(s, kv=4, cls="mistral"), lambda s: llama(s, cls="qwen3")])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_block_and_all_memory_equal_full_causal_attention_of_the_hf_model(make, seed):
    base = make(seed)
    ids = torch.randint(0, 40, (2, 15), generator=torch.Generator().manual_seed(seed))
    want = base(ids).logits  # the unwrapped model's own full causal attention
    one_block = FAMForCausalLM.wrap(base, block_size=15, mem_segments=0, fam_len=0).eval()
    all_memory = FAMForCausalLM.wrap(base, block_size=4, mem_segments=4, fam_len=0).eval()
    torch.testing.assert_close(one_block(ids).logits, want, atol=1e-10, rtol=0)
    torch.testing.assert_close(all_memory(ids).logits, want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_in_any_split_equals_one_call(arch, seed):
    base, _ = build(arch, seed)
    model = FAMForCausalLM.wrap(base, block_size=4, mem_segments=1, fam_len=2).eval()
    ids = torch.randint(0, 40, (2, 17), generator=torch.Generator().manual_seed(seed))
    full = model(ids, output_fam_states=True)
    gen = torch.Generator().manual_seed(100 + seed)
    for split in ("token", "block", "random"):
        cache, parts, fams, t = None, [], [], 0
        while t < ids.shape[1]:
            n = {"token": 1, "block": 4, "random": int(torch.randint(1, 7, (1,), generator=gen))}[split]
            out = model(ids[:, t:t + n], cache=cache, use_cache=True, output_fam_states=True)
            cache, t = out.cache, t + n
            parts.append(out.logits)
            fams += list(out.fam_states)
        torch.testing.assert_close(torch.cat(parts, 1), full.logits, atol=1e-10, rtol=0)
        assert len(fams) == len(full.fam_states) == 4
        for a, b in zip(fams, full.fam_states):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("tau", [1, 2, 3])
def test_fam_and_logits_up_to_block_tau_do_not_depend_on_later_tokens(tau):
    base, _ = build("llama", tau)
    model = FAMForCausalLM.wrap(base, block_size=4, mem_segments=1, fam_len=2).eval()
    gen = torch.Generator().manual_seed(tau)
    ids = torch.randint(0, 40, (1, 16), generator=gen)
    other = ids.clone()
    other[:, tau * 4:] = torch.randint(0, 40, (1, 16 - tau * 4), generator=gen)
    a, b = model(ids, output_fam_states=True), model(other, output_fam_states=True)
    torch.testing.assert_close(a.logits[:, :tau * 4], b.logits[:, :tau * 4], atol=0, rtol=0)
    for k in range(tau):  # F_1 .. F_tau
        torch.testing.assert_close(a.fam_states[k], b.fam_states[k], atol=0, rtol=0)
    assert not torch.allclose(a.fam_states[tau], b.fam_states[tau])  # F_{tau+1} reads the changed block
    assert not torch.allclose(a.logits[:, tau * 4:], b.logits[:, tau * 4:])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_parameter_count_is_base_plus_the_fam_prompt(arch):
    base, _ = build(arch, 0)
    n_base = sum(p.numel() for p in base.parameters())
    model = FAMForCausalLM.wrap(base, block_size=4, mem_segments=1, fam_len=5)
    assert sum(p.numel() for p in model.parameters()) == n_base + 5 * 32
    assert [n for n, _ in model.named_parameters() if not n.startswith("base.")] == ["fam_prompt"]
