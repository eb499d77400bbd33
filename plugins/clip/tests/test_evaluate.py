"""Zero-shot classifier weights, Recall@K, retrieval and the linear probe against hand-computed expectations."""

import pytest
import reference as ref
import torch
from paperloom_clip.evaluate import recall_at_k, retrieval, text_features, zero_shot, zero_shot_classifier


def test_zero_shot_weights_are_the_mean_of_normalized_template_embeddings(vit):
    names, templates = ["red circle", "blue square", "green triangle"], ["a {}.", "a photo of a {}.", "{}!"]
    got = zero_shot_classifier(vit, names, templates)
    expected = ref.zero_shot_weights(lambda t: text_features(vit, [t])[0], names, templates)
    torch.testing.assert_close(got, expected.float(), rtol=1e-5, atol=1e-6)
    single = zero_shot_classifier(vit, names, templates[:1])  # one template: just its normalized embedding
    torch.testing.assert_close(single, text_features(vit, [templates[0].format(n) for n in names]))


def test_recall_at_k_by_hand():
    sim = torch.tensor([[0.9, 0.1, 0.0],    # row 0: match ranks 1st
                        [0.8, 0.5, 0.9],    # row 1: match ranks 3rd
                        [0.1, 0.7, 0.3]])   # row 2: match ranks 2nd
    assert recall_at_k(sim, (1, 2, 3)) == {"r@1": pytest.approx(1 / 3), "r@2": pytest.approx(2 / 3), "r@3": 1.0}


class Oracle(torch.nn.Module):
    """An encoder that maps image i and caption i to the same one-hot feature: perfect retrieval / zero-shot."""

    visual_projection = torch.nn.Linear(8, 8)
    image_size = 4

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def encode_image(self, x):
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].round().long(), 8).float()

    def tokenize(self, texts):
        return {"input_ids": torch.tensor([int("".join(c for c in t if c.isdigit())) for t in texts])}

    def encode_text(self, tokens):
        return torch.nn.functional.one_hot(tokens["input_ids"], 8).float()


def test_retrieval_and_zero_shot_of_a_perfect_encoder():
    texts = [f"t{i}" for i in range(6)]
    pairs = [{"image": torch.full((3, 4, 4), float(i)), "text": t} for i, t in enumerate(texts)]
    model = Oracle()
    out = retrieval(model, pairs)
    assert all(v == 1.0 for v in out.values()) and "text_to_image_r@10" in out
    images = [(torch.full((3, 4, 4), float(i % 6)), i % 6) for i in range(12)]
    labels = torch.tensor([y for _, y in images])
    assert zero_shot(model, images, labels, texts, ["a {}."])["zero_shot_top1"] == 1.0
    shuffled = torch.roll(labels, 1)
    assert zero_shot(model, images, shuffled, texts, ["a {}."])["zero_shot_top1"] == 0.0


def test_linear_probe_separates_linearly_separable_features(tmp_path):
    import numpy as np
    from paperloom_clip.data import image_folder
    from paperloom_clip.evaluate import linear_probe
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 4)):  # 3 classes: a red, green or blue image with pixel noise
        for c, name in enumerate(("red", "green", "blue")):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 120, (8, 8, 3))
                img[..., c] += 120
                Image.fromarray(img.astype(np.uint8)).save(tmp_path / split / name / f"{i}.png")
    train, test = (image_folder(str(tmp_path / s), 8)[0] for s in ("train", "test"))

    class Pixels(torch.nn.Module):  # raw pixels as features
        visual_projection = torch.nn.Linear(192, 192)

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def encode_image(self, x):
            return x.flatten(1)

    assert linear_probe(Pixels(), train, test, c=10.0)["linear_probe_acc"] == 1.0

    class Constant(Pixels):  # features that carry no information: chance-level
        def encode_image(self, x):
            return torch.ones(x.shape[0], 4)

    assert linear_probe(Constant(), train, test)["linear_probe_acc"] == pytest.approx(1 / 3)
