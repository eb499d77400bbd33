"""Models as data: every shipped config builds; ViT CLIPs save as Hugging Face CLIPModel folders that load with
from_pretrained; ResNet CLIPs round-trip; the tokenizer interface."""

import json

import pytest
import torch
from paperloom_clip.components import build_model
from paperloom_clip.model import CONFIGS, load_clip, read_spec

from paperloom import UserError


def test_every_model_config_is_complete():
    names = sorted(p.stem for p in CONFIGS.glob("*.json"))
    assert names == ["RN-Ti", "RN50", "ViT-B-32", "ViT-S-16", "ViT-Ti-4"]
    for name in names:
        spec = read_spec(name)
        assert spec["vision"]["type"] in ("vit", "resnet") and spec["embed_dim"] > 0
    b32 = read_spec("ViT-B-32")["vision"]  # the layout of openai/clip-vit-base-patch32
    assert (b32["hidden_size"], b32["patch_size"], b32["num_hidden_layers"]) == (768, 32, 12)


def test_unknown_arch_is_one_line_error(tokenizer):
    with pytest.raises(UserError, match="ViT-Ti-4"):
        build_model(None, "ViT-Q-99", tokenizer=tokenizer)


def test_vit_saves_as_hf_clipmodel_and_loads_back(vit, tmp_path):
    from transformers import CLIPModel

    vit.eval()
    folder = vit.save(tmp_path / "m")
    assert json.loads((folder / "config.json").read_text())["model_type"] == "clip"
    hf = CLIPModel.from_pretrained(folder).eval()  # a plain HF load of our folder
    back = load_clip(folder).eval()
    x = torch.rand(2, 3, 16, 16)
    tokens = back.tokenize(["a red circle in the top left", "a blue square"])
    with torch.no_grad():
        torch.testing.assert_close(back.encode_image(x), vit.encode_image(x))
        torch.testing.assert_close(back.encode_text(tokens), vit.encode_text(tokens))
        torch.testing.assert_close(hf.get_text_features(**tokens).pooler_output, vit.encode_text(tokens))
    assert float(back.logit_scale) == pytest.approx(float(vit.logit_scale))


def test_a_hf_clip_folder_without_our_files_loads(tmp_path, tokenizer):
    """A folder as openai/clip-vit-* ships it: config.json + weights + tokenizer + preprocessor_config.json."""
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                                  "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 12,
                                  "eos_token_id": tokenizer.eos_token_id},
                     vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "image_size": 16, "patch_size": 8}, projection_dim=24)
    hf = CLIPModel(cfg).eval()
    hf.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5, 0.5],
                                                                   "image_std": [0.25, 0.25, 0.25]}))
    model = load_clip(tmp_path).eval()
    assert model.image_size == 16 and model.context_length == 12
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = hf.get_image_features(pixel_values=(x - 0.5) / 0.25).pooler_output
        torch.testing.assert_close(model.encode_image(x), expected)


def test_resnet_round_trip(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = build_model(None, "RN-Ti", tokenizer=tokenizer, vision={"pool": "attention", "image_size": 16}).eval()
    back = load_clip(model.save(tmp_path / "rn")).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(back.encode_image(x), model.encode_image(x))
    assert not back.is_vit and back.encode_image(x).shape == (2, 64)


def test_not_a_checkpoint_folder(tmp_path):
    with pytest.raises(UserError, match="not a CLIP checkpoint folder"):
        load_clip(tmp_path)


def test_tokenizer_adds_start_and_end_and_pools_the_end(tokenizer, vit):
    tokens = vit.tokenize(["a red circle", "a very long caption " * 10])
    ids = tokens["input_ids"]
    assert ids.shape == (2, vit.context_length)
    assert int(ids[0, 0]) == tokenizer.bos_token_id and tokenizer.eos_token_id in ids[1].tolist()
    assert tokenizer.eos_token_id != 2  # HF CLIPTextModel treats eos id 2 as the legacy argmax pooling
    # changing a padding position does not change the text feature (pooling reads the end token)
    vit.eval()
    with torch.no_grad():
        a = vit.encode_text(tokens)
        ids2 = ids.clone()
        ids2[0, -1] = 5
        mask = tokens["attention_mask"]
        b = vit.encode_text(ids2, mask)
    torch.testing.assert_close(a[0], b[0])
