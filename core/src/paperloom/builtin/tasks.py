"""`core:fit` / `core:demo`: any regressor fitted with the Lightning adapter, held-out MSE before and after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from ..context import is_main_process
from ..training import adamw_config, make_trainer, shuffled_loader
from ..training import fit as fit_trainer


class RegressionModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, optim: Any, total_steps: int) -> None:
        super().__init__()
        self.model, self.optim, self.total_steps = model, optim, total_steps

    def training_step(self, batch: dict, _: int) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(self.model(batch["x"]), batch["y"])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: dict, _: int) -> None:
        self.log("val_loss", torch.nn.functional.mse_loss(self.model(batch["x"]), batch["y"]), sync_dist=True)

    def configure_optimizers(self) -> Any:
        return adamw_config(self.model, self.optim, self.total_steps)


def fit(cfg: Any, ctx: Any) -> dict[str, float]:
    d = cfg.data
    train = ctx.build(cfg.dataset, n=d.n, features=d.features, noise=d.noise, split="train")
    val = ctx.build(cfg.dataset, n=d.n, features=d.features, noise=d.noise, split="val")
    model = ctx.build(cfg.model, **{"features": d.features, **cfg.model_args})
    if cfg.init_from:  # a typed run input: the core checked the folder's run.json before we got here
        from ..checkpoint import load_safetensors

        model.load_state_dict(load_safetensors(Path(cfg.init_from) / "model.safetensors"))
    evaluate = ctx.build(cfg.evaluator)
    init = evaluate(model, val, ctx)["val_loss"]
    ctx.save_metrics({"init_val_loss": init})
    t = cfg.trainer
    trainer = make_trainer(ctx, t)
    loader = shuffled_loader(train, t.batch_size, ctx.seed)
    fit_trainer(ctx, trainer, RegressionModule(model, cfg.optim, t.max_steps), loader,
                DataLoader(val, batch_size=256))
    if not trainer.is_global_zero or not is_main_process():
        return {}
    from safetensors.torch import save_file

    from ..io import atomic_write_bytes

    final = evaluate(model, val, ctx)["val_loss"]
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = ctx.out / ".model.safetensors.tmp"
    save_file(tensors, str(tmp))
    atomic_write_bytes(ctx.out / "model.safetensors", tmp.read_bytes())
    tmp.unlink()
    ctx.log.info(f"held-out MSE {init:.4f} -> {final:.4f} after {trainer.global_step} steps")
    return {"val_loss": final, "init_val_loss": init, "steps": trainer.global_step}
