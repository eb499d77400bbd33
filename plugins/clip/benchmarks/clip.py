"""clip benchmark: FLIP's training-step time vs CLIP's on the same ViT (and open_clip's PatchDropout in the same
model, when open_clip is installed), and images/s of the webdataset pipeline vs a CSV + image-folder loader.

    python plugins/clip/benchmarks/clip.py [--steps 6] [--width 192] [--depth 6] [--images 2000]

Step = image tower forward + CLIP loss against fixed text features + backward + AdamW step, batch 64, 32x32
images, patch 4 (64 patches + CLS): what FLIP changes. Medians over interleaved repeats, one thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from paperloom_clip.components import build_model, default_tokenizer  # noqa: E402
from paperloom_clip.loss import clip_loss  # noqa: E402

from paperloom.tables import text_table  # noqa: E402


def make_vit(width: int, depth: int):
    torch.manual_seed(0)
    return build_model(None, "ViT-Ti-4", tokenizer=default_tokenizer(), vision={
        "hidden_size": width, "intermediate_size": 4 * width, "num_hidden_layers": depth,
        "num_attention_heads": max(1, width // 64)}).train()


def open_clip_dropout(ratio: float):
    try:
        from open_clip.transformer import PatchDropout
    except ImportError:
        return None
    return PatchDropout(ratio, exclude_first_token=True).train()


def step_fn(model, opt, images, text, drop: float, impl=None):
    def step() -> None:
        if impl is None:
            feats = model.encode_image(images, drop)
        else:  # the same model with open_clip's PatchDropout in place of ours
            vm = model.vision_model
            h = impl(vm.embeddings((images - model.mean) / model.std))
            h = vm.encoder(inputs_embeds=vm.pre_layrnorm(h)).last_hidden_state
            feats = model.visual_projection(vm.post_layernorm(h[:, 0]))
        loss = clip_loss(feats, text, model.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def time_steps(fns: dict, steps: int, repeats: int = 3) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():  # interleaved, so load changes hit every variant alike
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - t0) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def flip_bench(args) -> list[list]:
    model = make_vit(args.width, args.depth)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    images, text = torch.rand(64, 3, 32, 32, generator=g), torch.randn(64, model.text_projection.out_features)
    fns = {"clip": step_fn(model, opt, images, text, 0.0)}
    for p in (0.5, 0.75):
        fns[f"flip{int(p * 100)}"] = step_fn(model, opt, images, text, p)
        if open_clip_dropout(p) is not None:
            fns[f"open_clip{int(p * 100)}"] = step_fn(model, opt, images, text, p, open_clip_dropout(p))
    med = time_steps(fns, args.steps)
    return [[k, f"{1000 * v:.1f}", f"{v / med['clip']:.3f}"] for k, v in med.items()]


def data_bench(args) -> list[list]:
    from paperloom_clip.data import open_pairs
    from paperloom_clip.synthetic import make_pairs, write_pairs

    with tempfile.TemporaryDirectory() as tmp:
        pairs = make_pairs(args.images, 32, seed=0)
        csv = write_pairs(Path(tmp) / "folder", pairs, "csv")
        write_pairs(Path(tmp) / "wds", pairs, "wds", per_shard=max(1, args.images // 8))
        shards = ",".join(str(p) for p in sorted((Path(tmp) / "wds").glob("*.tar")))
        rows = []
        for workers in (0, 2):
            for name, path in (("csv + image folder", str(csv)), ("webdataset shards", shards)):
                ds = open_pairs(path, image_size=32)
                loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers,
                                                     collate_fn=lambda b: torch.stack([it["image"] for it in b]))
                t0 = time.perf_counter()
                n = sum(x.shape[0] for x in loader)
                rows.append([name, workers, n, f"{n / (time.perf_counter() - t0):.0f}"])
        return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--width", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--images", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"ViT width {args.width}, depth {args.depth}, 32x32 / patch 4 (64 patches), batch 64, 1 thread; "
          f"load {os.getloadavg()[0]:.1f}")
    print(text_table(flip_bench(args), ["step", "ms / step", "ratio vs clip"]))
    print(text_table(data_bench(args), ["loader", "workers", "images", "images / s"]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
