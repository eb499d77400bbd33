"""Declarations only: importing this module must stay cheap (no torch)."""

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl

PKG = "paperloom_inheritune"
TINY_DATA = {"data.max_chars": 20000, "data.vocab_size": 300, "data.block_size": 32}


@hookimpl
def paperloom_plugin():
    return PluginInfo(
        summary="Inheritune: a small base LM from the first k blocks of a larger one, trained on a tiny data subset",
        paper="Sanyal, Sanghavi, Shwartz-Ziv, Dimakis: Pre-training Small Base LMs with Fewer Tokens "
              "(arXiv 2404.08634)",
        url="https://arxiv.org/abs/2404.08634",
        requires=Requirements(packages=("torch>=2.4", "lightning>=2.4", "transformers>=4.56", "tokenizers>=0.19",
                                        "safetensors>=0.4"), gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components():
    return [
        Component("student", "model", f"{PKG}.components:build_student",
                  "the k-block Inheritune student of a reference folder (reference=..., k=..., copy_* flags)",
                  produces=("causal-lm",)),
        Component("pretrain", "trainer", f"{PKG}.components:build_trainer",
                  "Lightning pre-training with the paper's AdamW/cosine settings (scaled for small runs)",
                  consumes=("causal-lm", "token-blocks")),
        Component("mc-eval", "evaluator", f"{PKG}.components:build_mc_evaluator",
                  "multiple-choice log-likelihood accuracy of a JSONL file (MMLU-style, base models)",
                  consumes=("causal-lm",)),
    ]


@hookimpl
def paperloom_tasks():
    tiny_model = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64}
    tiny_trainer = {"max_steps": 2, "val_every": 1, "checkpoint_every": 1, "batch_size": 4}
    return [
        Task("inherit", f"{PKG}.train:inherit_task", f"{PKG}.config:InheritConfig", config="configs/inherit.yaml",
             summary="make a k-block student (blocks 0..k-1 + LM head) of a reference checkpoint, saved as HF folder",
             smoke={"reference_args": {"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 64}}),
        Task("train", f"{PKG}.train:train_task", f"{PKG}.config:TrainConfig", config="configs/train.yaml",
             summary="pre-train a (student) LM with Lightning on a data budget (fraction or token count), resumable",
             smoke={**TINY_DATA, "model_args": tiny_model, "trainer": tiny_trainer}),
        Task("evaluate", f"{PKG}.evaluate:evaluate_task", f"{PKG}.config:EvaluateConfig",
             config="configs/evaluate.yaml",
             summary="validation loss / perplexity; optional multiple-choice log-likelihood scoring of a JSONL file",
             smoke={**TINY_DATA, "model_args": tiny_model}),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig", config="configs/demo.yaml",
             summary="reference 8 blocks -> inherited vs random-init 4-block students on a 10% subset, 3 seeds",
             smoke={**TINY_DATA, "model_args": {**tiny_model, "n_layer": 2}, "inherit.k": 1, "seeds": [0],
                    "trainer": tiny_trainer, "student_trainer": tiny_trainer},
             verify=(Check("inherited_val_loss_max", "<", other="random_val_loss_min",
                           summary="every inherited student ends below every random-init one (Inheritune's claim)"),
                     )),
    ]
