"""Running a task: resolve its config, prepare the run folder, call it, record what it measured.

A run folder holds ``config.yaml`` (fully resolved), ``metrics.jsonl`` (one JSON object per
logged step), ``metrics.json`` (final flat floats), ``run.log``, ``checkpoints/`` and
``curves.png``. Everything is written atomically or append-only, so a killed run loses
nothing and ``--resume`` continues it.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as C
from .errors import UserError
from .io import atomic_write_json, atomic_write_text, read_jsonl
from .plugins import Plugin, Registry, registry

CHECKPOINT_DIR = "checkpoints"
RUN_DIR_ENV = "PAPERLOOM_RUN_DIR"


def load_ref(ref: str) -> Any:
    """Import ``package.module:attr.sub``."""
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or os.sep in value or Path(value).is_dir()


@dataclass
class Run:
    """The `RunContext` a task receives (see interfaces.RunContext for each member)."""

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

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def build(self, ref: str, **kwargs: Any) -> Any:
        """Build a component by qualified name; a folder path builds `core:hf-causal-lm`."""
        reg = self.registry or registry()
        if looks_like_path(ref):
            return build_component(reg, "core:hf-causal-lm", path=ref, **kwargs)
        return build_component(reg, ref, default_plugin=self.plugin, **kwargs)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not is_main_process():
            return
        row = (
            {"step": step, **{k: _num(v) for k, v in metrics.items()}}
            if step is not None
            else {k: _num(v) for k, v in metrics.items()}
        )
        with open(self.out / "metrics.jsonl", "a") as f:  # one short line per write: appended whole
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def save_metrics(self, metrics: Mapping[str, float]) -> None:
        self.metrics.update({k: _num(v) for k, v in metrics.items()})
        if not is_main_process():
            return
        atomic_write_json(self.out / "metrics.json", self.metrics)

    def progress(self, iterable: Iterable, total: int | None = None, description: str = "") -> Iterable:
        from rich.progress import track

        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        return track(
            iterable, total=total, description=description or self.task, disable=not sys.stderr.isatty(), transient=True
        )

    def stage(self, name: str) -> Stage:
        """A context for one of several trainings in this run (see `Stage`)."""
        return Stage(self, name)


class Stage:
    """One of several trainings inside a run (e.g. a baseline and the paper's method): its own folder
    ``<run>/stages/<name>/`` for Lightning logs and ``checkpoints/`` (so they never overwrite each other's
    last.ckpt, and each resumes on its own); its metrics go to the run's metrics.jsonl as ``<name>/<metric>``
    and are kept in ``curve`` for plots. Everything else is the parent run's."""

    def __init__(self, ctx: Any, name: str) -> None:
        self._ctx, self.name = ctx, name
        self.out = Path(ctx.out) / "stages" / name
        self.out.mkdir(parents=True, exist_ok=True)
        self.curve: list[dict] = []

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.curve.append({"step": step, **{k: _num(v) for k, v in metrics.items()}})
        self._ctx.log_metrics({f"{self.name}/{k}": v for k, v in metrics.items()}, step=step)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


def _num(v: Any) -> Any:
    try:
        v = float(v.item() if hasattr(v, "item") else v)
    except (TypeError, ValueError):
        return v
    return v if math.isfinite(v) else str(v)


def build_component(
    reg: Registry, ref: str, kind: str | None = None, default_plugin: str | None = None, **kwargs: Any
) -> Any:
    plugin, comp = reg.component(ref, kind, default_plugin)
    builder = load_ref(comp.builder)
    return builder(**{**dict(comp.defaults), **kwargs})


def check_components(reg: Registry, plugin: Plugin, cfg: Any) -> None:
    """Every field naming a component must exist, be of the right kind and produce the contract."""
    for path, value, meta in C.component_fields(cfg):
        if value in (None, ""):
            continue
        kind, contract = meta["component"], meta.get("contract")
        if kind == "model" and looks_like_path(value):
            folder = Path(value).expanduser()
            if not (folder / "config.json").is_file():
                raise UserError(
                    f"config: {path} = {value!r}: no checkpoint folder with config.json there; pass a folder "
                    "saved by save_pretrained, or a component name like core:gpt2"
                )
            continue
        try:
            _, comp = reg.component(value, kind, plugin.name)
        except UserError as exc:
            raise UserError(f"config: {path}: {exc}") from None
        if contract and contract not in comp.produces:
            raise UserError(
                f"config: {path} = {value!r} produces {list(comp.produces) or 'no declared contract'}, "
                f"but {plugin.name} needs {contract!r} here; choose a {kind} that produces {contract!r}"
            )


def resolve_task_config(
    reg: Registry,
    qualname: str,
    config_file: str | None = None,
    overrides: list[str] | tuple = (),
    smoke: bool = False,
    saved: Path | None = None,
) -> tuple[Plugin, Any, Any, Any]:
    plugin, task = reg.task(qualname)
    try:
        schema = load_ref(task.schema)
    except Exception as exc:
        raise UserError(f"{qualname}: cannot import its config schema {task.schema}: {exc}") from None
    default_file = saved if saved else (plugin.root / task.config if task.config and plugin.root else None)
    cfg, _ = C.resolve(
        schema, default_file, config_file, list(overrides), extra=dict(task.smoke) if smoke and not saved else None
    )
    check_components(reg, plugin, cfg)
    return plugin, task, schema, cfg


def new_run_dir(plugin: str, task: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{plugin}-{task}-{stamp}"
    out, i = base, 1
    while out.exists():
        out, i = Path(f"{base}-{i}"), i + 1
    return out


def _setup_logging(out: Path) -> logging.Logger:
    log = logging.getLogger("paperloom")
    log.setLevel(logging.INFO)
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fh = logging.FileHandler(out / "run.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(fh)
    log.addHandler(sh)
    log.propagate = False
    return log


def seed_everything(seed: int) -> None:
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass
    import torch

    torch.manual_seed(seed)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def execute(
    qualname: str,
    config_file: str | None = None,
    overrides: list[str] | tuple = (),
    out: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    device: str = "auto",
    smoke: bool = False,
    reg: Registry | None = None,
    plot: bool = True,
    threads: int = 0,
) -> tuple[Path, dict]:
    """Run `plugin:task` and return (run folder, final metrics). `threads` > 0 caps torch's CPU threads."""
    reg = reg or registry()
    plugin_name, _, task_name = qualname.partition(":")
    if not is_main_process():  # a rank started by Lightning's launcher, torchrun or accelerate
        folder = os.environ.get(RUN_DIR_ENV) or out
        if not folder:
            raise UserError("under torchrun / accelerate launch, pass --out DIR so every process uses one run folder")
        return _execute_worker(
            reg, qualname, config_file, overrides, Path(folder), resume, seed, device, smoke, threads
        )
    if resume and out is None:
        raise UserError("--resume needs --out DIR: the folder of the run to continue")
    out_dir = Path(out) if out else new_run_dir(plugin_name, task_name)
    saved = out_dir / "config.yaml"
    if resume and not saved.is_file():
        raise UserError(
            f"--resume: {out_dir} holds no config.yaml, so there is no run to continue; drop --resume to start one"
        )
    if not resume and out_dir.exists() and any(out_dir.iterdir()):
        raise UserError(f"{out_dir} already holds files; pass --resume to continue that run, or choose another --out")
    plugin, task, schema, cfg = resolve_task_config(
        reg, qualname, None if resume else config_file, overrides, smoke, saved if resume else None
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    import yaml

    atomic_write_text(saved, yaml.safe_dump(C.to_dict(cfg), sort_keys=False))
    log = _setup_logging(out_dir)
    log.info(f"{'resuming' if resume else 'running'} {qualname} -> {out_dir}")
    os.environ[RUN_DIR_ENV] = str(out_dir.resolve())  # processes a DDP launcher starts find the same folder
    fn = load_ref(task.run)
    ctx = _start(out_dir, plugin.name, task.name, seed, device, resume, smoke, reg, log, threads)
    if resume and (out_dir / "metrics.json").is_file():
        ctx.metrics = json.loads((out_dir / "metrics.json").read_text())
    result = fn(cfg, ctx) or {}
    ctx.save_metrics(dict(result))
    if plot:
        plot_curves(out_dir / "metrics.jsonl", out_dir / "curves.png", title=qualname)
    reg.hook().paperloom_run_finished(plugin=plugin.name, task=task.name, out=str(out_dir), metrics=dict(ctx.metrics))
    return out_dir, ctx.metrics


def _start(
    out_dir: Path,
    plugin: str,
    task: str,
    seed: int,
    device: str,
    resume: bool,
    smoke: bool,
    reg: Registry,
    log: logging.Logger,
    threads: int,
) -> Run:
    """Seed, cap threads, resolve the device: the context every process of a run starts from."""
    seed_everything(seed)
    if threads > 0:  # on a busy 2-core machine, 2 OpenMP threads can be 4-20x slower than 1
        import torch

        torch.set_num_threads(threads)
    return Run(
        out=out_dir,
        plugin=plugin,
        task=task,
        seed=seed,
        device=resolve_device(device),
        resume=resume,
        smoke=smoke,
        registry=reg,
        log=log,
    )


def _execute_worker(
    reg: Registry,
    qualname: str,
    config_file: str | None,
    overrides: Any,
    out_dir: Path,
    resume: bool,
    seed: int,
    device: str,
    smoke: bool,
    threads: int = 0,
) -> tuple[Path, dict]:
    """A non-zero rank re-entered through the CLI by a multi-process launcher: run, write nothing."""
    deadline = time.time() + 300
    while not (out_dir / "config.yaml").is_file():  # rank 0 resolves and writes the config first
        if time.time() > deadline:
            raise UserError(f"rank 0 wrote no {out_dir / 'config.yaml'} within 5 minutes; is it running?")
        time.sleep(0.2)
    plugin, task, _, cfg = resolve_task_config(reg, qualname, None, overrides, smoke, out_dir / "config.yaml")
    ctx = _start(
        out_dir,
        plugin.name,
        task.name,
        seed,
        device,
        resume,
        smoke,
        reg,
        logging.getLogger("paperloom.worker"),
        threads,
    )
    load_ref(task.run)(cfg, ctx)
    return out_dir, {}


def is_main_process() -> bool:
    """False in the extra processes a multi-process strategy starts (they must not write run files)."""
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK"))


HEADLINE = re.compile(r"loss|acc|reward|kl|ppl|pq|miou|ap|psnr|recall|win")


def plot_curves(jsonl: Path, png: Path, title: str = "") -> Path | None:
    """Panels of the logged curves against step (Agg backend, no display needed). Stage metrics
    (``<stage>/<metric>``) share one panel per metric, a line per stage; headline metrics (loss, accuracy,
    reward, ...) come first, bookkeeping (learning rate, epoch) last, at most 9 panels."""
    rows = [r for r in read_jsonl(jsonl) if r.get("step") is not None]
    series: dict[str, dict[str, list]] = {}  # metric -> stage -> [(step, value)]
    for r in rows:
        for k, v in r.items():
            if k in ("step", "epoch") or not isinstance(v, (int, float)):
                continue
            stage, _, metric = k.rpartition("/")
            series.setdefault(metric, {}).setdefault(stage, []).append((r["step"], v))
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def rank(m: str) -> tuple:
        return (not HEADLINE.search(m.lower()), "epoch" in m or "learning_rate" in m, m)

    metrics = sorted(series, key=rank)[:9]
    cols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for stage, pts in sorted(series[metric].items()):
            pts = sorted(pts, key=lambda p: p[0])  # a resumed run or a late step-0 entry must not zigzag
            marker = "." if len(pts) < 40 else None
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=stage or None)
        if len(series[metric]) > 1:
            ax.legend(fontsize=7)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = png.with_name(f".{png.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)
    return png


def verify(reg: Registry, qualname: str, metrics: Mapping[str, Any]) -> list[tuple[Any, bool, str]]:
    """Evaluate a task's declared checks against `metrics`: (check, passed, message) each."""
    _, task = reg.task(qualname)
    ops = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
    results = []
    for check in task.verify:
        left = metrics.get(check.metric)
        right = metrics.get(check.other) if check.other else check.value
        rname = check.other or repr(check.value)
        if not isinstance(left, (int, float)) or not isinstance(right, (int, float)):
            missing = check.metric if not isinstance(left, (int, float)) else check.other
            results.append((check, False, f"metric {missing!r} missing from metrics.json"))
            continue
        ok = ops[check.op](left, right)
        results.append((check, ok, f"{check.metric} = {left:.4g} {check.op} {rname} = {right:.4g}"))
    return results
