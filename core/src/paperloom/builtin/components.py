"""Builders of the built-in components: ``builder(ctx, **kwargs)``."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset


class RegressionPairs(Dataset):
    """Items ``{"x": (F,), "y": (1,)}`` (contract ``regression-pairs``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


def build_mlp(ctx: Any, features: int = 8, hidden: int = 64, layers: int = 2) -> torch.nn.Module:
    dims = [features] + [hidden] * layers
    blocks: list[torch.nn.Module] = []
    for a, b in zip(dims, dims[1:]):
        blocks += [torch.nn.Linear(a, b), torch.nn.GELU()]
    return torch.nn.Sequential(*blocks, torch.nn.Linear(dims[-1], 1))


def build_regression(ctx: Any, n: int = 4096, features: int = 8, noise: float = 0.05, split: str = "train",
                     data_seed: int = 1234) -> RegressionPairs:
    """The same w for every split (fixed by `data_seed`); train and val draw different x."""
    g = torch.Generator().manual_seed(data_seed)
    w = torch.randn(features, generator=g) / features**0.5
    g.manual_seed(data_seed + (1 if split == "train" else 2))
    size = n if split == "train" else max(1, n // 4)
    x = torch.randn(size, features, generator=g)
    y = torch.sin(3 * x @ w)[:, None] + noise * torch.randn(size, 1, generator=g)
    return RegressionPairs(x, y)


def build_mse(ctx: Any, batch_size: int = 1024) -> Any:
    @torch.no_grad()
    def evaluate(model: torch.nn.Module, data: RegressionPairs, ctx: Any) -> dict[str, float]:
        was = model.training
        model.eval()
        total = 0.0
        for i in range(0, len(data), batch_size):
            x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
            total += float(((model(x) - y) ** 2).sum())
        model.train(was)
        return {"val_loss": total / len(data)}

    return evaluate
