"""The HF wrapper: save/load round trip (also in a fresh process, by folder), generate() with the streaming
cache, output_fam_states, LoRA through peft, and one-line errors for what it does not support."""

import subprocess
import sys

import pytest
import torch
from conftest import gpt2, llama
from paperloom_fam.model import FAMForCausalLM

from paperloom import UserError


@pytest.mark.parametrize("make", [llama, gpt2])
def test_save_and_load_round_trip_the_weights_and_fam_settings(make, tmp_path):
    model = FAMForCausalLM.wrap(make(0), block_size=4, mem_segments=2, fam_len=3, fam_positions="float",
                                zero_first_residual=False).eval()
    model.save_pretrained(tmp_path / "m")
    again = FAMForCausalLM.from_pretrained(tmp_path / "m").eval()
    assert (again.config.block_size, again.config.mem_segments, again.config.fam_len) == (4, 2, 3)
    assert (again.config.fam_positions, again.config.zero_first_residual) == ("float", False)
    ids = torch.randint(0, 40, (1, 11))
    want = model.state_dict()
    assert all(torch.equal(t, want[k]) for k, t in again.state_dict().items())
    torch.testing.assert_close(again(ids).logits, model(ids).logits, atol=1e-12, rtol=0)  # rotary buffers: f32 vs f64
    if make is gpt2:  # the base's tied head stays tied after loading
        assert again.base.lm_head.weight.data_ptr() == again.base.transformer.wte.weight.data_ptr()


def test_saved_folder_loads_by_path_in_a_fresh_process(tmp_path):
    """`hf_model_types=("fam",)`: lm's folder loader imports this plugin to register the model type."""
    FAMForCausalLM.wrap(llama(1).float(), block_size=4, mem_segments=1, fam_len=2).save_pretrained(tmp_path / "m")
    code = ("from pathlib import Path; import torch; from paperloom.context import Run; "
            f"m = Run(out=Path('.'), plugin='lm', task='x').build({str(tmp_path / 'm')!r}); "
            "print(type(m).__name__, m.config.fam_len, m(torch.tensor([[1, 2, 3]])).logits.shape[1])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-3:] == ["FAMForCausalLM", "2", "3"]


@pytest.mark.parametrize("make", [llama, gpt2])
def test_generate_uses_the_cache_and_equals_greedy_recomputation(make):
    model = FAMForCausalLM.wrap(make(2), block_size=3, mem_segments=1, fam_len=2).eval()
    prompt = torch.randint(1, 40, (2, 5), generator=torch.Generator().manual_seed(2))
    calls = []
    def record(module, args, kw):
        calls.append((kw["input_ids"] if "input_ids" in kw else args[0]).shape[1])

    model.register_forward_pre_hook(record, with_kwargs=True)
    out = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0, eos_token_id=None)
    assert calls == [5] + [1] * 7  # the prompt once, then one token per step: no re-encoding
    ids = prompt
    for _ in range(8):  # greedy by re-running the whole sequence
        ids = torch.cat([ids, model(ids).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, ids)


def test_output_fam_states_are_f_after_each_completed_block():
    model = FAMForCausalLM.wrap(llama(0), block_size=4, mem_segments=1, fam_len=3).eval()
    out = model(torch.randint(0, 40, (2, 14)), output_fam_states=True)
    assert len(out.fam_states) == 3 and out.fam_states[0].shape == (2, 2, 3, 32)  # (layers, B, fam_len, D)
    assert model(torch.randint(0, 40, (2, 14))).fam_states is None


@pytest.mark.parametrize("make,proj", [(llama, "q_proj"), (gpt2, "c_attn")])
def test_lora_adapts_the_attention_and_trains_the_prompt(make, proj):
    from paperloom_fam.finetune import add_lora, merge_lora

    model = FAMForCausalLM.wrap(make(0).float(), block_size=4, mem_segments=1, fam_len=2).eval()  # no dropout
    ids = torch.randint(0, 40, (2, 10))
    before = model(ids).logits.detach()
    peft_model = add_lora(model, 4, 8.0, 0.0, [])
    trainable = sorted(n for n, p in peft_model.named_parameters() if p.requires_grad)
    assert any("lora_A" in n and proj in n for n in trainable) and any(n.endswith("fam_prompt") for n in trainable)
    assert not any("mlp" in n or "embed" in n or "wte" in n for n in trainable)
    torch.testing.assert_close(peft_model(input_ids=ids).logits, before)  # LoRA B starts at zero
    opt = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        peft_model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    after = peft_model(input_ids=ids).logits.detach()
    merged = merge_lora(peft_model)
    assert type(merged) is FAMForCausalLM
    torch.testing.assert_close(merged(ids).logits, after, atol=1e-5, rtol=0)


def test_unsupported_decoders_and_padding_are_one_line_errors():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    neox = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=40, num_hidden_layers=1, hidden_size=16, num_attention_heads=2,
                                            intermediate_size=32))
    with pytest.raises(UserError, match="does not support GPTNeoXForCausalLM .*GPTNeoXAttention"):
        FAMForCausalLM.wrap(neox, block_size=4, mem_segments=1, fam_len=2)
    model = FAMForCausalLM.wrap(gpt2(0), block_size=4, mem_segments=1, fam_len=2)
    with pytest.raises(ValueError, match="padding"):
        model(torch.ones(2, 4, dtype=torch.long), attention_mask=torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]))
    with pytest.raises(UserError, match="128 learned positions"):
        model(torch.ones(1, 130, dtype=torch.long))
