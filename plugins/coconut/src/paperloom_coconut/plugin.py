"""Declarations of the `coconut` plugin (no heavy imports: `core list` imports this module)."""

from __future__ import annotations

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl
from paperloom.contracts import COCO_PANOPTIC, PANOPTIC_SEGMENTATION

PKG = "paperloom_coconut"
DATA_SMOKE = {"data.limit": 4}


@hookimpl
def paperloom_plugin() -> PluginInfo:
    return PluginInfo(
        summary="COCONut panoptic data (S/B/L/XL/val), harmonized conversions, PQ/AP/mIoU evaluators, a baseline",
        paper="Deng et al., COCONut: Modernizing COCO Segmentation (CVPR 2024)",
        url="https://arxiv.org/abs/2404.08639",
        requires=Requirements(packages=("torch>=2.4", "torchvision>=0.19", "pycocotools>=2.0.7", "scikit-image>=0.21",
                                        "pillow>=9"), gpu="optional", memory_gb=2),
    )


@hookimpl
def paperloom_components() -> list[Component]:
    return [
        Component("panoptic", "dataset", f"{PKG}.components:build_panoptic",
                  "a COCONut split (or merged splits) in COCO panoptic format, lazily indexed",
                  produces=(COCO_PANOPTIC,)),
        Component("baseline", "model", f"{PKG}.components:build_baseline",
                  "small semantic + center + offset network with panoptic post-processing (random init, or "
                  "checkpoint=.pt from coconut:train)", produces=(PANOPTIC_SEGMENTATION,)),
        Component("pq", "evaluator", f"{PKG}.components:build_pq",
                  "PQ/SQ/RQ (panopticapi semantics), mIoU, mask/box AP (COCOeval) of a model or prediction folder",
                  consumes=(PANOPTIC_SEGMENTATION, COCO_PANOPTIC)),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    claims = (Check("fine_pq", ">", other="coarse_pq", summary="better labels give better PQ"),
              Check("fine_ap", ">", other="coarse_ap", summary="... and mask AP"),
              Check("fine_miou", ">", other="coarse_miou", summary="... and mIoU"))
    return [
        Task("demo", f"{PKG}.demo:demo", f"{PKG}.config:DemoConfig",
             summary="fine vs coarse labels on a generated COCONut-format set: train the baseline on each, compare",
             smoke={"n_train": 16, "n_val": 6, "steps": 3, "batch_size": 4, "model_args": {"width": 8},
                    "processes": 1, "visualize": 1},
             verify=claims),
        Task("train", f"{PKG}.tasks:train", f"{PKG}.config:TrainConfig",
             summary="train the baseline on any COCONut-format split (resumable)",
             smoke={"steps": 2, "batch_size": 2, "model_args": {"width": 8}, **DATA_SMOKE}),
        Task("evaluate", f"{PKG}.tasks:evaluate", f"{PKG}.config:EvaluateConfig",
             summary="PQ / mIoU / AP of a prediction folder or a model; shardable (shard=i/n)", smoke=DATA_SMOKE),
        Task("merge", f"{PKG}.tasks:merge", f"{PKG}.config:MergeConfig",
             summary="combine shard partial results exactly into the final metrics"),
        Task("convert", f"{PKG}.tasks:convert", f"{PKG}.config:ConvertConfig",
             summary="panoptic -> semantic PNGs, COCO instance JSON or boxes", smoke=DATA_SMOKE),
        Task("visualize", f"{PKG}.tasks:visualize", f"{PKG}.config:VisualizeConfig",
             summary="overlay PNGs of masks, and error maps against a prediction folder",
             smoke={"images": 1, **DATA_SMOKE}),
    ]
