"""Data contracts: the tags components declare in ``produces`` / ``consumes`` and config fields in
``option(contract=...)``. docs/contracts.md gives each one's item schema, producers and consumers;
a test checks that every constant here is documented there.

A contract is a promise about what a built thing *is* (a model's call signature, a dataset's
items), so the core can refuse a mismatched composition before anything heavy is imported.
"""

from __future__ import annotations

# Models
CAUSAL_LM = "causal-lm"  # HF PreTrainedModel: forward(input_ids, labels=...) -> .loss, .logits; generate()
REGRESSOR = "regressor"  # torch.nn.Module: forward(x (B, F)) -> (B, 1)
PANOPTIC_SEGMENTATION = "panoptic-segmentation"  # predict_panoptic(images (B,3,H,W)) -> [(ids (H,W), segments_info)]
IMAGE_TEXT_ENCODER = "image-text-encoder"  # encode_image(images) -> (B, D), encode_text(tokens) -> (B, D)
TYPOGRAPHY_FIELDS = "typography-fields"  # forward(glyph (N, 2), step) -> base (N, 2), frames (F, N, 2)
VIDEO_GUIDANCE = "video-guidance"  # guidance(frames (F, 3, H, W) in [0, 1], base (3, H, W), step) -> loss
CRITIC = "critic"  # forward(input_ids, attention_mask) -> {"value"|"prm"|"orm": logits (B, T)}; at_last(seqs)

# Datasets
TOKEN_BLOCKS = "token-blocks"  # items {"input_ids": Long (T,), "labels": Long (T,)}; `.tokenizer` attribute
PREFERENCE_PAIRS = "preference-pairs"  # datasets.Dataset rows {"prompt", "chosen", "rejected"}
UNPAIRED_PREFERENCES = "unpaired-preferences"  # datasets.Dataset rows {"prompt", "completion", "label": bool}
COCO_PANOPTIC = "coco-panoptic"  # items {"image", "masks", "boxes", "labels", "isthing", "iscrowd"}; .raw(i)
IMAGE_TEXT_PAIRS = "image-text-pairs"  # items {"image": Float (3, H, W), "text": str}
REGRESSION_PAIRS = "regression-pairs"  # items {"x": Float (F,), "y": Float (1,)}
REASONING_PROBLEMS = "reasoning-problems"  # items {"question": str, "answer": str ending "#### n"}

# Run artifacts (Task.artifacts; a later task takes the run folder with option(run_contract=...))
HF_CHECKPOINT = "hf-checkpoint"  # a folder save_pretrained wrote: config.json, model.safetensors, tokenizer files
REGRESSOR_WEIGHTS = "regressor-weights"  # a safetensors file of a core:mlp state dict
POSED_IMAGES = "posed-images"  # dataset/: nerfstudio transforms.json + images/, normalised into the scene box
NERF_FIELD = "nerf-field"  # nerf/: model.safetensors + nerf.json (video2game:ngp field + march settings)
SCENE_MESH = "scene-mesh"  # mesh/: scene.ply + <object>.ply + meshes.json
BAKED_MESH = "baked-mesh"  # baked/: scene.obj/.mtl, diffuse.png, specular.png (8 bit), mlp.json
GAME_EXPORT = "game-export"  # game/: index.html, app.js, scene.glb, colliders.json, mlp.json, scene.json

ALL = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, str) and not name.startswith("_")
}
