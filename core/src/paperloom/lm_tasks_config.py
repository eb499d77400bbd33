"""Config schema of the built-in `core:train-lm` and `core:demo` tasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import option
from .schemas import OptimConfig, TextDataConfig, TrainerConfig


@dataclass
class TrainLMConfig:
    model: str = option(
        "core:gpt2",
        help="causal-LM component (plugin:name) or a local HF checkpoint folder",
        component="model",
        contract="causal-lm",
    )
    model_args: dict[str, Any] = option({}, help="keyword arguments for the model builder (sizes)")
    data: TextDataConfig = option(default_factory=TextDataConfig, help="text data")
    optim: OptimConfig = option(default_factory=OptimConfig, help="optimizer")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="Lightning trainer")
    export: bool = option(True, help="save the trained model as an HF folder (safetensors) in model/")
