"""Task config schemas (cheap to import: no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from paperloom.config import option


@dataclass
class DataConfig:
    """Where a COCONut-format split lives (detectron2 layout, or explicit files)."""

    root: str = option("", help="detectron2-style folder (datasets/coco): annotations/, panoptic_*/, images")
    splits: list[str] = option(["val"], help="named splits merged in order: s, b, l, xl, val, relabeled-val")
    json: str = option("", help="explicit panoptic JSON (overrides root/splits)")
    png_dir: str = option("", help="explicit folder of panoptic id PNGs (with json)")
    image_dir: str = option("", help="image folder(s), comma separated (added to the split's defaults)")
    cache_dir: str = option("", help="where the lazy index cache goes (default: .paperloom-cache next to the JSON)")
    limit: int = option(0, help="use only the first N images (0 = all)")
    size: int = option(0, help="train-time resize to size x size (0 = native; images in a batch must then agree)")


@dataclass
class TrainConfig:
    data: DataConfig = option(default_factory=lambda: DataConfig(splits=["s"]))
    model: str = option("coconut:baseline", help="panoptic model component to train", component="model",
                        contract="panoptic-segmentation")
    width: int = option(32, help="baseline channel width")
    steps: int = option(2000, help="optimizer steps")
    batch_size: int = option(8, help="images per step")
    lr: float = option(3e-3, help="AdamW peak learning rate (cosine decay to 0)")
    checkpoint_every: int = option(100, help="write checkpoints/last.pt every N steps (atomically)")
    log_every: int = option(20, help="log losses every N steps")
    num_workers: int = option(0, help="DataLoader worker processes")
    threads: int = option(0, help="torch CPU threads (0 = torch default)")


@dataclass
class EvaluateConfig:
    data: DataConfig = option(default_factory=DataConfig)
    predictions: str = option("", help="prediction JSON (COCO panoptic format); empty: run the model instead")
    predictions_dir: str = option("", help="folder of predicted id PNGs (with predictions)")
    model: str = option("coconut:baseline", help="model component used when no predictions are given",
                        component="model", contract="panoptic-segmentation")
    checkpoint: str = option("", help="model weights (.pt from coconut:train) when evaluating a model")
    metrics: list[str] = option(["pq", "miou", "ap"], help="pq and miou are always computed; ap adds mask/box AP")
    shard: str = option("0/1", help="evaluate images i, i+n, ... of i/n and write partial.json for `merge`; "
                                    "'auto' reads RANK/WORLD_SIZE or SLURM array variables")
    processes: int = option(2, help="worker processes over images (prediction folders)")


@dataclass
class MergeConfig:
    parts: list[str] = option([], help="partial.json files or run folders of shard evaluations (globs allowed)")


@dataclass
class ConvertConfig:
    data: DataConfig = option(default_factory=DataConfig)
    to: str = option("semantic", help="semantic PNGs, instances JSON or boxes JSON",
                     choices=("semantic", "instances", "boxes"))
    output: str = option("", help="output folder (default: the run folder)")


@dataclass
class VisualizeConfig:
    data: DataConfig = option(default_factory=DataConfig)
    predictions: str = option("", help="prediction JSON for error maps (optional)")
    predictions_dir: str = option("", help="folder of predicted id PNGs")
    images: int = option(8, help="how many images to draw")
    alpha: float = option(0.55, help="mask opacity")


@dataclass
class DemoConfig:
    n_train: int = option(240, help="generated training images")
    n_val: int = option(60, help="generated validation images (fine labels only)")
    size: int = option(48, help="image side in pixels")
    steps: int = option(300, help="training steps per model (fine and coarse)")
    batch_size: int = option(8, help="images per step")
    lr: float = option(4e-3, help="AdamW peak learning rate")
    width: int = option(12, help="baseline channel width")
    threads: int = option(1, help="torch CPU threads (0 = default); 1 avoids OpenMP spin-waits on busy shared cores")
    processes: int = option(2, help="evaluation worker processes")
    visualize: int = option(4, help="overlay / error-map images written per model")
