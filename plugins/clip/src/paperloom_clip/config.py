"""Task schemas (plain dataclasses, no torch). Defaults: configs/<task>.yaml; presets: configs/<task>/<name>.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperloom.config import option
from paperloom.contracts import IMAGE_TEXT_ENCODER, IMAGE_TEXT_PAIRS
from paperloom.schemas import OptimConfig, TrainerConfig

STRATEGIES = ("clip", "slip", "flip", "dataaug")
FORMATS = ("auto", "csv", "tsv", "jsonl", "wds")


def model_field(default: str = "clip:model", help: str = "CLIP model component (plugin:name) or a checkpoint "
                                                             "folder (HF CLIPModel or clip:train's model/)") -> Any:
    return option(default, help=help, component="model", contract=IMAGE_TEXT_ENCODER)


def dataset_field() -> Any:
    return option("clip:pairs", help="image-text pairs dataset component, built with the data.* options",
                  component="dataset", contract=IMAGE_TEXT_PAIRS)


@dataclass
class DataConfig:
    """Image-text pairs on disk: a captions file (CSV/TSV) beside an image folder, a JSONL file, or webdataset
    tar shards (brace patterns allowed: shards-{000000..000009}.tar)."""

    path: str = option("", help="captions .csv/.tsv, .jsonl, or .tar shard(s) (comma separated or {a..b})")
    format: str = option("auto", choices=FORMATS, help="auto: from the file extension")
    image_root: str = option("", help="folder the image paths are relative to (default: the captions file's)")
    img_key: str = option("filepath", help="CSV/TSV/JSONL column of the image path (open_clip: --csv-img-key)")
    caption_key: str = option("title", help="CSV/TSV/JSONL column of the caption (open_clip: --csv-caption-key)")
    image_size: int = option(0, min=0, help="resize + center-crop side (0: the model's image size)")
    limit: int = option(0, min=0, help="use only the first N pairs (0: all)")


@dataclass
class AugConfig:
    """CLIP+DataAug's strong augmentation (paper Sec. 3), each part configurable."""

    crop_min: float = option(0.5, min=0.01, max=1, help="RandomResizedCrop scale lower bound")
    flip: bool = option(True, help="random horizontal flip")
    jitter: float = option(0.4, min=0, help="colour jitter strength (brightness, contrast, saturation)")
    jitter_p: float = option(0.8, min=0, max=1, help="probability of colour jitter")
    grayscale_p: float = option(0.2, min=0, max=1, help="probability of grayscale")
    randaugment_n: int = option(2, min=0, help="RandAugment operations per image (0: off)")
    randaugment_m: int = option(9, min=0, max=30, help="RandAugment magnitude")


@dataclass
class StrategyConfig:
    """Which of the paper's four strategies, and its knobs."""

    name: str = option("clip", choices=STRATEGIES, help="clip | slip | flip | dataaug")
    base_crop_min: float = option(0.9, min=0.01, max=1, help="CLIP/SLIP/FLIP image crop scale lower bound "
                                                                "(1: no crop)")
    local_loss: bool = option(False, help="each rank scores only its own rows against the gathered batch")
    flip_ratio: float = option(0.5, min=0, max=0.95, help="FLIP: fraction of patch tokens dropped in training")
    unmasked_steps: int = option(0, min=0, help="FLIP: train the last N steps without masking")
    ssl_weight: float = option(1.0, min=0, help="SLIP: total = CLIP + ssl_weight * SimCLR")
    ssl_tau: float = option(0.1, min=1e-4, help="SLIP: SimCLR temperature")
    ssl_mlp_dim: int = option(4096, min=1, help="SLIP: hidden width of the SSL head")
    ssl_out_dim: int = option(256, min=1, help="SLIP: output width of the SSL head")
    ssl_crop_min: float = option(0.08, min=0.01, max=1, help="SLIP: SimCLR crop scale lower bound")
    aug: AugConfig = option(default_factory=AugConfig, help="dataaug: the strong augmentation")


@dataclass
class TrainConfig:
    """Train a CLIP model on image-text pairs with one strategy (Lightning; resumable; any number of devices)."""

    model: str = model_field()
    model_args: dict[str, Any] = option({"arch": "ViT-Ti-4"}, help="builder arguments: arch (ViT-Ti-4, ViT-S-16, "
                                                                    "ViT-B-32, RN-Ti, RN50 or a JSON), vision, text")
    dataset: str = dataset_field()
    data: DataConfig = option(default_factory=DataConfig, help="the training pairs")
    tokenizer: str = option("train", help="'train': a BPE trained on the captions; or a tokenizer folder")
    vocab_size: int = option(1024, min=16, help="vocabulary of a trained tokenizer")
    strategy: StrategyConfig = option(default_factory=StrategyConfig, help="CLIP / SLIP / FLIP / DataAug")
    optim: OptimConfig = option(default_factory=OptimConfig, help="AdamW + warmup/cosine")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="Lightning trainer")


@dataclass
class FilterConfig:
    """Score every pair with a CLIP model, keep the top keep_fraction (data-quality filtering, paper Sec. 4.1)."""

    scorer: str = model_field("", "scoring model: a CLIP checkpoint folder or a clip model component")
    scorer_args: dict[str, Any] = option({}, help="builder arguments of a scorer component")
    dataset: str = dataset_field()
    data: DataConfig = option(default_factory=DataConfig, help="the pairs to score")
    keep_fraction: float = option(0.3, min=0.0001, max=1, help="fraction of pairs kept (the top by score)")
    batch_size: int = option(64, min=1, help="pairs per scoring batch")
    processes: int = option(1, min=1, help="worker processes scoring spans of span_batches batches (ctx.imap; "
                                           "--executor ray: Ray tasks); shards are read in one process")
    span_batches: int = option(16, min=1, help="batches per worker item (the scorer is sent once per item)")
    bins: int = option(50, min=2, help="histogram bins")
    write_shards: bool = option(True, help="tar inputs: also write the kept pairs as new webdataset shards")


@dataclass
class EvaluateConfig:
    """Zero-shot classification, retrieval and a linear probe of a CLIP model (whichever inputs are given)."""

    model: str = model_field("", "CLIP checkpoint folder (HF CLIPModel or clip:train's model/) or a component")
    model_args: dict[str, Any] = option({}, help="builder arguments of a model component")
    zero_shot: str = option("", help="ImageFolder layout (one subfolder per class) for zero-shot accuracy")
    templates: list[str] = option(["a photo of a {}."], help="prompt templates; {} is the class name")
    dataset: str = dataset_field()
    retrieval: DataConfig = option(default_factory=DataConfig, help="pairs for image<->text retrieval R@1/5/10")
    probe_train: str = option("", help="ImageFolder layout: linear-probe training images")
    probe_test: str = option("", help="ImageFolder layout: linear-probe test images")
    probe_c: float = option(1.0, min=1e-6, help="inverse L2 strength of the logistic regression")
    batch_size: int = option(64, min=1, help="images per batch")


@dataclass
class DemoConfig:
    """Generated coloured-shape pairs: quality vs quantity, the four strategies, ViT vs ResNet at two data sizes."""

    model: str = model_field("clip:model", "ViT CLIP component")
    model_args: dict[str, Any] = option({"arch": "ViT-Ti-4"}, help="ViT builder arguments")
    resnet: str = model_field("clip:model", "ResNet CLIP component")
    resnet_args: dict[str, Any] = option({"arch": "RN-Ti"}, help="ResNet builder arguments")
    image_size: int = option(32, min=8, help="generated image side")
    pool: int = option(3000, min=8, help="generated training pairs in the noisy pool")
    noise: float = option(0.6, min=0, max=1, help="fraction of the pool with a wrong caption")
    clean: int = option(600, min=4, help="the clean subset: this many correctly captioned pairs of the pool")
    small: int = option(200, min=4, help="the smaller data size of the ViT vs ResNet comparison (clean pairs)")
    test_per_class: int = option(20, min=1, help="held-out test images per class (zero-shot, ImageFolder on disk)")
    vocab_size: int = option(256, min=16, help="BPE vocabulary trained on the captions")
    seeds: list[int] = option([0, 1, 2], help="seeds of the quality-vs-quantity comparison")
    parts: list[str] = option(["quality", "strategies", "architectures"], help="which comparisons to run")
    strategies: list[str] = option(list(STRATEGIES), help="strategies compared (on the clean subset)")
    margin_se: float = option(3.0, min=0, help="verify: clean - noisy must exceed margin_se standard errors")
    templates: list[str] = option(["a {}.", "a photo of a {}.", "there is a {} in the picture."],
                                  help="zero-shot prompt templates")
    strategy: StrategyConfig = option(default_factory=StrategyConfig, help="knobs of every strategy")
    optim: OptimConfig = option(default_factory=OptimConfig, help="AdamW + warmup/cosine")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="every training: steps, batch size")
