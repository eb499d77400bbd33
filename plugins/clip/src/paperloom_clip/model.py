"""The CLIP dual encoder (Radford et al. 2021), as Scaling (Down) CLIP (Li et al. 2024, arXiv 2404.08197) trains it.

`CLIP` holds an image tower and a text tower with linear projections into one embedding space and a learnable
logit scale. Its attribute names are those of Hugging Face's `CLIPModel` (`vision_model`, `text_model`,
`visual_projection`, `text_projection`, `logit_scale`), so with a ViT image tower its state dict *is* a
`CLIPModel`'s: a real CLIP folder (openai/clip-vit-base-patch32 copied locally) loads with `from_pretrained`,
and our trained models save in that format. The ResNet tower (paper Sec. 4: "ResNet-50") is torchvision's.

Images go in as floats in [0, 1] (the `image-text-pairs` contract); the model normalizes them with its own
mean/std (CLIP's by default, or the folder's preprocessor_config.json).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from .flip import patch_dropout

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # openai CLIP preprocessing (open_clip OPENAI_DATASET_MEAN)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CONFIGS = Path(__file__).parent / "model_configs"


class AttentionPool(nn.Module):
    """CLIP's attention pooling of a CNN feature map (Radford et al. 2021, Sec. 2.4): the mean token, with a
    learned position embedding, attends over all spatial positions."""

    def __init__(self, spatial: int, width: int, heads: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(spatial * spatial + 1, width) / width**0.5)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C)
        x = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        x = torch.cat([x.mean(1, keepdim=True), x], 1) + self.pos[: x.shape[1] + 1]
        return self.attn(x[:, :1], x, x, need_weights=False)[0][:, 0]


class ResNetTower(nn.Module):
    """torchvision ResNet trunk (`arch` = resnet18/34/50/..., or BasicBlocks of `width`..8*width for tiny
    images) + average or attention pooling -> (B, out_dim)."""

    def __init__(self, image_size: int, arch: str = "", layers: tuple = (1, 1, 1, 1), width: int = 16,
                 pool: str = "avg", heads: int = 4) -> None:
        super().__init__()
        if arch:
            net = getattr(tv_resnet, arch)(weights=None)
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
            self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
            self.out_dim, reduction = net.fc.in_features, 32
        else:  # a small-image stem (one stride-2 3x3 conv) and one BasicBlock stage per entry of `layers`
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True))
            stages, inplanes = [], width
            for k, n in enumerate(layers):
                planes, stride = width * 2**k, 1 if k == 0 else 2
                blocks = []
                for j in range(n):
                    down = None
                    if j == 0 and (stride != 1 or inplanes != planes):
                        down = nn.Sequential(tv_resnet.conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
                    blocks.append(tv_resnet.BasicBlock(inplanes, planes, stride if j == 0 else 1, down))
                    inplanes = planes
                stages.append(nn.Sequential(*blocks))
            self.layers = nn.Sequential(*stages)
            self.out_dim, reduction = inplanes, 2 ** len(layers)
        spatial = max(1, image_size // reduction)
        self.pool = AttentionPool(spatial, self.out_dim, heads) if pool == "attention" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, out_dim)
        x = self.layers(self.stem(x))
        return self.pool(x) if self.pool is not None else x.mean((2, 3))


class CLIP(nn.Module):
    """Image tower + text tower + projections + logit scale (init 1/0.07, paper Sec. 3 / Radford et al.).

    `image_embed(images, drop)` is the pooled image feature before the projection (SLIP's SSL head reads it);
    `encode_image` / `encode_text` are the projected, unnormalized features (the `image-text-encoder` contract).
    """

    def __init__(self, vision_model: nn.Module, text_model: nn.Module, embed_dim: int, vision_width: int,
                 spec: dict, mean: tuple = CLIP_MEAN, std: tuple = CLIP_STD, tokenizer: Any = None) -> None:
        super().__init__()
        self.vision_model, self.text_model = vision_model, text_model
        self.visual_projection = nn.Linear(vision_width, embed_dim, bias=False)
        self.text_projection = nn.Linear(text_model.config.hidden_size, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.spec, self.tokenizer = spec, tokenizer
        self.is_vit = spec["vision"]["type"] == "vit"
        self.image_size = spec["vision"]["image_size"]
        self.context_length = text_model.config.max_position_embeddings

    def image_embed(self, images: torch.Tensor, drop: float = 0.0) -> torch.Tensor:  # (B,3,H,W) in [0,1] -> (B, w)
        x = (images - self.mean) / self.std
        if not self.is_vit:
            return self.vision_model(x)
        vm = self.vision_model
        h = vm.embeddings(x)  # (B, 1 + N, w): CLS + patches, position embedding added
        if drop > 0 and self.training:  # FLIP: drop patch tokens after the position embedding, never in eval
            h = patch_dropout(h, drop)
        h = vm.encoder(inputs_embeds=vm.pre_layrnorm(h)).last_hidden_state
        return vm.post_layernorm(h[:, 0])  # CLS token, as HF CLIPVisionModel pools

    def encode_image(self, images: torch.Tensor, drop: float = 0.0) -> torch.Tensor:  # -> (B, D)
        return self.visual_projection(self.image_embed(images, drop))

    def encode_text(self, tokens: Any, attention_mask: torch.Tensor | None = None) -> torch.Tensor:  # -> (B, D)
        if isinstance(tokens, dict):
            tokens, attention_mask = tokens["input_ids"], tokens.get("attention_mask")
        out = self.text_model(input_ids=tokens, attention_mask=attention_mask)
        return self.text_projection(out.pooler_output)  # the EOS token's state (HF CLIPTextModel pooling)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        from .tokenizer import tokenize

        return tokenize(self.tokenizer, texts, self.context_length)

    # ------------------------------------------------------------------ saving / loading

    def save(self, folder: str | Path) -> Path:
        """ViT: a Hugging Face CLIPModel folder (config.json, model.safetensors); ResNet: clip_config.json +
        model.safetensors. Both with the tokenizer files."""
        from safetensors.torch import save_file

        from paperloom.io import atomic_write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.is_vit:
            hf = to_hf(self)
            hf.save_pretrained(folder)
        else:
            state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            tmp = folder / ".model.safetensors.tmp"
            save_file(state, str(tmp))
            tmp.replace(folder / "model.safetensors")
        atomic_write_json(folder / "clip_config.json", {"spec": self.spec, "mean": self.mean.flatten().tolist(),
                                                        "std": self.std.flatten().tolist()})
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)
        return folder


def read_spec(arch: str | dict) -> dict:
    """A model config: a name from model_configs/ (ViT-Ti-4, ViT-S-16, ViT-B-32, RN-Ti, RN50), a JSON path, or a
    dict."""
    from paperloom import UserError

    if isinstance(arch, dict):
        return json.loads(json.dumps(arch))
    path = CONFIGS / f"{arch}.json" if (CONFIGS / f"{arch}.json").is_file() else Path(arch)
    if not path.is_file():
        names = sorted(p.stem for p in CONFIGS.glob("*.json"))
        raise UserError(f"model arch {arch!r} is not a known config or JSON file; expected one of {names}")
    return json.loads(path.read_text())


def hf_configs(spec: dict, vocab_size: int, special: dict) -> tuple[Any, Any]:
    from transformers import CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(vocab_size=vocab_size, projection_dim=spec["embed_dim"], **special, **spec["text"])
    vis = {k: v for k, v in spec["vision"].items() if k != "type"}
    vision = CLIPVisionConfig(projection_dim=spec["embed_dim"], **vis) if spec["vision"]["type"] == "vit" else None
    return text, vision


def build_clip(spec: dict, tokenizer: Any) -> CLIP:
    """A randomly initialized CLIP for `spec` (see model_configs/) whose text tower fits `tokenizer`."""
    from transformers import CLIPTextModel, CLIPVisionModel

    from .tokenizer import special_ids

    text_cfg, vision_cfg = hf_configs(spec, len(tokenizer), special_ids(tokenizer))
    text = CLIPTextModel(text_cfg)
    if vision_cfg is not None:
        vision, width = CLIPVisionModel(vision_cfg), vision_cfg.hidden_size
    else:
        v = spec["vision"]
        vision = ResNetTower(v["image_size"], v.get("arch", ""), tuple(v.get("layers", (1, 1, 1, 1))),
                             v.get("width", 16), v.get("pool", "avg"), v.get("heads", 4))
        width = vision.out_dim
    model = CLIP(vision, text, spec["embed_dim"], width, spec, tokenizer=tokenizer)
    nn.init.normal_(model.visual_projection.weight, std=width**-0.5)  # CLIPModel's init of the projections
    nn.init.normal_(model.text_projection.weight, std=text_cfg.hidden_size**-0.5)
    return model


def to_hf(model: CLIP) -> Any:
    """The equivalent Hugging Face CLIPModel (ViT towers only): same weights, same outputs."""
    from transformers import CLIPConfig, CLIPModel

    text_cfg, vision_cfg = model.text_model.config, model.vision_model.config
    cfg = CLIPConfig(text_config=text_cfg.to_dict(), vision_config=vision_cfg.to_dict(),
                     projection_dim=model.visual_projection.out_features,
                     logit_scale_init_value=float(model.logit_scale.detach()))
    hf = CLIPModel(cfg)
    missing, unexpected = hf.load_state_dict(model.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"CLIPModel layout mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return hf


def load_clip(folder: str | Path) -> CLIP:
    """A CLIP from a folder: a Hugging Face CLIPModel checkpoint (ours or e.g. openai/clip-vit-base-patch32
    copied locally) or a ResNet CLIP this plugin saved; its tokenizer from the same folder."""
    from paperloom import UserError

    from .tokenizer import load_tokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file() and not (folder / "clip_config.json").is_file():
        raise UserError(f"{folder} is not a CLIP checkpoint folder (no config.json / clip_config.json); give a "
                        "folder CLIPModel.save_pretrained or clip:train wrote")
    extra = json.loads((folder / "clip_config.json").read_text()) if (folder / "clip_config.json").is_file() else {}
    mean, std = tuple(extra.get("mean", CLIP_MEAN)), tuple(extra.get("std", CLIP_STD))
    pre = folder / "preprocessor_config.json"
    if pre.is_file() and not extra:
        p = json.loads(pre.read_text())
        mean, std = tuple(p.get("image_mean", CLIP_MEAN)), tuple(p.get("image_std", CLIP_STD))
    tokenizer = load_tokenizer(folder)
    spec = extra.get("spec")
    if spec is None or spec["vision"]["type"] == "vit":
        from transformers import CLIPModel

        try:
            hf = CLIPModel.from_pretrained(folder)
        except (OSError, ValueError) as e:
            raise UserError(f"{folder}: not a loadable CLIPModel folder ({str(e).splitlines()[0]})") from None
        vc, tc = hf.config.vision_config, hf.config.text_config
        spec = spec or {"embed_dim": hf.config.projection_dim,
                        "vision": {"type": "vit", "image_size": vc.image_size, "patch_size": vc.patch_size},
                        "text": {"max_position_embeddings": tc.max_position_embeddings}}
        model = CLIP(hf.vision_model, hf.text_model, hf.config.projection_dim, vc.hidden_size, spec, mean, std,
                     tokenizer)
        model.load_state_dict(hf.state_dict())
        return model
    from safetensors.torch import load_file

    model = build_clip(spec, tokenizer)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.mean.copy_(torch.tensor(mean).view(1, 3, 1, 1))
    model.std.copy_(torch.tensor(std).view(1, 3, 1, 1))
    return model
