"""Generated stand-ins: a tiny randomly initialized text-to-video diffusers folder (ModelScope layout), so the SDS
code path (loading, text encoding, VAE, UNet3D, CFG, the gradient) runs end to end without any download."""

from __future__ import annotations

import json
from pathlib import Path


def _byte_vocab() -> dict[str, int]:
    """The CLIP tokenizer's byte-level alphabet (each byte, and each byte ending a word) + its special tokens."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    chars = [chr(c) for c in cs]
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def tiny_text_to_video(folder: str | Path, seed: int = 0, width: int = 32) -> Path:
    """Write unet/ (UNet3DConditionModel), vae/ (AutoencoderKL, 2x down), text_encoder/ + tokenizer/ (CLIP) and
    scheduler/ (DDPM, 1000 steps, scaled-linear betas as ModelScope) with random weights."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = Path(folder)
    torch.manual_seed(seed)
    UNet3DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(width, width),
                         layers_per_block=1, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
                         up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=width,
                         attention_head_dim=8, norm_num_groups=8).save_pretrained(root / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                  up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 16),
                  latent_channels=4, norm_num_groups=8, sample_size=32).save_pretrained(root / "vae")
    vocab = _byte_vocab()
    CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=width, intermediate_size=2 * width,
                                 num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=32,
                                 bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                                 pad_token_id=vocab["<|endoftext|>"])).save_pretrained(root / "text_encoder")
    tok_dir = root / "tokenizer_src"
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                  model_max_length=32).save_pretrained(root / "tokenizer")
    DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                  beta_schedule="scaled_linear").save_pretrained(root / "scheduler")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "TextToVideoSDPipeline",
                                                       "note": "tiny random stand-in (paperloom tests)"}))
    return root
