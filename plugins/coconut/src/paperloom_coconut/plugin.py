"""Declarations only: importing this module stays cheap (no torch)."""

from __future__ import annotations

from paperloom import Check, Component, PluginInfo, Requirements, Task, hookimpl

P = "paperloom_coconut"


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
        Component("panoptic", "dataset", f"{P}.data:build_dataset",
                  "a COCONut split (or merged splits) in COCO panoptic format, lazily indexed",
                  produces=("coco-panoptic",)),
        Component("baseline", "model", f"{P}.model:build_baseline",
                  "small semantic + center + offset network with panoptic post-processing (random init)",
                  produces=("panoptic-segmentation",)),
        Component("pq", "evaluator", f"{P}.tasks:build_evaluator",
                  "PQ/SQ/RQ (panopticapi semantics), mIoU, mask/box AP (COCOeval) of a model or prediction folder",
                  consumes=("panoptic-segmentation", "coco-panoptic")),
    ]


@hookimpl
def paperloom_tasks() -> list[Task]:
    data_smoke = {"data.limit": 4}
    return [
        Task("demo", f"{P}.tasks:demo", f"{P}.config:DemoConfig", config="configs/demo.yaml",
             summary="fine vs coarse labels on a generated COCONut-format set: train the baseline on each, compare",
             smoke={"n_train": 16, "n_val": 6, "steps": 3, "batch_size": 4, "width": 8, "processes": 1, "visualize": 1},
             verify=(Check("fine_pq", ">", other="coarse_pq", summary="better labels give better PQ"),
                     Check("fine_ap", ">", other="coarse_ap", summary="... and mask AP"),
                     Check("fine_miou", ">", other="coarse_miou", summary="... and mIoU"))),
        Task("train", f"{P}.tasks:train", f"{P}.config:TrainConfig", config="configs/train.yaml",
             summary="train the baseline on any COCONut-format split (resumable)",
             smoke={"steps": 2, "batch_size": 2, "width": 8, **data_smoke}),
        Task("evaluate", f"{P}.tasks:evaluate", f"{P}.config:EvaluateConfig", config="configs/evaluate.yaml",
             summary="PQ / mIoU / AP of a prediction folder or a model; shardable (shard=i/n)", smoke=data_smoke),
        Task("merge", f"{P}.tasks:merge", f"{P}.config:MergeConfig", config="configs/merge.yaml",
             summary="combine shard partial results exactly into the final metrics"),
        Task("convert", f"{P}.tasks:convert", f"{P}.config:ConvertConfig", config="configs/convert.yaml",
             summary="panoptic -> semantic PNGs, COCO instance JSON or boxes", smoke=data_smoke),
        Task("visualize", f"{P}.tasks:visualize_task", f"{P}.config:VisualizeConfig", config="configs/visualize.yaml",
             summary="overlay PNGs of masks, and error maps against a prediction folder",
             smoke={"images": 1, **data_smoke}),
    ]
