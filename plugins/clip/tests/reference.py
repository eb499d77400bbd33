"""Plain reference implementations of the paper's equations, written for clarity (loops, no batching tricks)."""

from __future__ import annotations

import math

import torch


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / math.sqrt(float((v * v).sum()))


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: float) -> float:
    """Symmetric cross-entropy of CLIP (Radford et al. 2021, Fig. 3 pseudo-code), one row at a time."""
    n = image.shape[0]
    img, txt = [unit(image[i].double()) for i in range(n)], [unit(text[i].double()) for i in range(n)]
    s = math.exp(logit_scale)
    total_i = total_t = 0.0
    for i in range(n):
        row = [s * float(img[i] @ txt[j]) for j in range(n)]
        col = [s * float(txt[i] @ img[j]) for j in range(n)]
        total_i += -row[i] + math.log(sum(math.exp(v) for v in row))
        total_t += -col[i] + math.log(sum(math.exp(v) for v in col))
    return (total_i / n + total_t / n) / 2


def simclr_loss(za: torch.Tensor, zb: torch.Tensor, tau: float) -> float:
    """NT-Xent as SLIP's SIMCLRLoss: for a_i the positive is b_i; negatives b_j (j != i) and a_j (j != i)."""
    n = za.shape[0]
    a, b = [unit(za[i].double()) for i in range(n)], [unit(zb[i].double()) for i in range(n)]

    def side(x: list, y: list) -> float:
        total = 0.0
        for i in range(n):
            logits = [float(x[i] @ y[j]) / tau for j in range(n)] + [float(x[i] @ x[j]) / tau for j in range(n)
                                                                     if j != i]
            total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
        return total / n

    return (side(a, b) + side(b, a)) / 2


def zero_shot_weights(embed_text, classnames: list[str], templates: list[str]) -> torch.Tensor:
    """Radford et al. 2021 Sec. 3.1.4: per class, average the normalized embeddings of its prompts, renormalize."""
    rows = []
    for c in classnames:
        mean = sum(unit(embed_text(t.format(c))) for t in templates) / len(templates)
        rows.append(unit(mean))
    return torch.stack(rows)


def top_fraction(scores: list[float], fraction: float) -> list[int]:
    """The indices of the ceil(fraction * N) largest scores (earlier index first on ties), sorted."""
    k = math.ceil(round(fraction * len(scores), 9))  # 0.1 * 30 is 3.0000000000000004 in floating point
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(ranked[:k])
