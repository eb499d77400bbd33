"""Run by test_loss.py: Lightning DDP on 2 CPU processes (gloo), one step of the CLIP module with lr 0 on a
global batch of 8 (4 per rank), saving the loss and the (DDP-averaged) gradients of rank 0; then, in the same
process group, the non-local gathered loss by hand. Usage: python ddp_check.py OUT_DIR."""

import sys
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from paperloom_clip.components import build_model, default_tokenizer
from paperloom_clip.config import StrategyConfig
from paperloom_clip.data import TensorPairs
from paperloom_clip.loss import clip_loss
from paperloom_clip.strategies import ContrastiveModule
from paperloom_clip.synthetic import make_pairs
from paperloom_clip.tasks import loader

from paperloom.schemas import OptimConfig


def setup():
    torch.manual_seed(0)
    model = build_model(None, "ViT-Ti-4", tokenizer=default_tokenizer(), vision={"image_size": 16,
                        "num_hidden_layers": 1}, text={"num_hidden_layers": 1})
    pairs = make_pairs(8, 16, seed=5)
    return model, TensorPairs(pairs["images"], pairs["texts"])


class Probe(ContrastiveModule):
    def on_after_backward(self) -> None:
        self.saved = {n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.grad is not None}

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.saved_loss = loss.detach().clone()
        return loss


def main(out: Path) -> None:
    model, data = setup()
    s = StrategyConfig(name="clip", base_crop_min=1.0, local_loss=True)
    module = Probe(model, s, OptimConfig(lr=0.0, min_lr=0.0, warmup_steps=0), 1)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False, num_sanity_val_steps=0)
    trainer.fit(module, loader(model, data, s, batch_size=4, seed=0))
    rank = dist.get_rank()
    losses = [torch.zeros(()) for _ in range(2)]
    dist.all_gather(losses, module.saved_loss)
    # the same global batch by hand: non-local loss (every rank scores the whole gathered batch)
    batch = next(iter(loader(model, data, s, batch_size=4, seed=0)))
    model.zero_grad()
    full = clip_loss(model.encode_image(batch["image"]), model.encode_text(batch["input_ids"],
                     batch["attention_mask"]), model.logit_scale, local_loss=False)
    full.backward()
    manual = {}
    for n, p in model.named_parameters():
        if p.grad is not None:
            g = p.grad.detach().clone()
            dist.all_reduce(g)
            manual[n] = g / 2  # what DDP's gradient averaging does
    if rank == 0:
        torch.save({"local_losses": torch.stack(losses), "local_grads": module.saved, "full_loss": full.detach(),
                    "full_grads": manual}, out / "ddp.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
