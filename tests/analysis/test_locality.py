"""Locality: landmark patches, kNN identification with patients held out (a toy with a known answer)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from edenkit.analysis.locality import (
    knn_accuracy,
    landmark_patches,
    locality_report,
    read_landmark_file,
    silhouette,
    tsne_2d,
)


def test_patches_are_centred_on_the_landmarks_and_zero_padded():
    image = torch.zeros(1, 1, 20, 20)
    image[0, 0, 5, 8] = 1.0  # (x=8, y=5)
    landmarks = torch.tensor([[[8.0, 5.0], [0.0, 0.0]]])
    patches, labels, groups = landmark_patches(image, landmarks, patch_size=4, groups=["p7"])
    assert patches.shape == (2, 1, 4, 4)
    assert patches[0, 0, 2, 2] == 1.0 and patches[0].sum() == 1.0  # centre of a 4-px patch is (2, 2)
    assert patches[1, 0, :2, :].sum() == 0 and patches[1, 0, :, :2].sum() == 0  # outside the image: zeros
    assert labels.tolist() == [0, 1] and groups.tolist() == ["p7", "p7"]
    with pytest.raises(ValueError, match="landmarks"):
        landmark_patches(image, landmarks[0], 4)


def test_jitter_moves_centres_by_at_most_jitter_and_is_seeded():
    image = torch.zeros(1, 1, 40, 40)
    image[0, 0, 20, 20] = 1.0
    landmarks = torch.tensor([[[20.0, 20.0]]]).repeat(1, 1, 1)
    a = landmark_patches(image, landmarks, 11, jitter=3, seed=1)[0]
    b = landmark_patches(image, landmarks, 11, jitter=3, seed=1)[0]
    assert torch.equal(a, b)
    y, x = (a[0, 0] == 1).nonzero()[0].tolist()
    assert abs(y - 5) <= 3 and abs(x - 5) <= 3  # the dot stays within jitter of the centre


def _angles(degrees):
    rad = np.deg2rad(np.asarray(degrees, dtype=float))
    return np.stack([np.cos(rad), np.sin(rad)], 1)


def test_knn_toy_with_known_answer_holds_patients_out():
    # 4 patients x 2 landmarks in 2-D. Landmark A near 0 degrees, B near 90 degrees, except that patient 3's
    # A patch looks exactly like its own B patch. Held out, A3's nearest neighbour is another patient's
    # B (wrong), and B3 cannot lean on A3: 7 of 8 right. Were patient 3 not held out, A3 would match B3.
    degrees = {(0, 0): 0, (0, 1): 90, (1, 0): 2, (1, 1): 90.5, (2, 0): 4, (2, 1): 91, (3, 0): 91.5, (3, 1): 91.5}
    keys = sorted(degrees)
    emb = _angles([degrees[k] for k in keys])
    groups = np.array([p for p, _ in keys])
    labels = np.array([lm for _, lm in keys])
    assert knn_accuracy(emb, labels, groups, k=1, n_splits=4) == pytest.approx(7 / 8)
    with pytest.raises(ValueError, match="2 patients"):
        knn_accuracy(emb, labels, np.zeros(8), k=1)


def test_silhouette_and_tsne():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    emb = np.concatenate([c + rng.normal(0, 0.1, (10, 3)) for c in centres])
    labels = np.repeat(np.arange(3), 10)
    assert silhouette(emb, labels) > 0.9
    assert silhouette(rng.normal(size=(30, 3)), labels) < 0.2
    points = tsne_2d(emb, seed=0)
    assert points.shape == (30, 2) and np.allclose(points, tsne_2d(emb, seed=0))


class _Mean(torch.nn.Module):
    """An encoder that sees only brightness statistics: enough to tell bright from dark landmarks."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return torch.cat([x.mean((2, 3)), x.amax((2, 3)), 1 - x.mean((2, 3))], 1) * self.scale


def test_report_on_a_toy_set():
    # 6 patients, 2 landmarks: one on a bright square, one on a dark area.
    images = torch.zeros(6, 1, 32, 32)
    images[:, :, 4:12, 4:12] = 1.0
    landmarks = torch.tensor([[8.0, 8.0], [24.0, 24.0]]).expand(6, 2, 2)
    report = locality_report(_Mean(), images, landmarks, patch_size=6, input_size=None, k=1, n_splits=3)
    assert report["knn_accuracy"] == 1.0 and report["chance"] == 0.5
    assert report["centroid"][1]["mean"] == 1.0 and set(report["centroid"]) == {1, 3}  # 10 refs need 11 patients
    assert report["n_patches"] == 12 and report["n_patients"] == 6 and report["tsne"].shape == (12, 2)


def test_landmark_file(tmp_path):
    Image.fromarray(np.full((40, 80), 128, np.uint8)).save(tmp_path / "a.png")
    rows = ["image,patient_id,landmark,x,y", "a.png,p1,left,40,20", "a.png,p1,right,60,10"]
    (tmp_path / "lm.csv").write_text("\n".join(rows) + "\n")
    images, landmarks, patients = read_landmark_file(tmp_path / "lm.csv", size=20, landmark_names=("left", "right"))
    assert images.shape == (1, 1, 20, 20) and patients.tolist() == ["p1"]
    assert landmarks[0].tolist() == [[10.0, 10.0], [15.0, 5.0]]  # scaled with the image
    with pytest.raises(ValueError, match="lacks landmarks"):
        read_landmark_file(tmp_path / "lm.csv", 20, landmark_names=("left", "right", "top"))
    (tmp_path / "bad.csv").write_text("image,x\na.png,1\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        read_landmark_file(tmp_path / "bad.csv", 20)
    assert math.isclose(float(images.mean()), 128 / 255, rel_tol=1e-3)


def test_cli_writes_json(tmp_path):
    import json

    from edenkit.cli import main

    out = tmp_path / "locality.json"
    assert main(["locality", "--encoder", "random", "--n", "4", "--size", "64", "--patch-size", "16",
                 "--input-size", "32", "--jitter", "2", "--k", "1", "--n-references", "1", "3", "--trials", "2",
                 "--ceiling-steps", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n_images"] == 4 and result["jitter"] == 2.0
    assert 0.0 <= result["methods"]["random"]["knn_accuracy"] <= 1.0
    assert set(result["methods"]["random"]["centroid"]) == {"1", "3"}
    assert set(result["floors"]) == {"raw_pixels", "thumbnail_4x4", "random_init"}
    assert set(result["ceiling"]) == {"supervised_cnn"} and result["chance"] == 0.1
    # the random-init floor and a random encoder of the same seed are the same network on the same patches
    assert result["floors"]["random_init"]["knn"] == result["methods"]["random"]["knn_accuracy"]


def test_default_patch_and_jitter_scale_with_the_image():
    from edenkit.analysis.locality import default_patch_and_jitter

    assert default_patch_and_jitter(128) == (16, 8.0)
    assert default_patch_and_jitter(64) == (8, 4.0)
    assert default_patch_and_jitter(64, 20, 0.0) == (20, 0.0)
