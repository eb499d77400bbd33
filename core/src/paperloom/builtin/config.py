"""Task schemas of the built-in plugin (plain dataclasses: no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import option
from ..contracts import REGRESSION_PAIRS, REGRESSOR, REGRESSOR_WEIGHTS
from ..schemas import OptimConfig, TrainerConfig


@dataclass
class RegressionData:
    """Generated pairs: x ~ N(0, I), y = sin(3 w.x) + noise with a fixed random w."""

    n: int = option(4096, help="pairs in the training split (the validation split has n / 4)")
    features: int = option(8, help="input features")
    noise: float = option(0.05, help="standard deviation of the label noise")


@dataclass
class FitConfig:
    """Fit a regressor with the Lightning adapter; report held-out MSE before and after."""

    model: str = option("core:mlp", help="regressor component (plugin:name)", component="model", contract=REGRESSOR)
    model_args: dict[str, Any] = option({}, help="keyword arguments for the model builder")
    data: RegressionData = option(default_factory=RegressionData, help="generated data")
    dataset: str = option("core:regression", help="dataset component", component="dataset",
                          contract=REGRESSION_PAIRS)
    evaluator: str = option("core:mse", help="evaluator component run on the validation split",
                            component="evaluator", contract=REGRESSOR)
    init_from: str = option("", run_contract=REGRESSOR_WEIGHTS,
                            help="a finished core:fit run folder whose weights to start from ('' = random init)")
    optim: OptimConfig = option(default_factory=OptimConfig, help="AdamW + warmup/cosine")
    trainer: TrainerConfig = option(default_factory=TrainerConfig, help="Lightning trainer")
