"""Hugging Face plumbing: local checkpoint folders (load, save, plugin model types) and the bridge from
HF / trl ``Trainer``s to the run folder (metrics.jsonl, resume from the newest checkpoint, quiet consoles)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a hub at run time

from transformers import TrainerCallback  # noqa: E402

from paperloom import UserError  # noqa: E402


def register_model_type(folder: Path) -> None:
    """Import the plugin module that registers this checkpoint's `model_type` with transformers, if any."""
    from transformers import CONFIG_MAPPING

    from paperloom.context import load_ref
    from paperloom.plugins import registry

    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if not model_type or model_type in CONFIG_MAPPING:
        return
    for plugin in registry().healthy():
        for comp in plugin.components.values():
            if model_type in comp.hf_model_types:
                load_ref(comp.builder)  # importing the module registers the Auto classes
                return
    raise UserError(
        f"{folder}: model_type {model_type!r} is not known to transformers and no installed plugin "
        "declares it (Component.hf_model_types); install the plugin that saved this checkpoint"
    )


def load_causal_lm(path: str | Path, vocab_size: int | None = None, **kwargs: Any) -> Any:
    """`AutoModelForCausalLM.from_pretrained` on a local folder; never reaches a hub."""
    from transformers import AutoModelForCausalLM

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} is not a checkpoint folder (no config.json); pass a folder saved by save_pretrained")
    register_model_type(folder)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:  # torn weights, missing files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"{folder}: the checkpoint does not load ({first}); re-save it with save_pretrained") from None
    except Exception as exc:  # safetensors' own errors (e.g. HeaderTooLarge) are not OSError
        if type(exc).__module__.startswith("safetensors"):
            raise UserError(f"{folder}: a weights file is corrupt ({exc}); re-save it with save_pretrained") from None
        raise
    if vocab_size is not None and model.get_input_embeddings().num_embeddings < vocab_size:
        raise UserError(
            f"{folder}: the model's vocabulary has {model.get_input_embeddings().num_embeddings} entries but the "
            f"tokenizer has {vocab_size}; use the tokenizer saved with the model (data.tokenizer={folder})"
        )
    return model


def save_hf(model: Any, out: str | Path, tokenizer: Any = None) -> Path:
    """Export an HF model (safetensors) and its tokenizer into a folder `from_pretrained` loads."""
    out = Path(out)
    model.save_pretrained(str(out), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


# --------------------------------------------------------------------------- HF / trl Trainer bridge


class MetricsToRun(TrainerCallback):
    """Mirror a Trainer's logged metrics (loss, rewards/margins, ...) into the run's metrics.jsonl."""

    def __init__(self, log_metrics: Callable[..., None], prefix: str = "") -> None:
        self.log_metrics, self.prefix = log_metrics, prefix

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs or "train_runtime" in logs:
            return  # the end-of-training summary (runtime, flos, samples/s) is not a curve
        row = {self.prefix + k.replace("/", "_"): float(v) for k, v in logs.items() if isinstance(v, (int, float))}
        if row:
            self.log_metrics(row, step=state.global_step)


def quiet(trainer: Any) -> Any:
    """Drop transformers' stdout printer and progress bar (MetricsToRun logs to the run instead)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:
        pass
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def last_checkpoint(out_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` folder a Trainer wrote into `out_dir`, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(out_dir)) if Path(out_dir).is_dir() else None


def train(trainer: Any, resume: bool = False, on_resume: Callable[[str], Any] | None = None) -> dict:
    """``trainer.train()``, continuing from the newest checkpoint in its output_dir under ``--resume``;
    `on_resume(checkpoint)` restores whatever else the checkpoint holds (e.g. a moving reference model)."""
    ckpt = last_checkpoint(trainer.args.output_dir) if resume else None
    if ckpt and on_resume is not None:
        on_resume(ckpt)
    result = trainer.train(resume_from_checkpoint=ckpt)
    return {"train_loss": float(result.training_loss), "steps": int(trainer.state.global_step)}
