"""Task schemas (cheap to import: no torch). Defaults are configs/<task>.yaml, presets configs/<task>/<name>.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom.config import option
from paperloom.contracts import COCO_PANOPTIC, PANOPTIC_SEGMENTATION

METRICS = ("pq", "miou", "ap")


def model_field(help: str = "panoptic model component (plugin:name)") -> Any:
    return option("coconut:baseline", help=help, component="model", contract=PANOPTIC_SEGMENTATION)


def dataset_field(help: str = "dataset component (plugin:name), built with the data.* options") -> Any:
    return option("coconut:panoptic", help=help, component="dataset", contract=COCO_PANOPTIC)


def evaluator_field() -> Any:
    return option("coconut:pq", help="evaluator component (plugin:name): evaluate(model or predictions, data, ctx)",
                  component="evaluator")


@dataclass
class DataConfig:
    """Where a COCONut-format split lives (detectron2 layout, or explicit files)."""

    root: str = option("", help="detectron2-style folder (datasets/coco): annotations/, panoptic_*/, images")
    splits: list[str] = option(["val"], help="named splits merged in order: s, b, l, xl, val, relabeled-val")
    json: str = option("", help="explicit panoptic JSON (overrides root/splits)")
    png_dir: str = option("", help="explicit folder of panoptic id PNGs (with json)")
    image_dir: str = option("", help="image folder(s), comma separated (added to the split's defaults)")
    cache_dir: str = option("", help="where the lazy index cache goes (default: .paperloom-cache next to the JSON)")
    limit: int = option(0, min=0, help="use only the first N images (0 = all)")
    size: int = option(0, min=0,
                       help="train-time resize to size x size (0 = native; images in a batch must then agree)")


@dataclass
class TrainConfig:
    """Train a panoptic model (forward(images) -> {sem, center, offset}) with a plain, resumable torch loop."""

    data: DataConfig = option(default_factory=lambda: DataConfig(splits=["s"]), help="the training split(s)")
    dataset: str = dataset_field()
    model: str = model_field("panoptic model component to train")
    model_args: dict[str, Any] = option({"width": 32}, help="keyword arguments for the model builder "
                                                            "(baseline: width, center_threshold, min_area)")
    steps: int = option(2000, min=1, help="optimizer steps")
    batch_size: int = option(8, min=1, help="images per step")
    lr: float = option(3e-3, min=0, help="AdamW peak learning rate (cosine decay to 0)")
    checkpoint_every: int = option(100, min=1, help="write checkpoints/last.pt every N steps (atomically)")
    log_every: int = option(20, min=1, help="log losses every N steps")
    num_workers: int = option(0, min=0, help="DataLoader worker processes")


@dataclass
class EvaluateConfig:
    """PQ / mIoU / AP of a prediction folder, or of a model run over the split."""

    data: DataConfig = option(default_factory=DataConfig, help="the ground-truth split(s)")
    dataset: str = dataset_field()
    evaluator: str = evaluator_field()
    predictions: str = option("", help="prediction JSON (COCO panoptic format); empty: run the model instead")
    predictions_dir: str = option("", help="folder of predicted id PNGs (with predictions)")
    model: str = model_field("model component used when no predictions are given")
    checkpoint: str = option("", help="model weights (.pt from coconut:train) when evaluating a model")
    metrics: list[str] = option(list(METRICS), help="pq and miou are always computed; ap adds mask/box AP")
    shard: str = option("0/1", help="evaluate images i, i+n, ... of i/n and write partial.json for `merge`; "
                                    "'auto' reads RANK/WORLD_SIZE or SLURM array variables")
    processes: int = option(2, min=1, help="worker processes over images (prediction folders)")
    strict: bool = option(False, help="inputs panopticapi evaluates although inconsistent (a PNG id missing from "
                          "segments_info, a listed segment missing from the PNG, an unknown category, duplicate "
                          "ids, an annotation without an image entry) are errors instead of counted warnings")


@dataclass
class MergeConfig:
    """Combine the partial.json of shard evaluations."""

    parts: list[str] = option([], help="partial.json files or run folders of shard evaluations (globs allowed)")


@dataclass
class ConvertConfig:
    """Panoptic labels to semantic PNGs, a COCO instance JSON or a boxes JSON."""

    data: DataConfig = option(default_factory=DataConfig, help="the split(s) to convert")
    to: str = option("semantic", help="semantic PNGs, instances JSON or boxes JSON",
                     choices=("semantic", "instances", "boxes"))
    output: str = option("", help="output folder (default: the run folder)")
    processes: int = option(2, min=1, help="worker processes over images (--executor ray: Ray tasks)")


@dataclass
class VisualizeConfig:
    """Overlays of the labels, and error maps against a prediction folder."""

    data: DataConfig = option(default_factory=DataConfig, help="the split(s) to draw")
    dataset: str = dataset_field()
    predictions: str = option("", help="prediction JSON for error maps (optional)")
    predictions_dir: str = option("", help="folder of predicted id PNGs")
    images: int = option(8, min=1, help="how many images to draw")
    alpha: float = option(0.55, min=0, max=1, help="mask opacity")


@dataclass
class DemoConfig:
    """Fine vs coarse labels of the same generated images: train one model on each, score both on fine labels."""

    dataset: str = dataset_field("dataset component (plugin:name) reading the generated splits")
    model: str = model_field("panoptic model component trained twice (fine and coarse labels)")
    model_args: dict[str, Any] = option({"width": 12}, help="keyword arguments for the model builder")
    evaluator: str = evaluator_field()
    n_train: int = option(240, min=1, help="generated training images")
    n_val: int = option(60, min=1, help="generated validation images (fine labels only)")
    size: int = option(48, min=8, help="image side in pixels")
    steps: int = option(300, min=1, help="training steps per model (fine and coarse)")
    batch_size: int = option(8, min=1, help="images per step")
    lr: float = option(4e-3, min=0, help="AdamW peak learning rate")
    checkpoint_every: int = option(50, min=1, help="write each stage's checkpoints/last.pt every N steps")
    processes: int = option(2, min=1, help="evaluation worker processes")
    visualize: int = option(4, min=0, help="overlay / error-map images written per model")
