"""convert / finetune / evaluate on tiny generated inputs; composition with another plugin's model; errors."""

import json

import pytest
import torch

from paperloom import UserError
from paperloom.runner import execute

TINY = ["base_args={num_hidden_layers: 2, hidden_size: 32, num_attention_heads: 2, max_position_embeddings: 512}",
        "fam.block_size=8", "fam.mem_segments=1", "fam.fam_len=2"]


def test_convert_saves_a_folder_that_loads_with_the_same_logits(tmp_path):
    from paperloom_fam.model import FAMForCausalLM

    watch = []
    out, m = execute("fam:convert", overrides=TINY, out=tmp_path / "c", device="cpu", watch=watch)
    assert m["params"] == m["base_params"] + m["fam_prompt_params"] == m["base_params"] + 2 * 32
    built = watch[-1][1].eval()
    loaded = FAMForCausalLM.from_pretrained(out / "model").eval()
    ids = torch.randint(0, 100, (1, 20))
    torch.testing.assert_close(loaded(ids).logits, built(ids).logits)
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "fam"


def test_convert_wraps_a_checkpoint_folder_and_keeps_its_weights_and_tokenizer(tmp_path):
    from paperloom_lm.data import train_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    base = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_layer=2, n_embd=32, n_head=2, n_positions=64)).eval()
    base.save_pretrained(tmp_path / "gpt2")
    train_tokenizer(["some text to train a tokenizer on"] * 10, 300, tmp_path / "gpt2")
    out, _ = execute("fam:convert", overrides=[f"base={tmp_path / 'gpt2'}", "fam.block_size=64", "fam.mem_segments=0",
                                               "fam.fam_len=0"], out=tmp_path / "c", device="cpu")
    from paperloom_fam.model import FAMForCausalLM

    loaded = FAMForCausalLM.from_pretrained(out / "model").eval()
    ids = torch.randint(0, 300, (1, 30))
    torch.testing.assert_close(loaded(ids).logits, base(ids).logits, atol=1e-5, rtol=0)  # one block = full causal
    assert (out / "model" / "tokenizer_config.json").is_file()


def test_finetune_lowers_the_loss_and_exports_lora_merged(tmp_path):
    over = [*TINY, "data.max_chars=20000", "data.vocab_size=300", "data.block_size=32", "lora.rank=4",
            "state_passing=1.0", "max_position_offset=16", "optim.lr=5e-3",
            "trainer={max_steps: 12, batch_size: 4, val_every: 6, checkpoint_every: 6, log_every: 1}"]
    out, m = execute("fam:finetune", overrides=over, out=tmp_path / "f", device="cpu")
    assert m["val_loss"] < m["init_val_loss"] and m["steps"] == 12
    assert m["trainable_params"] < 20_000  # LoRA + prompt, not the whole decoder
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["model_type"] == "fam" and cfg["fam_len"] == 2 and "lora" not in json.dumps(cfg).lower()


def test_random_state_passing_starts_a_step_from_the_previous_fam():
    from conftest import llama
    from paperloom_fam.finetune import FAMModule
    from paperloom_fam.model import FAMForCausalLM

    from paperloom.schemas import OptimConfig

    model = FAMForCausalLM.wrap(llama(0), block_size=4, mem_segments=1, fam_len=2)
    module = FAMModule(model, OptimConfig(), 10, state_passing=1.0)
    module.log = lambda *a, **k: None
    seen = []
    model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw.get("initial_fam")), with_kwargs=True)
    batch = {"input_ids": torch.randint(0, 40, (2, 8)), "labels": torch.randint(0, 40, (2, 8))}
    module.training_step(batch, 0)
    ended = [f.clone() for f in module.previous]
    module.training_step(batch, 1)
    assert seen[0] is None and all(torch.equal(a, b) for a, b in zip(seen[1], ended))
    assert not seen[1][0].requires_grad  # detached: no backprop into the previous step


def test_evaluate_reports_passkey_and_loss_by_position(tmp_path):
    _, m = execute("fam:evaluate", smoke=True, out=tmp_path / "e", device="cpu")
    assert {"passkey_acc_len16", "passkey_acc_len32"} <= set(m)
    assert sum(k.startswith("loss_pos") for k in m) == 4 and all(0 <= m[k] <= 1 for k in m if "passkey" in k)


def test_bad_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        execute("fam:convert", smoke=True, overrides=[f"out={tmp_path / 'full'}"], out=tmp_path / "a", device="cpu")
    with pytest.raises(UserError, match="unknown argument 'blocksize'"):
        execute("fam:evaluate", smoke=True, overrides=["model_args={blocksize: 4}"], out=tmp_path / "b", device="cpu")
    with pytest.raises(UserError, match="no checkpoint folder with config.json"):
        execute("fam:convert", overrides=[f"base={tmp_path / 'full'}"], out=tmp_path / "c", device="cpu")


@pytest.mark.cross_plugin
def test_another_plugins_model_with_an_unsupported_attention_is_named(tmp_path):
    pytest.importorskip("paperloom_megalodon")
    with pytest.raises(UserError, match="does not support MegalodonForCausalLM"):
        execute("fam:convert", overrides=["base=megalodon:tiny", "base_args={}"], out=tmp_path / "m", device="cpu")


@pytest.mark.cross_plugin
def test_inheritune_student_folder_composes(tmp_path):
    """A model another plugin saved (an inheritune student) is a plain HF folder: fam wraps it."""
    pytest.importorskip("paperloom_inheritune")
    out, _ = execute("inheritune:inherit", overrides=["reference=lm:llama", "reference_args={num_hidden_layers: 4, "
                     "hidden_size: 32, num_attention_heads: 2, vocab_size: 64}", "inherit.k=2"],
                     out=tmp_path / "i", device="cpu")
    _, m = execute("fam:convert", overrides=[f"base={out / 'student'}", *TINY[1:]], out=tmp_path / "c", device="cpu")
    assert m["fam_prompt_params"] == 2 * 32


def test_text_passkey_has_the_key_at_the_start_and_as_the_answer(tmp_path):
    from paperloom_fam.tasks import text_passkey
    from paperloom_lm.data import train_tokenizer

    tok = train_tokenizer(["The pass key is 12345. What is the pass key? The grass is green."] * 20, 300)
    ids, nk = text_passkey(tok, 96, 4, torch.Generator().manual_seed(0))
    assert ids.shape == (4, 96)
    for row, k in zip(ids, nk.tolist()):
        text = tok.decode(row)
        key = tok.decode(row[-k:]).strip()
        assert len(key) == 5 and key.isdigit() and f"The pass key is {key}. Remember it." in text
        assert text.rstrip().endswith(f"What is the pass key? The pass key is {key}")
    with pytest.raises(UserError, match="cannot hold the text passkey"):
        text_passkey(tok, 20, 1, torch.Generator())


def test_lm_evaluate_runs_any_decoder_as_fam_by_name(tmp_path):
    """lm's generic evaluator builds fam:wrap around lm:gpt2 by name (the wrapper is a plain causal-lm)."""
    _, m = execute("lm:evaluate", overrides=[
        "model=fam:wrap", "model_args={base: lm:gpt2, base_args: {n_layer: 1, n_embd: 32, n_head: 2}, block_size: 16, "
        "mem_segments: 1, fam_len: 2}", "data.max_chars=20000", "data.vocab_size=300", "data.block_size=32",
        "context_lengths=[32,64]"], out=tmp_path / "e", device="cpu")
    assert m["val_loss_ctx32"] > 0 and m["val_loss_ctx64"] > 0


def test_a_resumed_finetune_logs_the_losses_of_an_unbroken_one(tmp_path):
    """Stopped at step 6 and resumed to 12: the carried FAM (state passing) and the draws continue, so every
    logged train loss equals the uninterrupted run's."""
    from paperloom.io import read_jsonl

    over = [*TINY, "data.max_chars=20000", "data.vocab_size=300", "data.block_size=32", "lora.rank=4",
            "state_passing=0.8", "max_position_offset=16", "optim.lr=5e-3", "export=false",
            "trainer={batch_size: 4, val_every: 100, checkpoint_every: 6, log_every: 1}"]

    def losses(out):
        return {r["step"]: r["train_loss"] for r in read_jsonl(out / "metrics.jsonl") if "train_loss" in r}

    whole, _ = execute("fam:finetune", overrides=[*over, "trainer.max_steps=12"], out=tmp_path / "w", device="cpu")
    part, _ = execute("fam:finetune", overrides=[*over, "trainer.max_steps=6"], out=tmp_path / "p", device="cpu")
    execute("fam:finetune", overrides=["trainer.max_steps=12"], out=part, resume=True, device="cpu")
    a, b = losses(whole), losses(part)
    assert sorted(a) == list(range(1, 13)) and set(a) == set(b)
    assert all(abs(a[s] - b[s]) < 1e-6 for s in a), {s: (a[s], b[s]) for s in a}
