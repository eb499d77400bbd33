"""Guidance behind one interface: ``guidance(frames (F, 3, H, W) in [0, 1], base (3, H, W), step) -> loss``.

- `SDSGuidance`: score distillation from a text-to-video diffusion model (Dynamic Typography Sec. 4.2, the
  reference's `SDSVideoLoss`): frames -> VAE latents (1, 4, F, h, w); t ~ U[t_min, t_max); z_t = add_noise(z, eps, t);
  eps_hat = eps_u + s (eps_c - eps_u) (classifier-free guidance, s = 30); grad_z = w(t) (eps_hat - eps) with
  w(t) = 1 - alpha_bar_t. The returned surrogate ``(grad_z * z).sum()`` has exactly that gradient w.r.t. z.
  Loaded from a local diffusers folder (ModelScope layout: unet/ = UNet3DConditionModel, vae/, text_encoder/ +
  tokenizer/ = CLIP, scheduler/), fp16 on GPU.
- `MotionTargetGuidance`: a light, local stand-in for CPU demos, *not* a video model: the prompt's verb picks a
  procedural motion (walk, jump, dance, pulse, flicker, ...) and the loss pulls each frame towards the base
  frame warped by that motion. Every output of a run that used it says so (`disclosure`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from paperloom import UserError

LOCAL_DISCLOSURE = ("guidance: LOCAL procedural motion target from the prompt's verb (a CPU stand-in; "
                    "no text-to-video diffusion model was used)")


class SDSGuidance:
    """Score distillation sampling from a (ModelScope-style) text-to-video UNet3D."""

    name = "sds"

    def __init__(self, unet, vae, scheduler, text_embeddings: torch.Tensor, guidance_scale: float = 30.0,
                 t_min: int = 50, t_max: int = 950, augment: bool = True, dtype: torch.dtype = torch.float32):
        self.unet, self.vae, self.scheduler = unet, vae, scheduler
        self.emb = text_embeddings  # (2, L, D): [uncond, cond]
        self.scale, self.t_min, self.t_max, self.augment, self.dtype = guidance_scale, t_min, t_max, augment, dtype
        self.alphas = scheduler.alphas_cumprod
        self.disclosure = f"guidance: SDS from a text-to-video diffusion model (scale {guidance_scale})"

    def with_scale(self, scale: float) -> SDSGuidance:
        """The same model with another classifier-free guidance scale (the reference's global pass: 40)."""
        return SDSGuidance(self.unet, self.vae, self.scheduler, self.emb, scale, self.t_min, self.t_max,
                           self.augment, self.dtype)

    @classmethod
    def from_folder(cls, folder: str, prompt: str, device: str = "cpu", **kw) -> SDSGuidance:
        try:
            from diffusers import AutoencoderKL, DDPMScheduler, UNet3DConditionModel
            from transformers import CLIPTextModel, CLIPTokenizer
        except ImportError as e:
            raise UserError(f"guidance=sds needs diffusers and transformers ({e}); "
                            "pip install 'paperloom-dynamic-typography[sds]'") from None
        root = Path(folder)
        missing = [s for s in ("unet", "vae", "text_encoder", "tokenizer", "scheduler") if not (root / s).is_dir()]
        if missing:
            raise UserError(f"guidance_args.path={folder}: missing {', '.join(m + '/' for m in missing)}; "
                            "expected a local diffusers text-to-video folder (unet/ UNet3DConditionModel, vae/, "
                            "text_encoder/, tokenizer/, scheduler/), e.g. damo-vilab/text-to-video-ms-1.7b")
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        unet = UNet3DConditionModel.from_pretrained(root / "unet", torch_dtype=dtype).to(device).eval()
        vae = AutoencoderKL.from_pretrained(root / "vae", torch_dtype=dtype).to(device).eval()
        text = CLIPTextModel.from_pretrained(root / "text_encoder", torch_dtype=dtype).to(device).eval()
        tok = CLIPTokenizer.from_pretrained(root / "tokenizer")
        sched = DDPMScheduler.from_pretrained(root / "scheduler")
        for m in (unet, vae, text):
            m.requires_grad_(False)
        with torch.no_grad():
            ids = [tok(p, padding="max_length", max_length=tok.model_max_length, truncation=True,
                       return_tensors="pt").input_ids.to(device) for p in ("", prompt)]
            emb = torch.cat([text(i)[0] for i in ids])
        del text
        sched.alphas_cumprod = sched.alphas_cumprod.to(device)
        return cls(unet, vae, sched, emb, dtype=dtype, **kw)

    def augmentations(self, x: torch.Tensor) -> torch.Tensor:
        """The reference's augmentations, one draw for all frames: RandomPerspective(0.5, fill=1) and
        RandomResizedCrop(scale 0.4-1, square)."""
        from torchvision import transforms

        h, w = x.shape[-2:]
        aug = transforms.Compose([transforms.RandomPerspective(distortion_scale=0.5, p=1.0, fill=1),
                                  transforms.RandomResizedCrop((h, w), scale=(0.4, 1.0), ratio=(1.0, 1.0),
                                                               antialias=True)])
        return aug(x)

    def latents(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, 3, H, W) in [0, 1] -> (1, 4, F, h, w) scaled VAE latents."""
        z = self.vae.encode((frames * 2 - 1).to(self.dtype)).latent_dist.sample()
        return (z * self.vae.config.scaling_factor).permute(1, 0, 2, 3)[None].float()

    @torch.no_grad()
    def grad(self, z: torch.Tensor, t: torch.Tensor | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
        """grad_z = w(t) (eps_hat - eps) for latents z (1, 4, F, h, w)."""
        if t is None:
            t = torch.randint(self.t_min, self.t_max - 1, (z.shape[0],), device=z.device)  # reference: [50, 949)
        eps = torch.randn_like(z) if eps is None else eps
        zt = self.scheduler.add_noise(z, eps, t)
        out = self.unet(torch.cat([zt] * 2).to(self.dtype), torch.cat([t] * 2),
                        encoder_hidden_states=self.emb.to(self.dtype)).sample.float()
        eps_u, eps_c = out.chunk(2)
        eps_hat = eps_u + self.scale * (eps_c - eps_u)
        w = (1 - self.alphas.to(z.device)[t]).float().view(-1, 1, 1, 1, 1)
        return torch.nan_to_num(w * (eps_hat - eps), 0.0, 0.0, 0.0)

    def __call__(self, frames: torch.Tensor, base: torch.Tensor | None = None, step: int = 0) -> torch.Tensor:
        x = self.augmentations(frames) if self.augment else frames
        z = self.latents(x)
        return (self.grad(z) * z).sum()  # d/dz = grad_z (the reference's SpecifyGradient)


MOTIONS = {  # verb stems -> motion; every motion has a non-rigid part (the structure losses have work to do)
    "walk": ("walk", "run", "stride", "march", "gallop", "trot", "swim", "crawl", "move", "travel", "drive"),
    "jump": ("jump", "bounc", "hop", "leap", "spring"),
    "dance": ("danc", "sway", "swing", "rock", "wav", "wiggl", "twist"),
    "pulse": ("pulse", "puls", "beat", "breath", "grow", "expand", "inflat", "throb"),
    "flicker": ("flicker", "burn", "flame", "shake", "shiver", "trembl", "vibrat", "flutter", "blow"),
}


def motion_of(prompt: str) -> str:
    words = re.findall(r"[a-z]+", prompt.lower())
    for motion, stems in MOTIONS.items():
        if any(w.startswith(s) for w in words for s in stems):
            return motion
    return "dance"


def displacement(motion: str, xy: torch.Tensor, f: int, n_frames: int, size: int, amp: float) -> torch.Tensor:
    """Procedural displacement (x, y in canvas pixels) of frame f; xy (..., 2)."""
    ph = 2 * math.pi * (f + 1) / n_frames
    x, y = (xy[..., 0] - size / 2) / size, (xy[..., 1] - size / 2) / size  # centered, in canvases
    a, zero = amp * size, torch.zeros_like(x)
    if motion == "walk":  # travel + legs shearing back and forth
        dx = a * math.sin(ph) + 0.6 * a * math.sin(2 * ph) * (y + 0.5)
        dy = zero - 0.25 * a * abs(math.sin(2 * ph))
    elif motion == "jump":  # hop with squash and stretch (anisotropic: not conformal)
        s = 0.25 * math.cos(2 * ph)
        dx, dy = x * size * s, -a * abs(math.sin(ph)) - y * size * s
    elif motion == "pulse":  # breathing, wider than tall
        s = 0.2 * math.sin(ph)
        dx, dy = x * size * s, y * size * 0.3 * s
    elif motion == "flicker":  # flame-like horizontal waves climbing the letter
        dx = 1.2 * a * torch.sin(2 * math.pi * 1.5 * y + 2 * ph) * (0.5 - y)
        dy = zero + 0.3 * a * math.sin(2 * ph)
    else:  # dance: rotation + a sideways wave
        th = 0.25 * math.sin(ph)
        dx = x * size * (math.cos(th) - 1) - y * size * math.sin(th) + 0.5 * a * torch.sin(2 * math.pi * y + ph)
        dy = x * size * math.sin(th) + y * size * (math.cos(th) - 1)
    return torch.stack([dx, dy], -1)


class MotionTargetGuidance:
    """Local CPU guidance: frame f is pulled towards the base frame warped by the prompt verb's motion
    (multi-scale MSE: full resolution and 4x blurred, so edges several pixels away still feel it)."""

    name = "local-motion-target"
    disclosure = LOCAL_DISCLOSURE

    def __init__(self, prompt: str, amplitude: float = 0.08, motion: str = ""):
        self.motion = motion or motion_of(prompt)
        if self.motion not in (*MOTIONS, "dance"):
            raise UserError(f"guidance_args.motion={motion!r}; expected one of {', '.join(MOTIONS)}")
        self.amp = amplitude

    def targets(self, base: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(3, H, W) base frame -> (F, 3, H, W): target f samples the base at x - D_f(x)."""
        _, h, w = base.shape
        ys, xs = torch.meshgrid(torch.arange(h, dtype=base.dtype) + 0.5, torch.arange(w, dtype=base.dtype) + 0.5,
                                indexing="ij")
        xy = torch.stack([xs, ys], -1)
        grids = []
        for f in range(n_frames):
            src = xy - displacement(self.motion, xy, f, n_frames, w, self.amp)
            grids.append(torch.stack([src[..., 0] / w * 2 - 1, src[..., 1] / h * 2 - 1], -1))
        grid = torch.stack(grids).to(base.device)
        return F.grid_sample(base[None].expand(n_frames, -1, -1, -1), grid, align_corners=False,
                             padding_mode="border")

    def __call__(self, frames: torch.Tensor, base: torch.Tensor, step: int = 0) -> torch.Tensor:
        tgt = self.targets(base.detach(), frames.shape[0])
        loss = F.mse_loss(frames, tgt)
        return loss + F.mse_loss(F.avg_pool2d(frames, 4), F.avg_pool2d(tgt, 4))
