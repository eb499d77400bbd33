"""Declarations only: importing this module must stay cheap (no torch)."""

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl
from paperloom.contracts import CAUSAL_LM, HF_CHECKPOINT, TOKEN_BLOCKS

PKG = "paperloom_inheritune"
TINY_DATA = {"data.max_chars": 20000, "data.vocab_size": 300, "data.block_size": 32}
TINY_MODEL = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64}
TINY_TRAINER = {"max_steps": 2, "val_every": 1, "checkpoint_every": 1, "batch_size": 4}


@hookimpl
def paperloom_plugin():
    return PluginInfo(
        summary="Inheritune: a small base LM from the first k blocks of a larger one, trained on a tiny data subset",
        paper="Sanyal, Sanghavi, Shwartz-Ziv, Dimakis: Pre-training Small Base LMs with Fewer Tokens "
              "(arXiv 2404.08634)",
        url="https://arxiv.org/abs/2404.08634",
        requires=Requirements(packages=("paperloom-lm>=0.2,<0.3", "torch>=2.4", "lightning>=2.4",
                                        "transformers>=4.56", "tokenizers>=0.19", "safetensors>=0.4"),
                              gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components():
    return [
        Component("student", "model", f"{PKG}.components:build_student",
                  "the k-block Inheritune student of a reference folder (reference=..., k=..., copy_* flags; "
                  "random_init=true: the same architecture at random init)", produces=(CAUSAL_LM,)),
        Component("mc-eval", "evaluator", f"{PKG}.components:build_mc_eval",
                  "multiple-choice log-likelihood accuracy on a JSONL file (MMLU-style, base models); "
                  "run it with lm:evaluate", consumes=(CAUSAL_LM, TOKEN_BLOCKS)),
    ]


@hookimpl
def paperloom_tasks():
    return [
        Task("inherit", f"{PKG}.tasks:inherit", f"{PKG}.config:InheritConfig",
             summary="make a k-block student (blocks 0..k-1 + LM head) of a reference checkpoint, saved as HF folder",
             smoke={"reference_args": {"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 64}}),
        Task("pretrain", f"{PKG}.tasks:pretrain", f"{PKG}.config:PretrainConfig",
             summary="pre-train a (student) LM on a data budget with lm's recipe (paper preset: --config paper)",
             smoke={**TINY_DATA, "model_args": TINY_MODEL, "trainer": TINY_TRAINER},
             artifacts={"model": HF_CHECKPOINT}),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig",
             summary="reference 8 blocks -> inherited 4-block students on a 10% subset vs a 4-block model from "
                     "scratch on the full data (the reference's budget) and the reference continued, 3 seeds",
             smoke={**TINY_DATA, "model_args": TINY_MODEL, "inherit.k": 1, "seeds": [0],
                    "trainer": TINY_TRAINER, "student_trainer": TINY_TRAINER},
             # The paper's claim at the demo's scale (README "Demo"), each part by margin_se standard errors.
             verify=(Check("scratch_full_minus_inherited_lower", ">", value=0.0,
                           summary="inherited (4 blocks, 10% of the data) beats the same-size model trained from "
                                   "scratch on the full data with the reference's budget: difference - margin_se SE"),
                     Check("inherited_val_loss_upper", "<", other="reference_val_loss_plus_tolerance",
                           summary="inherited matches (within match_tolerance) or beats its 8-block reference: "
                                   "mean + margin_se SE"),
                     )),
    ]
