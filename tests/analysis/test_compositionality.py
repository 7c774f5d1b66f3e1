"""Compositionality: the splits, and a score of exactly 1 for an encoder additive by construction."""

import numpy as np
import pytest
import torch

from edenkit.analysis.compositionality import (
    compositionality_report,
    compositionality_scores,
    cosine,
    random_patches,
    sub_patch_boxes,
)
from edenkit.analysis.embeddings import load_encoder
from edenkit.checkpoint import random_state_dict


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("size", [(12, 12), (10, 17)])
def test_parts_tile_the_patch_exactly(n, size):
    h, w = size
    cover = np.zeros((h, w), int)
    boxes = sub_patch_boxes(h, w, n)
    assert len(boxes) == n
    for y0, x0, y1, x1 in boxes:
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_split_shapes():
    assert sub_patch_boxes(8, 8, 2) == [(0, 0, 8, 4), (0, 4, 8, 8)]  # vertical cut: left | right
    assert sub_patch_boxes(9, 9, 3) == [(0, 0, 9, 3), (0, 3, 9, 6), (0, 6, 9, 9)]  # three vertical strips
    assert sub_patch_boxes(8, 8, 4) == [(0, 0, 4, 4), (0, 4, 4, 8), (4, 0, 8, 4), (4, 4, 8, 8)]  # 2 x 2
    with pytest.raises(ValueError, match="n_parts"):
        sub_patch_boxes(8, 8, 5)


class _AdditiveEncoder(torch.nn.Module):
    """E(x) = sum over pixels of a pixel-wise feature map: E(whole) = sum of E(parts) exactly."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.pixelwise = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 1), torch.nn.Tanh(), torch.nn.Conv2d(8, 16, 1))

    def forward(self, x):
        return self.pixelwise(x).sum((2, 3))


@pytest.mark.parametrize("center", [True, False])
def test_additive_encoder_scores_one(center):
    patches = random_patches(torch.rand(6, 1, 40, 40), patch_size=24, per_image=2, seed=0)
    for n in (2, 3, 4):
        scores = compositionality_scores(_AdditiveEncoder(), patches, n, input_size=None, center=center)
        assert scores.shape == (12,)
        # float32 rounding only: the whole and its parts sum their pixels in different orders, and centring
        # subtracts the mean over patches (up to 3e-6 seen on an AVX512 CPU); a random ResNet scores ~0.5
        np.testing.assert_allclose(scores, 1.0, atol=1e-5)


def test_a_real_encoder_is_not_perfectly_compositional():
    encoder = load_encoder(random_state_dict("resnet18", 0))
    patches = random_patches(torch.rand(4, 1, 64, 64), 32, 2, seed=0)
    report = compositionality_report(encoder, patches, splits=(2, 4), input_size=32)
    assert set(report["scores"]) == {2, 4} and report["all"].shape == (16,)
    assert -1 <= report["mean"] < 0.999
    raw = compositionality_report(encoder, patches, splits=(2,), input_size=32, center=False)
    assert raw["mean"] > 0.9  # non-negative ReLU features: raw cosines crowd near 1 (why the kit centres)


def test_random_patches_are_seeded_and_inside():
    images = torch.arange(2 * 30 * 30, dtype=torch.float).view(2, 1, 30, 30)
    a, b = random_patches(images, 10, 3, seed=5), random_patches(images, 10, 3, seed=5)
    assert a.shape == (6, 1, 10, 10) and torch.equal(a, b)
    assert (a[:3] < 900).all() and (a[3:] >= 900).all()  # image-major
    with pytest.raises(ValueError, match="larger"):
        random_patches(images, 31, 1)


def test_cosine():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(cosine(a, b), [1.0, -1.0])


def test_cli_writes_json(tmp_path):
    import json

    from edenkit.cli import main

    out = tmp_path / "compositionality.json"
    assert main(["compositionality", "--encoder", "random", "--n", "3", "--size", "64", "--patch-size", "32",
                 "--per-image", "2", "--input-size", "32", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n_patches"] == 6 and result["centered"] is True
    assert set(result["methods"]["random"]["per_split_mean"]) == {"2", "3", "4"}
    assert result["methods"]["random"]["cosine"]["n"] == 18


def test_derangement_has_no_fixed_point_and_is_seeded():
    from edenkit.analysis.compositionality import derangement

    for m in (2, 3, 17):
        p = derangement(m, seed=3)
        assert sorted(p) == list(range(m)) and (p != np.arange(m)).all()
        assert (p == derangement(m, seed=3)).all()
    with pytest.raises(ValueError):
        derangement(1)


def test_additive_encoder_scores_high_matched_and_high_shuffled_raw():
    """Non-negative additive features: the raw cosine is 1 matched AND close to 1 shuffled (a small gap),
    so a raw score alone cannot tell part-whole structure from a shared direction."""
    from edenkit.analysis.compositionality import measures

    class NonNegativeAdditive(_AdditiveEncoder):  # pixel-wise features after a ReLU, summed
        def forward(self, x):
            return torch.relu(self.pixelwise(x)).sum((2, 3))

    patches = random_patches(torch.rand(6, 1, 40, 40), patch_size=24, per_image=2, seed=0)
    out = measures(NonNegativeAdditive(), patches, splits=(2, 4), input_size=None)
    assert out["raw"]["matched"]["mean"] > 0.999 and out["raw"]["shuffled"]["mean"] > 0.95
    assert out["raw"]["gap"] < 0.05
    # centred: matched stays exactly 1 (additive by construction), the control no longer does
    assert out["centred"]["matched"]["mean"] > 0.999 and out["centred"]["shuffled"]["mean"] < 0.5


def test_shuffled_equals_matched_when_every_patch_is_the_same():
    from edenkit.analysis.compositionality import matched_and_shuffled

    whole = np.tile(np.random.default_rng(0).random((1, 8)), (5, 1))
    parts = whole * 0.5 + 0.1
    matched, shuffled = matched_and_shuffled(whole, parts, center=False)
    np.testing.assert_allclose(matched, shuffled)


def test_report_has_the_control_and_measures_are_json_ready():
    import json

    from edenkit.analysis.compositionality import (
        feature_extractors,
        jsonable,
        measures,
        random_init_reference,
    )

    patches = random_patches(torch.rand(4, 1, 48, 48), 32, 2, seed=0)
    encoder = load_encoder(random_state_dict("resnet18", 0))
    report = compositionality_report(encoder, patches, splits=(2,), input_size=32)
    assert report["all_shuffled"].shape == (8,) and report["gap"] == report["mean"] - report["shuffled_mean"]
    reference = random_init_reference("resnet18", patches, splits=(2,), input_size=32)
    direct = measures(encoder, patches, splits=(2,), input_size=32)
    assert reference["centred"]["matched"] == direct["centred"]["matched"]  # the same seeded random init
    text = json.dumps(jsonable(direct))
    assert '"per_split": {"2"' in text and "scores" not in text
    head = torch.nn.Sequential(torch.nn.Linear(512, 8))
    extractors = feature_extractors(encoder, head)
    assert set(extractors) == {"backbone", "head"} and extractors["head"](torch.rand(2, 1, 32, 32)).shape == (2, 8)
    assert set(feature_extractors(encoder, None)) == {"backbone"}


def test_cli_writes_the_control_and_the_reference(tmp_path):
    import json

    from edenkit.cli import main

    out = tmp_path / "c.json"
    assert main(["compositionality", "--encoder", "random", "--n", "2", "--size", "48", "--patch-size", "32",
                 "--per-image", "2", "--input-size", "32", "--splits", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    method = result["methods"]["random"]
    assert set(method["backbone"]["centred"]) == {"matched", "shuffled", "gap", "per_split"}
    assert method["head_checkpoint"] is None and "head" not in method
    assert result["reference"]["random_init"]["backbone"]["centred"]["gap"] == method["backbone"]["centred"]["gap"]
