"""Floors and a ceiling for the locality analysis: where an encoder's landmark-identification score stands.

A landmark-identification score means little alone: on the phantom a patch a quarter of the image wide
is identified from its coarse bright/dark layout, i.e. from where it sits in the chest, without any
learned anatomy. Every number of :mod:`edenkit.analysis.locality` is therefore reported beside
references computed by the same code (:func:`edenkit.analysis.identification.identification_scores`)
on the same patches:

- floors (no learning): ``raw_pixels`` (the patch's pixels as a vector), ``thumbnail_4x4`` (the 16
  mean intensities of a 4 x 4 grid: position and coarse layout only) and ``random_init`` (an untrained
  network of the encoder's architecture, seeded). An encoder at the thumbnail floor has learned nothing
  a position prior does not already give;
- ceiling: ``supervised_cnn``, a small CNN trained with the landmark labels of the reference patients
  (the training folds for the dense protocol, the ``n`` reference patients for the few-reference one)
  and tested on the held-out patients. It says how far labelled training gets on these patches: what
  self-supervision could reach if it learned exactly the right features.

An encoder's score is then read as a position between the highest floor and the ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edenkit.analysis.embeddings import embed, load_encoder, resize
from edenkit.analysis.identification import (
    N_REFERENCES,
    identification_scores,
    patient_folds,
    reference_splits,
    usable_references,
)
from edenkit.checkpoint import random_state_dict
from edenkit.stats import mean_std

FLOORS = ("raw_pixels", "thumbnail_4x4", "random_init")
CEILING = "supervised_cnn"


def raw_pixel_features(patches: torch.Tensor) -> np.ndarray:
    """[M, 1, p, p] -> [M, p*p]: the patch itself, as the kNN sees it."""
    return patches.flatten(1).double().numpy()


def thumbnail_features(patches: torch.Tensor, grid: int = 4) -> np.ndarray:
    """[M, 1, p, p] -> [M, grid*grid]: mean intensity per cell of a ``grid`` x ``grid`` split of the patch."""
    return F.adaptive_avg_pool2d(patches.float(), grid).flatten(1).double().numpy()


def floor_features(patches: torch.Tensor, arch: str, input_size: int | None, seed: int = 0) -> dict[str, np.ndarray]:
    """The features of every floor of :data:`FLOORS` for the same patches."""
    random_encoder = load_encoder(random_state_dict(arch, seed))
    return {"raw_pixels": raw_pixel_features(patches), "thumbnail_4x4": thumbnail_features(patches),
            "random_init": embed(random_encoder, patches, input_size)}


# ----------------------------------------------------------------------------------------------------
# The ceiling: a small CNN trained on the reference patients' landmark labels
# ----------------------------------------------------------------------------------------------------


def small_cnn(n_classes: int, width: int = 8) -> nn.Module:
    """Three conv-BN-ReLU-pool blocks (width, 2 width, 4 width channels), global pooling, a linear layer."""
    blocks, channels = [], 1
    for out in (width, 2 * width, 4 * width):
        blocks += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        channels = out
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, n_classes))


def supervised_accuracy(patches: torch.Tensor, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                        input_size: int | None = None, steps: int = 300, batch_size: int = 32, lr: float = 3e-3,
                        seed: int = 0) -> float:
    """Train :func:`small_cnn` on ``patches[train]`` (Adam, cross-entropy), return its accuracy on ``patches[test]``.

    ``train`` and ``test`` are boolean masks or index arrays; ``input_size`` None trains on the patches as
    cut (resizing adds no information). Seeded; the global RNG is left alone. On 24 phantoms of 128 px
    (32-px patches, jitter 8, 19 training patients) 200 steps reach 0.86 and 400 steps 0.90 (measured,
    1 thread): a ceiling, not the best possible classifier.
    """
    x = resize(patches.float(), input_size)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    train, test = (torch.as_tensor(np.flatnonzero(m) if np.asarray(m).dtype == bool else np.asarray(m))
                   for m in (train, test))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = small_cnn(int(y.max()) + 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
        model.train()
        for _ in range(steps):
            batch = train[torch.randint(len(train), (min(batch_size, len(train)),))]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(chunk).argmax(1) for chunk in x[test].split(256)])
    return float((predicted == y[test]).double().mean())


def supervised_ceiling(patches: torch.Tensor, labels: np.ndarray, groups: np.ndarray, input_size: int | None = None,
                       n_splits: int = 5, n_references: Sequence[int] = N_REFERENCES, trials: int = 5,
                       seed: int = 0, steps: int = 300) -> dict:
    """The ceiling under both protocols, on the same patient splits as the identification scores.

    ``"knn"``: trained on the training folds of :func:`patient_folds` (every other patient labelled),
    tested on the held-out fold; ``"centroid"``: trained on the ``n`` reference patients of
    :func:`reference_splits`, tested on the rest. ``"silhouette"`` is None (no single embedding).
    """
    correct = 0
    for fold, (train, test) in enumerate(patient_folds(groups, n_splits)):
        correct += supervised_accuracy(patches, labels, train, test, input_size, steps, seed=seed + fold) * len(test)
    centroid = {}
    for n in usable_references(groups, n_references):
        centroid[n] = mean_std([supervised_accuracy(patches, labels, reference, query, input_size, steps, seed=seed + t)
                                for t, (reference, query) in enumerate(reference_splits(groups, n, trials, seed))])
    return {"knn": correct / len(labels), "silhouette": None, "centroid": centroid}


def locality_references(patches: torch.Tensor, labels: np.ndarray, groups: np.ndarray, arch: str,
                        input_size: int | None = None, k: int = 5, n_splits: int = 5,
                        n_references: Sequence[int] = N_REFERENCES, trials: int = 5, seed: int = 0,
                        ceiling_steps: int = 300, ceiling_references: Sequence[int] | None = None) -> dict:
    """``{"floors": {name: scores}, "ceiling": {"supervised_cnn": scores}, "chance"}`` for these patches.

    ``scores`` has the keys of :func:`identification_scores`; ``arch`` is the encoders' architecture (the
    random-init floor). ``ceiling_steps=0`` leaves the ceiling out; ``ceiling_references`` (default:
    ``n_references``) are the few-reference protocols the ceiling is trained for, one CNN per trial each.
    """
    floors = {name: identification_scores(features, labels, groups, k, n_splits, n_references, trials, seed)
              for name, features in floor_features(patches, arch, input_size, seed).items()}
    ceiling = {}
    if ceiling_steps:
        few = n_references if ceiling_references is None else ceiling_references
        ceiling[CEILING] = supervised_ceiling(patches, labels, groups, None, n_splits, few, trials, seed, ceiling_steps)
    return {"floors": floors, "ceiling": ceiling, "chance": 1.0 / len(np.unique(labels))}


def where_it_stands(score: float, floor: float, ceiling: float) -> float:
    """``(score - floor) / (ceiling - floor)``: 0 at the floor, 1 at the ceiling; NaN when the ceiling is not
    above the floor (there is then no room in which to place a score)."""
    span = ceiling - floor
    return float("nan") if span < 1e-12 else float((score - floor) / span)
