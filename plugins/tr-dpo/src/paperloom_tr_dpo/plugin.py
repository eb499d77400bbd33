"""Declarations only: importing this module must stay cheap (no torch, transformers or trl)."""

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl

PKG = "paperloom_tr_dpo"
PAIRS = ("preference-pairs",)


@hookimpl
def paperloom_plugin():
    return PluginInfo(
        summary="TR-DPO / TR-IPO / TR-KTO: DPO-family alignment whose reference policy moves during training (trl)",
        paper="Gorbatovski et al., Learn Your Reference Model for Real Good Alignment (arXiv 2404.09656)",
        url="https://arxiv.org/abs/2404.09656",
        requires=Requirements(packages=("trl>=1.0", "transformers>=4.56", "accelerate>=1.4", "datasets>=3.0",
                                        "tokenizers>=0.19"), gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components():
    return [
        Component("trainer", "trainer", f"{PKG}.trainer:build_trainer",
                  "DPO/IPO/KTO on trl with the TR reference update (update=none|soft|hard|general, alpha, tau)",
                  consumes=("causal-lm", "preference-pairs")),
        Component("win-rate", "evaluator", f"{PKG}.evaluate:build_win_rate",
                  "win rate vs a baseline policy under a judge (gold reward or a reward-model folder) + KL to SFT",
                  consumes=("causal-lm",)),
        Component("hh", "dataset", f"{PKG}.data:build_hh", "Anthropic-HH style JSONL (chosen/rejected dialogues)",
                  produces=PAIRS),
        Component("tldr", "dataset", f"{PKG}.data:build_tldr", "TL;DR style JSONL (prompt, chosen, rejected)",
                  produces=PAIRS),
        Component("hf-disk", "dataset", f"{PKG}.data:build_hf_disk",
                  "a datasets folder (save_to_disk): pairs, HH dialogues or unpaired rows", produces=PAIRS),
        Component("unpaired", "dataset", f"{PKG}.data:build_unpaired", "JSONL (prompt, completion, label) for KTO",
                  produces=("unpaired-preferences",)),
        Component("synthetic", "dataset", f"{PKG}.data:build_synthetic",
                  "generated prompts and responses labelled by a hidden gold reward (Bradley-Terry)", produces=PAIRS),
    ]


@hookimpl
def paperloom_tasks():
    tiny = {"train.steps": 4, "train.batch_size": 4, "train.max_length": 48, "data_args": {"n": 32},
            "policy_args": {"n_layer": 1, "n_embd": 32, "n_head": 2}, "vocab_size": 300}
    return [
        Task("sft", f"{PKG}.tasks:sft", f"{PKG}.config:SFTTaskConfig", config="configs/sft.yaml",
             summary="supervised warm-up on the chosen responses (trl SFTTrainer); saves model/", smoke=tiny),
        Task("align", f"{PKG}.tasks:align", f"{PKG}.config:AlignTaskConfig", config="configs/align.yaml",
             summary="DPO / IPO / KTO with the TR reference update (soft, hard, general); saves model/",
             smoke={**tiny, "ref.update": "hard", "ref.tau": 2}),
        Task("evaluate", f"{PKG}.tasks:evaluate", f"{PKG}.config:EvaluateTaskConfig", config="configs/evaluate.yaml",
             summary="win rate vs a baseline under a judge (gold reward / reward model), KL(policy || SFT)",
             smoke={"prompts": 4, "samples": 1}),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig", config="configs/demo.yaml",
             summary="tiny GPT-2, hidden gold reward: DPO vs TR-DPO soft vs TR-DPO hard at equal steps, reward vs KL",
             smoke={"sft_rows": 64, "sft_steps": 4, "pair_prompts": 32, "align_steps": 4, "tau": 2, "batch_size": 4,
                    "eval_prompts": 8, "eval_samples": 1, "curve_points": 1, "n_layer": 1, "n_embd": 32,
                    "vocab_size": 300},
             verify=(
                 Check("dpo_reward", ">", other="sft_reward", summary="DPO raises the hidden gold reward over SFT"),
                 Check("tr_dpo_hard_kl", ">", other="dpo_kl",
                       summary="with the reference moving (hard), the policy travels further from SFT than DPO"),
                 Check("tr_dpo_soft_kl", ">", other="dpo_kl",
                       summary="with the reference moving (soft), the policy travels further from SFT than DPO"),
             )),
    ]
