"""Declarations only: importing this module must stay cheap (no torch)."""

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl
from paperloom.contracts import HF_CHECKPOINT, IMAGE_TEXT_ENCODER, IMAGE_TEXT_PAIRS

PKG = "paperloom_clip"
TINY_TRAINER = {"max_steps": 2, "batch_size": 8, "val_every": 1, "checkpoint_every": 1, "log_every": 1}
TINY_SLIP = {"strategy.ssl_mlp_dim": 32, "strategy.ssl_out_dim": 16}


@hookimpl
def paperloom_plugin():
    return PluginInfo(
        summary="Scaling (Down) CLIP: CLIP / SLIP / FLIP / CLIP+DataAug on ViT and ResNet towers, data-quality "
                "filtering, zero-shot / retrieval / linear-probe evaluation",
        paper="Li, Xie, Cubuk: Scaling (Down) CLIP: A Comprehensive Analysis of Data, Architecture, and Training "
              "Strategies (arXiv 2404.08197)",
        url="https://arxiv.org/abs/2404.08197",
        requires=Requirements(packages=("torch>=2.4", "torchvision>=0.19", "lightning>=2.4", "transformers>=4.56",
                                        "tokenizers>=0.19", "webdataset>=0.2.86", "scikit-learn>=1.3"),
                              gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components():
    return [
        Component("model", "model", f"{PKG}.components:build_model",
                  "a random-init CLIP: arch = ViT-Ti-4 / ViT-S-16 / ViT-B-32 (HF CLIP towers) or RN-Ti / RN50 "
                  "(torchvision ResNet), or a JSON config; path=FOLDER loads a checkpoint",
                  produces=(IMAGE_TEXT_ENCODER,)),
        Component("pretrained", "model", f"{PKG}.components:build_pretrained",
                  "a CLIP checkpoint folder (HF CLIPModel, e.g. openai/clip-vit-base-patch32 copied locally, or "
                  "clip:train's model/)", produces=(IMAGE_TEXT_ENCODER,), loads_folder=True),
        Component("pairs", "dataset", f"{PKG}.components:build_pairs",
                  "image-text pairs: CSV/TSV captions + image folder, JSONL, or webdataset .tar shards",
                  produces=(IMAGE_TEXT_PAIRS,)),
        Component("zero-shot", "evaluator", f"{PKG}.components:build_zero_shot",
                  "zero-shot top-1/top-5 from prompt templates on an ImageFolder layout",
                  consumes=(IMAGE_TEXT_ENCODER,)),
        Component("retrieval", "evaluator", f"{PKG}.components:build_retrieval",
                  "image->text and text->image Recall@1/5/10", consumes=(IMAGE_TEXT_ENCODER, IMAGE_TEXT_PAIRS)),
        Component("linear-probe", "evaluator", f"{PKG}.components:build_linear_probe",
                  "logistic regression on frozen image features (ImageFolder train/test)",
                  consumes=(IMAGE_TEXT_ENCODER,)),
    ]


@hookimpl
def paperloom_tasks():
    return [
        Task("train", f"{PKG}.tasks:train", f"{PKG}.config:TrainConfig",
             summary="train a CLIP on image-text pairs with CLIP / SLIP / FLIP / DataAug (Lightning, resumable, DDP)",
             smoke={"trainer": TINY_TRAINER, **TINY_SLIP}, artifacts={"model": HF_CHECKPOINT}),
        Task("filter", f"{PKG}.tasks:filter", f"{PKG}.config:FilterConfig",
             summary="score every pair with a CLIP model, keep the top x%: kept.jsonl (+ shards), histogram PNG"),
        Task("evaluate", f"{PKG}.tasks:evaluate", f"{PKG}.config:EvaluateConfig",
             summary="zero-shot accuracy (ImageFolder + templates), retrieval R@1/5/10, linear probe"),
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig",
             summary="generated shapes: clean subset vs larger noisy set at equal compute (3 seeds), the four "
                     "strategies, ViT vs ResNet at two data sizes",
             smoke={"pool": 48, "clean": 16, "small": 8, "test_per_class": 2, "seeds": [0, 1],
                    "trainer": TINY_TRAINER, **TINY_SLIP},
             verify=(Check("clean_minus_noisy_lower", ">", value=0.0,
                           summary="the clean subset beats the larger noisy set on zero-shot accuracy at equal "
                                   "compute: mean difference - margin_se standard errors > 0"),)),
    ]
