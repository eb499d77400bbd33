"""The paperloom contract, part 2 of 2: what plugins declare and what their code receives.

Part 1 is `hookspecs.py` (the hooks that return these declarations). This module imports
nothing heavy: declarations are plain frozen dataclasses holding *lazy* references
("package.module:attribute") that the core imports only when a component is built or a task
runs. The `Protocol`s say what the referenced callables take and return.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# The kinds a config can compose by name (a field marked `option(component=KIND)`).
KINDS = ("model", "dataset", "evaluator")
CHECK_OPS = ("<", "<=", ">", ">=")
GPU_NEEDS = ("none", "optional", "required")


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Component:
    """A buildable piece other tasks can use by qualified name (``plugin:name``).

    ``builder`` is a lazy reference to ``builder(ctx, **kwargs)`` (see `ModelBuilder` & co.); it is
    called with ``defaults`` merged with the caller's keyword arguments. ``produces`` / ``consumes``
    are data contracts (`paperloom.contracts`, listed in docs/contracts.md); the core checks them
    when a config wires components together, before anything heavy is imported.
    ``loads_folder``: the builder takes ``path=FOLDER`` and loads a saved checkpoint; the core uses it
    when a config gives a folder where a model of a contract it ``produces`` is expected.
    ``hf_model_types`` names the Hugging Face ``model_type`` values the builder's module registers
    with the Auto classes on import, so a saved checkpoint of a plugin's own architecture loads from
    its folder like any other.
    """

    name: str
    kind: str
    builder: str
    summary: str = ""
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    loads_folder: bool = False
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
    `paperloom.config.option`). The task's default values are ``configs/<name>.yaml`` beside the
    plugin's declaration module, its presets ``configs/<name>/<preset>.yaml`` (``--config paper``).
    ``smoke`` holds dotted overrides that make the task tiny (used by the conformance kit and
    tests), ``verify`` the claims its default run must show. ``artifacts`` names what a finished run
    leaves for later tasks: a path in the run folder -> its data-contract tag (``{"model": "hf-checkpoint"}``);
    the core records each with its sha256 in ``run.json``, and a config field
    ``option(run_contract="hf-checkpoint")`` accepts such a run folder as input.
    """

    name: str
    run: str
    schema: str
    summary: str = ""
    smoke: Mapping[str, Any] = field(default_factory=dict)
    verify: tuple[Check, ...] = ()
    artifacts: Mapping[str, str] = field(default_factory=dict)


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
    """What a task (and every builder) receives besides its config; implemented by
    `paperloom.context.Run`, and by `paperloom.context.Stage` for one of several trainings in a run."""

    out: Path  # the run (or stage) folder: config.yaml, metrics.jsonl, metrics.json, run.log, checkpoints/
    plugin: str  # the plugin whose task runs
    task: str
    seed: int  # --seed
    device: str  # "cpu" or "cuda", resolved from --device
    resume: bool  # True under `core run --resume`: continue from checkpoint_dir
    smoke: bool  # True when the run uses the task's smoke overrides (tiny sizes)
    log: Any  # a logging.Logger writing to the console and run.log

    @property
    def checkpoint_dir(self) -> Path:
        """``out/checkpoints``: where resumable state lives (Lightning's last.ckpt, `paperloom.checkpoint`)."""

    def build(self, ref: str, **kwargs: Any) -> Any:
        """Build component ``ref`` (``plugin:name``, or a local checkpoint folder for models; pass
        ``contract=`` to pick the plugin that loads folders of that contract)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Append one JSON line to the run's ``metrics.jsonl`` (flushed, never half-written)."""

    def save_metrics(self, metrics: Mapping[str, float]) -> None:
        """Merge into the run's final flat ``metrics.json`` (written atomically)."""

    def progress(self, iterable: Iterable, total: int | None = None, description: str = "") -> Iterator:
        """Wrap a long loop in a progress bar (quiet when output is not a terminal)."""

    def map(self, fn: Any, items: Iterable, ids: Any = None, description: str = "", chunksize: int = 1,
            workers: int | None = None) -> list:
        """``[fn(item) for item in items]`` in order over ``--workers`` processes (or `workers`; a Ray cluster
        with ``--executor ray``), each item seeded from (seed, index); a failing item raises
        `paperloom.executor.MapError` naming it, finished results kept."""

    def imap(self, fn: Any, items: Iterable, total: int | None = None, description: str = "", chunksize: int = 8,
             workers: int | None = None, window: int = 64) -> Iterator:
        """`map` as a generator for long or lazy streams: results in item order with at most `window` chunks
        in flight, so memory stays flat (an evaluation over 358K images); failures raise after the last."""

    def stage(self, name: str, seed: int | None = None) -> RunContext:
        """A context for one of several trainings in this run: its own folder ``out/stages/<name>/`` (and so
        its own checkpoints), metrics logged as ``<name>/<metric>``, its own seed if given (builders called
        through it see it); everything else is the run's."""


class TaskFunction(Protocol):
    def __call__(self, cfg: Any, ctx: RunContext) -> Mapping[str, float] | None:
        """Run the task; returned floats are merged into ``metrics.json``."""


class ModelBuilder(Protocol):
    """``builder(ctx, **kwargs) -> torch.nn.Module``. A ``causal-lm`` model is a Hugging Face
    ``PreTrainedModel`` whose ``forward(input_ids, labels=...)`` returns ``.loss`` and ``.logits``."""

    def __call__(self, ctx: RunContext, **kwargs: Any) -> Any: ...


class DatasetBuilder(Protocol):
    """``builder(ctx, **kwargs) -> Dataset``: a map-style ``torch.utils.data.Dataset`` (or an iterable
    for streaming) whose items follow the contract the component ``produces`` (docs/contracts.md)."""

    def __call__(self, ctx: RunContext, **kwargs: Any) -> Any: ...


class Evaluator(Protocol):
    """What an evaluator builder returns: ``evaluate(model, data, ctx) -> {metric: float}``; ``data`` follows
    the contract the component ``consumes`` (or is None when the evaluator brings its own data)."""

    def __call__(self, model: Any, data: Any, ctx: RunContext) -> Mapping[str, float]: ...


class EvaluatorBuilder(Protocol):
    """``builder(ctx, **kwargs) -> Evaluator``."""

    def __call__(self, ctx: RunContext, **kwargs: Any) -> Evaluator: ...
