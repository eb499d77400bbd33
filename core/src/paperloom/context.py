"""The `RunContext` a task receives: `Run` for the run, `Stage` for one of several trainings in it.

Both implement every member of `interfaces.RunContext` explicitly. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import atomic_write_json
from .plugins import Registry, registry

CHECKPOINT_DIR = "checkpoints"


def load_ref(ref: str) -> Any:
    """Import ``package.module:attr.sub``."""
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or os.sep in value or Path(value).is_dir()


def is_main_process() -> bool:
    """False in the extra processes a multi-process strategy starts (they must not write run files)."""
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def number(v: Any) -> Any:
    """A float for JSON (tensors and numpy scalars included); non-finite values become strings."""
    try:
        v = float(v.item() if hasattr(v, "item") else v)
    except (TypeError, ValueError):
        return v
    return v if math.isfinite(v) else str(v)


def folder_loader(reg: Registry, contract: str | None = None) -> str:
    """The component that loads a model checkpoint folder (``Component.loads_folder``)."""
    loaders = reg.folder_loaders("model", contract)
    if not loaders:
        what = f"a {contract!r} model" if contract else "a model"
        raise UserError(
            f"no installed plugin loads {what} from a checkpoint folder; install the plugin that does "
            "(for Hugging Face causal LMs: pip install ./plugins/lm)"
        )
    return loaders[0]


def build_component(reg: Registry, ref: str, ctx: Any, kind: str | None = None, **kwargs: Any) -> Any:
    """Build ``ref`` (``plugin:name``; a bare name means the running plugin's): ``builder(ctx, **kwargs)``."""
    _, comp = reg.component(ref, kind, ctx.plugin)
    return load_ref(comp.builder)(ctx, **{**dict(comp.defaults), **kwargs})


@dataclass
class Run:
    """The context of one run (see `interfaces.RunContext` for each member)."""

    out: Path
    plugin: str
    task: str
    seed: int = 0
    device: str = "cpu"
    resume: bool = False
    smoke: bool = False
    registry: Registry | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("paperloom"))
    metrics: dict = field(default_factory=dict)
    workers: int = 1  # --workers: processes (or Ray CPUs) for ctx.map
    executor: str = "local"  # --executor: local | ray
    address: str | None = None  # --address: a running Ray cluster
    # Set by the conformance kit: every model built gets its trainable parameters recorded here.
    watch: list | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.out) / CHECKPOINT_DIR

    def build(self, ref: str, **kwargs: Any) -> Any:
        """Build a component by qualified name; a folder path builds the installed folder loader."""
        return self.build_for(self, ref, **kwargs)

    def build_for(self, ctx: Any, ref: str, **kwargs: Any) -> Any:
        """Build `ref` with `ctx` (this run or one of its stages) as the builder's context. A folder path is
        built by the plugin that loads folders of that `contract` (e.g. an image-text encoder's folder by the
        clip plugin, not by lm's causal-LM loader); `contract` is not passed on to builders."""
        reg = self.registry or registry()
        contract = kwargs.pop("contract", None)
        if looks_like_path(ref):
            kwargs["path"] = ref
            ref = folder_loader(reg, contract)
        built = build_component(reg, ref, ctx, **kwargs)
        if self.watch is not None and hasattr(built, "named_parameters"):
            snapshot = {n: p.detach().clone() for n, p in built.named_parameters() if p.requires_grad}
            self.watch.append((ref, built, snapshot))
        return built

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not is_main_process():
            return
        row = {k: number(v) for k, v in metrics.items()}
        if step is not None:
            row = {"step": step, **row}
        with open(Path(self.out) / "metrics.jsonl", "a") as f:  # one short line per write: appended whole
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def save_metrics(self, metrics: Mapping[str, float]) -> None:
        self.metrics.update({k: number(v) for k, v in metrics.items()})
        if is_main_process():
            atomic_write_json(Path(self.out) / "metrics.json", self.metrics)

    def progress(self, iterable: Iterable, total: int | None = None, description: str = "") -> Iterator:
        from rich.progress import track

        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        return iter(
            track(
                iterable,
                total=total,
                description=description or self.task,
                disable=not sys.stderr.isatty(),
                transient=True,
            )
        )

    def map(self, fn: Any, items: Iterable, ids: Any = None, description: str = "", chunksize: int = 1,
            workers: int | None = None, seed: int | None = None) -> list:
        from .executor import map_items

        return map_items(fn, items, workers=self.workers if workers is None else workers,
                         seed=self.seed if seed is None else seed, chunksize=chunksize, ids=ids,
                         progress=self.progress, description=description or self.task, backend=self.executor,
                         address=self.address)

    def imap(self, fn: Any, items: Iterable, total: int | None = None, description: str = "", chunksize: int = 8,
             workers: int | None = None, window: int = 64, seed: int | None = None) -> Iterator:
        from .executor import imap_items

        return imap_items(fn, items, workers=self.workers if workers is None else workers,
                          seed=self.seed if seed is None else seed, chunksize=chunksize, total=total,
                          progress=self.progress, description=description or self.task, backend=self.executor,
                          address=self.address, window=window)

    def stage(self, name: str, seed: int | None = None) -> Stage:
        return Stage(self, name, seed)


class Stage:
    """One of several trainings inside a run (e.g. a baseline and the paper's method): its own folder
    ``<run>/stages/<name>/`` for logs and ``checkpoints/`` (so they never overwrite each other's state and
    each resumes on its own); its metrics go to the run's metrics.jsonl as ``<name>/<metric>`` and are kept
    in ``curve`` for plots. Its seed is the run's unless given (e.g. one stage per seed); device, resume,
    smoke, log and progress are the run's; components it builds receive the stage as their context."""

    def __init__(self, run: Run | Stage, name: str, seed: int | None = None) -> None:
        self.run, self.name = run, name
        self.root: Run = run.root if isinstance(run, Stage) else run  # a stage of a stage maps through the run
        self.out = Path(run.out) / "stages" / name
        self.out.mkdir(parents=True, exist_ok=True)
        self.curve: list[dict] = []
        self.plugin, self.task, self.device = run.plugin, run.task, run.device
        self.seed = run.seed if seed is None else seed
        self.resume, self.smoke, self.log = run.resume, run.smoke, run.log

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def build(self, ref: str, **kwargs: Any) -> Any:
        return self.build_for(self, ref, **kwargs)

    def build_for(self, ctx: Any, ref: str, **kwargs: Any) -> Any:
        return self.run.build_for(ctx, ref, **kwargs)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.curve.append({"step": step, **{k: number(v) for k, v in metrics.items()}})
        self.run.log_metrics({f"{self.name}/{k}": v for k, v in metrics.items()}, step=step)

    def save_metrics(self, metrics: Mapping[str, float]) -> None:
        self.run.save_metrics({f"{self.name}/{k}": v for k, v in metrics.items()})

    def progress(self, iterable: Iterable, total: int | None = None, description: str = "") -> Iterator:
        return self.run.progress(iterable, total, description or self.name)

    def map(self, fn: Any, items: Iterable, ids: Any = None, description: str = "", chunksize: int = 1,
            workers: int | None = None) -> list:
        return self.root.map(fn, items, ids, description or self.name, chunksize, workers, self.seed)

    def imap(self, fn: Any, items: Iterable, total: int | None = None, description: str = "", chunksize: int = 8,
             workers: int | None = None, window: int = 64) -> Iterator:
        return self.root.imap(fn, items, total, description or self.name, chunksize, workers, window, self.seed)

    def stage(self, name: str, seed: int | None = None) -> Stage:
        return Stage(self, name, seed)
