"""The paperloom contract, part 2 of 2: what plugins declare and what their code receives.

Part 1 is `hookspecs.py` (the hooks that return these declarations). This module imports
nothing heavy: declarations are plain frozen dataclasses holding *lazy* references
("package.module:attribute") that the core imports only when a component is built or a task
runs. The `Protocol`s say what the referenced callables take and return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

KINDS = ("model", "dataset", "trainer", "evaluator")
CHECK_OPS = ("<", "<=", ">", ">=")
GPU_NEEDS = ("none", "optional", "required")


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Component:
    """A buildable piece other tasks can use by qualified name (``plugin:name``).

    ``builder`` is a lazy reference to a callable (see `ModelBuilder` & co.); it is called with
    ``defaults`` merged with the caller's keyword arguments. ``produces`` / ``consumes`` are data
    contracts (free-form tags such as ``causal-lm``, ``preference-pairs``, ``coco-panoptic``,
    ``image-text-pairs``); the core checks them when a config wires components together, before
    anything heavy is imported. ``hf_model_types`` names the Hugging Face ``model_type`` values the
    builder's module registers with the Auto classes on import, so a saved checkpoint of a
    plugin's own architecture loads from its folder (``core:hf-causal-lm``) like any other.
    """

    name: str
    kind: str
    builder: str
    summary: str = ""
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    hf_model_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """One claim a task's run must show in its ``metrics.json`` (used by ``core verify``).

    Compares metric ``metric`` with a fixed ``value`` or with another metric ``other``:
    ``Check("inherited_val_loss", "<", other="random_val_loss")``.
    """

    metric: str
    op: str
    value: float | None = None
    other: str | None = None
    summary: str = ""


@dataclass(frozen=True)
class Task:
    """A named recipe, run as ``core run plugin:task``.

    ``run`` references ``fn(cfg, ctx) -> Mapping[str, float] | None`` (see `TaskFunction`);
    ``schema`` references a dataclass whose fields are the task's options (see
    `paperloom.config.option`); ``config`` is the default YAML file, relative to the plugin's
    package directory. ``smoke`` holds dotted overrides that make the task tiny (used by the
    conformance kit and tests), ``verify`` the claims its default run must show.
    """

    name: str
    run: str
    schema: str
    config: str | None = None
    summary: str = ""
    smoke: Mapping[str, Any] = field(default_factory=dict)
    verify: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Requirements:
    """What a plugin needs before it can run; ``core doctor`` checks it without importing it.

    ``packages`` are PEP 508 requirement strings (``"trl>=0.12"``); ``extras`` are optional ones
    that unlock more (say so in ``summary``); ``gpu`` is one of ``none | optional | required``.
    """

    packages: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    gpu: str = "none"
    memory_gb: float = 2.0


@dataclass(frozen=True)
class PluginInfo:
    """Who the plugin is: a one-line summary, the paper it implements, and what it needs."""

    summary: str
    paper: str = ""
    url: str = ""
    requires: Requirements = field(default_factory=Requirements)


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class RunContext(Protocol):
    """What a task receives besides its config (implemented by `paperloom.run.Run`)."""

    out: Path  # the run folder: config.yaml, metrics.jsonl, metrics.json, run.log, checkpoints/
    plugin: str
    task: str
    seed: int
    device: str  # "cpu" or "cuda", resolved from --device
    resume: bool  # True when `core run --resume`: continue from out/checkpoints/last.ckpt
    smoke: bool  # True when the run uses the task's smoke overrides (tiny sizes)
    log: Any  # a logging.Logger writing to the console and run.log

    def build(self, ref: str, **kwargs: Any) -> Any:
        """Build component ``ref`` (``plugin:name``, or a local checkpoint folder for models)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Append one JSON line to ``metrics.jsonl`` (flushed, never half-written)."""

    def save_metrics(self, metrics: Mapping[str, float]) -> None:
        """Write the final flat ``metrics.json`` atomically."""

    def progress(self, iterable: Any, total: int | None = None, description: str = "") -> Any:
        """Wrap a long loop in a progress bar (quiet when output is not a terminal)."""


class TaskFunction(Protocol):
    def __call__(self, cfg: Any, ctx: RunContext) -> Mapping[str, float] | None:
        """Run the task; returned floats are merged into ``metrics.json``."""


class ModelBuilder(Protocol):
    """``builder(**kwargs) -> torch.nn.Module``. A ``causal-lm`` model is a Hugging Face
    ``PreTrainedModel`` whose ``forward(input_ids, labels=...)`` returns ``.loss`` and ``.logits``."""

    def __call__(self, **kwargs: Any) -> Any: ...


class DatasetBuilder(Protocol):
    """``builder(**kwargs) -> Dataset``: a map-style ``torch.utils.data.Dataset`` (or an iterable
    for streaming) whose items follow the contract the component ``produces``."""

    def __call__(self, **kwargs: Any) -> Any: ...


class TrainerBuilder(Protocol):
    """``builder(**kwargs) -> fit`` where ``fit(model, train_data, val_data, ctx) -> metrics``."""

    def __call__(self, **kwargs: Any) -> Callable[..., Mapping[str, float]]: ...


class EvaluatorBuilder(Protocol):
    """``builder(**kwargs) -> evaluate`` where ``evaluate(model_or_predictions, data, ctx) -> metrics``."""

    def __call__(self, **kwargs: Any) -> Callable[..., Mapping[str, float]]: ...
