"""Running a task: resolve its config, prepare the run folder, call it, record what it measured.

A run folder holds ``config.yaml`` (fully resolved), ``metrics.jsonl`` (one JSON object per
logged step), ``metrics.json`` (final flat floats), ``run.log``, ``checkpoints/`` and
``curves.png``. Everything is written atomically or append-only, so a killed run loses
nothing and ``--resume`` continues it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import config as C
from . import provenance
from .context import Run, folder_loader, is_main_process, load_ref, looks_like_path
from .errors import UserError
from .io import atomic_write_text
from .plugins import Plugin, Registry, registry
from .provenance import alive as _alive

RUN_DIR_ENV = "PAPERLOOM_RUN_DIR"


@dataclass
class RunOptions:
    """How to run a task: everything `core run` takes besides the task's name."""

    config: str | None = None  # a preset name (configs/<task>/<name>.yaml) or a YAML file
    overrides: list[str] = field(default_factory=list)  # --set key=value
    out: str | Path | None = None  # the run folder (default: runs/<plugin>-<task>-<time>)
    resume: bool = False
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    smoke: bool = False  # apply the task's smoke overrides
    threads: int = 0  # > 0 caps torch's CPU threads
    workers: int = 1  # processes (or Ray CPUs) for ctx.map
    executor: str = "local"  # ctx.map backend: local | ray
    address: str | None = None  # a running Ray cluster (ray executor)
    plot: bool = True  # draw curves.png at the end
    watch: list | None = None  # the conformance kit's record of built models (see context.Run)


def check_run_inputs(cfg: Any) -> dict[str, dict]:
    """Every field naming a previous run folder: finished, with an intact artifact of its contract."""
    from .provenance import check_input

    return {
        path: check_input(value, meta["run_contract"], f"config: {path}")
        for path, value, meta in C.component_fields(cfg, key="run_contract")
        if value not in (None, "")
    }


def check_components(reg: Registry, plugin: Plugin, cfg: Any) -> None:
    """Every field naming a component must exist, be of the right kind and produce the contract."""
    for path, value, meta in C.component_fields(cfg):
        if isinstance(value, (list, tuple)):  # a list of components (e.g. evaluators)
            for v in value:
                _check_one(reg, plugin, path, v, meta)
        elif value not in (None, ""):
            _check_one(reg, plugin, path, value, meta)


def _check_one(reg: Registry, plugin: Plugin, path: str, value: str, meta: dict) -> None:
    kind, contract = meta["component"], meta.get("contract")
    if kind == "model" and looks_like_path(value):
        folder = Path(value).expanduser()
        if not (folder / "config.json").is_file():
            raise UserError(
                f"config: {path} = {value!r}: no checkpoint folder with config.json there; pass a folder "
                "saved by save_pretrained, or a component name like lm:gpt2"
            )
        try:
            folder_loader(reg, contract)
        except UserError as exc:
            raise UserError(f"config: {path} = {value!r}: {exc}") from None
        return
    try:
        _, comp = reg.component(value, kind, plugin.name)
    except UserError as exc:
        raise UserError(f"config: {path}: {exc}") from None
    if kind == "evaluator" and contract:  # an evaluator must read what the task hands it
        if contract not in comp.consumes:
            raise UserError(
                f"config: {path} = {value!r} consumes {list(comp.consumes) or 'no declared contract'}, but "
                f"{plugin.name} gives it {contract!r}; choose an evaluator that consumes {contract!r}"
            )
        return
    if contract and contract not in comp.produces:
        raise UserError(
            f"config: {path} = {value!r} produces {list(comp.produces) or 'no declared contract'}, "
            f"but {plugin.name} needs {contract!r} here; choose a {kind} that produces {contract!r}"
        )


def config_path(plugin: Plugin, task: str, value: str) -> Path:
    """``--config`` as a preset name (``paper`` -> configs/<task>/paper.yaml) or a YAML file path."""
    presets = plugin.presets(task)
    if value in presets:
        return presets[value]
    if looks_like_path(value) or value.endswith((".yaml", ".yml")) or Path(value).is_file():
        return Path(value)
    from .errors import suggest

    raise UserError(
        f"--config {value!r} is neither a file nor a preset of {plugin.name}:{task}{suggest(value, presets)}; "
        f"`core info {plugin.name}:{task}` lists the presets"
    )


def resolve_task_config(
    reg: Registry,
    qualname: str,
    config_file: str | None = None,
    overrides: list[str] | tuple = (),
    smoke: bool = False,
    saved: Path | None = None,
) -> tuple[Plugin, Any, Any, Any]:
    """(plugin, task, schema, cfg): defaults <- --config <- smoke <- --set, validated; or a saved run's config."""
    plugin, task = reg.task(qualname)
    try:
        schema = load_ref(task.schema)
    except Exception as exc:
        raise UserError(f"{qualname}: cannot import its config schema {task.schema}: {exc}") from None
    default_file = saved if saved else plugin.config_file(task.name)
    user_file = str(config_path(plugin, task.name, config_file)) if config_file else None
    extra = dict(task.smoke) if smoke and not saved else None
    cfg, _ = C.resolve(schema, default_file, user_file, list(overrides), extra=extra)
    check_components(reg, plugin, cfg)
    check_run_inputs(cfg)
    return plugin, task, schema, cfg


def new_run_dir(plugin: str, task: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{plugin}-{task}-{stamp}"
    out, i = base, 1
    while out.exists():
        out, i = Path(f"{base}-{i}"), i + 1
    return out


# Libraries whose banners, tips and warnings belong in run.log, not on the console.
THIRD_PARTY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "transformers",
                       "trl", "accelerate", "datasets", "py.warnings")


def _setup_logging(out: Path) -> logging.Logger:
    log = logging.getLogger("paperloom")
    log.setLevel(logging.INFO)
    _close_handlers(log)
    fh = logging.FileHandler(out / "run.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(fh)
    log.addHandler(sh)
    log.propagate = False
    logging.captureWarnings(True)  # warnings.warn(...) -> the py.warnings logger -> run.log only
    quiet_third_party()
    return log


def _close_handlers(logger: logging.Logger) -> None:
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()


def quiet_third_party() -> None:
    """Send third-party loggers to run.log only. Lightning adds a console handler when it is imported,
    so the Lightning adapter calls this again once Lightning is loaded."""
    files = [h for h in logging.getLogger("paperloom").handlers if isinstance(h, logging.FileHandler)]
    for name in THIRD_PARTY_LOGGERS:
        lg = logging.getLogger(name)
        lg.handlers = list(files)
        lg.propagate = False


def _holder(lock: Path) -> int:
    """The pid in a lock file when that process still runs, else 0."""
    try:
        pid = int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0
    return pid if pid and pid != os.getpid() and _alive(pid) else 0


def _check_holder(out_dir: Path) -> None:
    pid = _holder(out_dir / ".lock")
    if pid:
        msg = f"{out_dir} is in use by another run (pid {pid}); wait for it to finish or choose another --out"
        raise UserError(msg)


def _lock(out_dir: Path) -> Path:
    """Hold ``out_dir/.lock`` (our pid) for the whole run; a live holder is an error, a dead one's lock is stale."""
    lock = out_dir / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            _check_holder(out_dir)
            lock.unlink(missing_ok=True)  # stale: its run was killed
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return lock
    raise UserError(f"could not lock {out_dir}; remove {lock} if no run uses the folder")




def _durable(out_dir: Path) -> bool:
    """Has the run written anything a user could want back (checkpoints, logged metrics)?"""
    return any(out_dir.glob("**/checkpoints/*")) or (out_dir / "metrics.jsonl").is_file()


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch RNGs (whichever are installed) from one seed."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _start(out_dir: Path, plugin: str, task: str, opts: RunOptions, reg: Registry, log: logging.Logger) -> Run:
    """Seed, cap threads, resolve the device: the context every process of a run starts from."""
    seed_everything(opts.seed)
    if opts.threads > 0:  # on a busy 2-core machine, 2 OpenMP threads can be 4-20x slower than 1
        import torch

        torch.set_num_threads(opts.threads)
    return Run(
        out=out_dir,
        plugin=plugin,
        task=task,
        seed=opts.seed,
        device=resolve_device(opts.device),
        resume=opts.resume,
        smoke=opts.smoke,
        registry=reg,
        log=log,
        workers=max(1, opts.workers),
        executor=opts.executor,
        address=opts.address,
        watch=opts.watch,
    )


def execute(qualname: str, opts: RunOptions | None = None, reg: Registry | None = None, **kw: Any) -> tuple[Path, dict]:
    """Run ``plugin:task`` and return (run folder, final metrics); ``kw`` are `RunOptions` fields."""
    opts = replace(opts or RunOptions(), **kw)
    reg = reg or registry()
    plugin_name, _, task_name = qualname.partition(":")
    if not is_main_process():  # a rank started by Lightning's launcher, torchrun or accelerate
        folder = os.environ.get(RUN_DIR_ENV) or opts.out
        if not folder:
            raise UserError("under torchrun / accelerate launch, pass --out DIR so every process uses one run folder")
        return _execute_worker(reg, qualname, Path(folder), opts)
    if opts.resume and opts.out is None:
        raise UserError("--resume needs --out DIR: the folder of the run to continue")
    out_dir = Path(opts.out) if opts.out else new_run_dir(plugin_name, task_name)
    saved = out_dir / "config.yaml"
    if opts.resume and not saved.is_file():
        raise UserError(
            f"--resume: {out_dir} holds no config.yaml, so there is no run to continue; drop --resume to start one"
        )
    _check_holder(out_dir)
    if not opts.resume and out_dir.exists() and any(p.name != ".lock" for p in out_dir.iterdir()):
        raise UserError(f"{out_dir} already holds files; pass --resume to continue that run, or choose another --out")
    plugin, task, _, cfg = resolve_task_config(  # every input is validated before the folder is made
        reg,
        qualname,
        None if opts.resume else opts.config,
        opts.overrides,
        opts.smoke,
        saved if opts.resume else None,
    )
    fresh = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(out_dir)
    try:
        return _run(reg, qualname, plugin, task, cfg, out_dir, opts, fresh and not opts.resume)
    finally:
        lock.unlink(missing_ok=True)


def _run(reg: Registry, qualname: str, plugin: Plugin, task: Any, cfg: Any, out_dir: Path, opts: RunOptions,
         fresh: bool) -> tuple[Path, dict]:
    import yaml

    saved = out_dir / "config.yaml"
    if not opts.resume and any(p.name != ".lock" for p in out_dir.iterdir()):  # another run got here first
        raise UserError(f"{out_dir} already holds files; pass --resume to continue that run, or choose another --out")
    atomic_write_text(saved, yaml.safe_dump(C.to_dict(cfg), sort_keys=False))
    log = _setup_logging(out_dir)
    log.info(f"{'resuming' if opts.resume else 'running'} {qualname} -> {out_dir}")
    os.environ[RUN_DIR_ENV] = str(out_dir.resolve())  # processes a DDP launcher starts find the same folder
    fn = load_ref(task.run)
    ctx = _start(out_dir, plugin.name, task.name, opts, reg, log)
    manifest = provenance.start(out_dir, plugin, task, ctx.seed, ctx.device, opts.resume)
    inputs = check_run_inputs(cfg)
    if opts.resume and (out_dir / "metrics.json").is_file():
        ctx.metrics = json.loads((out_dir / "metrics.json").read_text())
    try:
        result = fn(cfg, ctx) or {}
    except UserError:
        if fresh and not _durable(out_dir):  # bad input found by the task: leave no half-made folder behind
            _close_handlers(log)
            for name in THIRD_PARTY_LOGGERS:
                logging.getLogger(name).handlers = []
            import shutil

            shutil.rmtree(out_dir, ignore_errors=True)
        else:
            provenance.finish(out_dir, manifest, "failed", inputs=inputs)
        raise
    except BaseException:
        provenance.finish(out_dir, manifest, "failed", inputs=inputs)
        raise
    ctx.save_metrics(dict(result))
    provenance.finish(out_dir, manifest, "finished", task.artifacts, inputs)
    if opts.plot:
        from .plots import plot_curves

        first = [c.metric for c in task.verify] + [c.other for c in task.verify if c.other]
        plot_curves(out_dir / "metrics.jsonl", out_dir / "curves.png", title=qualname, first=first)
    reg.hook().paperloom_run_finished(plugin=plugin.name, task=task.name, out=str(out_dir), metrics=dict(ctx.metrics))
    _leave_process_group()
    return out_dir, ctx.metrics


def _execute_worker(reg: Registry, qualname: str, out_dir: Path, opts: RunOptions) -> tuple[Path, dict]:
    """A non-zero rank re-entered through the CLI by a multi-process launcher: run, write nothing."""
    deadline = time.time() + 300
    while not (out_dir / "config.yaml").is_file():  # rank 0 resolves and writes the config first
        if time.time() > deadline:
            raise UserError(f"rank 0 wrote no {out_dir / 'config.yaml'} within 5 minutes; is it running?")
        time.sleep(0.2)
    plugin, task, _, cfg = resolve_task_config(reg, qualname, None, opts.overrides, opts.smoke, out_dir / "config.yaml")
    ctx = _start(out_dir, plugin.name, task.name, opts, reg, logging.getLogger("paperloom.worker"))
    load_ref(task.run)(cfg, ctx)
    _leave_process_group()
    return out_dir, {}


def _leave_process_group() -> None:
    """Every rank waits here until all have finished the task, then the group closes together: a rank that
    exits while rank 0 still evaluates tore gloo down under it (SIGABRT, 'terminate called without an active
    exception', seen on a loaded CI machine)."""
    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
