"""The contrastive losses: CLIP's symmetric cross-entropy over all pairs of a (global) batch, with features
gathered across processes *with* gradients (as open_clip's `ClipLoss(gather_with_grad=True)`), and SLIP's SimCLR
loss (Mu et al. 2022, Eq. 1: NT-Xent with temperature tau over two augmented views)."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

MAX_LOGIT_SCALE = math.log(100)  # Radford et al. 2021 Sec. 2.5: the temperature is clipped to keep logits <= 100


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient of the gathered tensor and returns this rank's slice
    (a reduce-scatter done with all_reduce, which gloo supports)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.world, ctx.rank, ctx.n = dist.get_world_size(), dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(ctx.world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n: (ctx.rank + 1) * ctx.n]


def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def gather(x: torch.Tensor) -> torch.Tensor:
    """(B, D) on each rank -> (world * B, D) in rank order, differentiable; identity in one process."""
    return _GatherWithGrad.apply(x) if world()[0] > 1 else x


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, local_loss: bool = False,
              ) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch (Radford et al. 2021, Fig. 3): L2-normalized features, logits
    = exp(logit_scale) * cos, cross-entropy image->text and text->image, averaged.

    `local_loss` (open_clip's option): each rank scores only its own rows against all columns; the mean over
    ranks (what DDP's gradient averaging takes) is then the same loss at a fraction of the memory."""
    image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
    all_image, all_text = gather(image), gather(text)
    scale = logit_scale.exp()
    n_world, rank = world()
    if local_loss:
        logits_i, logits_t = scale * image @ all_text.T, scale * text @ all_image.T  # (B, world * B)
        labels = torch.arange(image.shape[0], device=image.device) + rank * image.shape[0]
    else:
        logits_i = scale * all_image @ all_text.T  # (world * B, world * B)
        logits_t = logits_i.T
        labels = torch.arange(all_image.shape[0], device=image.device)
    return (F.cross_entropy(logits_i, labels) + F.cross_entropy(logits_t, labels)) / 2


def simclr_loss(za: torch.Tensor, zb: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """SLIP's SIMCLRLoss: for each view-a embedding the positive is its view-b partner, the negatives every other
    embedding of both views in the global batch (self-similarities masked out); symmetric in a and b."""
    za, zb = F.normalize(za, dim=-1), F.normalize(zb, dim=-1)
    ka, kb = gather(za), gather(zb)
    n_world, rank = world()
    b = za.shape[0]
    labels = torch.arange(b, device=za.device) + rank * b
    mask = F.one_hot(labels, ka.shape[0]).to(za.dtype) * 1e9
    aa, bb = za @ ka.T / tau - mask, zb @ kb.T / tau - mask
    ab, ba = za @ kb.T / tau, zb @ ka.T / tau
    return (F.cross_entropy(torch.cat([ab, aa], 1), labels) + F.cross_entropy(torch.cat([ba, bb], 1), labels)) / 2
