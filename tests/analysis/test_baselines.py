"""Floors and ceiling of the locality analysis on constructed cases whose answer is known."""

import numpy as np
import torch
import torch.nn.functional as F

from edenkit.analysis import baselines
from edenkit.analysis.embeddings import embed
from edenkit.analysis.identification import identification_scores
from edenkit.analysis.locality import landmark_patches


class _PositionOnly(torch.nn.Module):
    """An 'encoder' that sees only the coarse layout of its input: the mean of each cell of a 4 x 4 grid."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # embed() asks for a parameter's device

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, 4).flatten(1)


def _layout_images(n=8, size=32, seed=0):
    """Images with a bright upper-left quadrant and a grey band: two landmarks told apart by layout."""
    g = torch.Generator().manual_seed(seed)
    images = 0.1 * torch.rand(n, 1, size, size, generator=g)
    images[:, :, : size // 2, : size // 2] += 0.8
    images[:, :, size // 2 :, :] += 0.4
    landmarks = torch.tensor([[size / 4, size / 4], [3 * size / 4, 3 * size / 4], [3 * size / 4, size / 4]])
    return images, landmarks.expand(n, 3, 2).clone()


def test_an_encoder_that_sees_only_position_scores_at_the_thumbnail_floor():
    images, landmarks = _layout_images()
    patches, labels, groups = landmark_patches(images, landmarks, 12, jitter=2.0, seed=0)
    encoder = identification_scores(embed(_PositionOnly(), patches, None), labels, groups, k=3, n_splits=4,
                                    n_references=(1, 3), trials=3)
    floor = identification_scores(baselines.thumbnail_features(patches), labels, groups, k=3, n_splits=4,
                                  n_references=(1, 3), trials=3)
    assert encoder["knn"] == floor["knn"]
    assert all(encoder["centroid"][n]["mean"] == floor["centroid"][n]["mean"] for n in (1, 3))


def _texture_patches(n_patients=8, size=8, seed=0):
    """Three landmarks with the SAME mean intensity and layout but different texture (stripes / checker)."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    textures = [(x % 2).float(), (y % 2).float(), ((x + y) % 2).float()]
    patches, labels, groups = [], [], []
    for patient in range(n_patients):
        for label, texture in enumerate(textures):
            noise = 0.1 * torch.randn(size, size, generator=g)
            patches.append((texture + noise)[None])
            labels.append(label)
            groups.append(patient)
    return torch.stack(patches), np.asarray(labels), np.asarray(groups)


def test_thumbnail_floor_is_at_chance_where_only_texture_tells_landmarks_apart_and_the_ceiling_is_not():
    patches, labels, groups = _texture_patches()
    floor = identification_scores(baselines.thumbnail_features(patches), labels, groups, k=3, n_splits=4,
                                  n_references=(1,), trials=4)
    assert floor["knn"] < 0.6  # chance is 1/3: 4 x 4 means of alternating pixels are all alike
    ceiling = baselines.supervised_ceiling(patches, labels, groups, n_splits=4, n_references=(3,), trials=1,
                                           steps=60)
    assert ceiling["knn"] > 0.9 and ceiling["centroid"][3]["mean"] > 0.9 and ceiling["silhouette"] is None


def test_supervised_accuracy_is_seeded_and_leaves_the_global_rng_alone():
    patches, labels, groups = _texture_patches(n_patients=4)
    train, test = groups < 3, groups >= 3
    state = torch.get_rng_state()
    a = baselines.supervised_accuracy(patches, labels, train, test, steps=5, seed=1)
    assert torch.equal(state, torch.get_rng_state())
    assert a == baselines.supervised_accuracy(patches, labels, train, test, steps=5, seed=1)


def test_locality_references_has_every_floor_and_the_ceiling():
    images, landmarks = _layout_images(n=6, size=32)
    patches, labels, groups = landmark_patches(images, landmarks, 12, jitter=1.0)
    refs = baselines.locality_references(patches, labels, groups, "resnet18", input_size=32, k=1, n_splits=3,
                                         n_references=(1, 3), trials=2, ceiling_steps=3)
    assert tuple(refs["floors"]) == baselines.FLOORS and tuple(refs["ceiling"]) == (baselines.CEILING,)
    assert refs["chance"] == 1 / 3
    for scores in (*refs["floors"].values(), *refs["ceiling"].values()):
        assert 0 <= scores["knn"] <= 1 and set(scores["centroid"]) == {1, 3}
    assert baselines.locality_references(patches, labels, groups, "resnet18", 32, 1, 3, (1,), 1,
                                         ceiling_steps=0)["ceiling"] == {}


def test_floor_features_shapes():
    patches = torch.rand(5, 1, 8, 8)
    assert baselines.raw_pixel_features(patches).shape == (5, 64)
    thumb = baselines.thumbnail_features(patches)
    assert thumb.shape == (5, 16)
    np.testing.assert_allclose(thumb[:, 0], patches[:, 0, :2, :2].mean((1, 2)).numpy(), rtol=1e-6)


def test_where_it_stands():
    assert baselines.where_it_stands(0.9, 0.8, 1.0) == 0.5
    assert baselines.where_it_stands(0.7, 0.8, 1.0) < 0
    assert np.isnan(baselines.where_it_stands(0.5, 0.8, 0.8)) and np.isnan(baselines.where_it_stands(0.5, 0.8, 0.7))
