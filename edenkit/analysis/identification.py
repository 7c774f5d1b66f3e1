"""Landmark identification from any features: kNN and few-reference nearest centroid, patients held out.

The locality analysis asks whether patches of the same landmark in different patients lie close
together. The same functions score an encoder's embeddings and every floor of
:mod:`edenkit.analysis.baselines` (raw pixels, a thumbnail, a random init), so that the numbers are
comparable by construction:

- :func:`knn_accuracy`: each patch takes the majority landmark of its k nearest neighbours (cosine)
  among patches of OTHER patients (GroupKFold over patients). With many reference patients this rewards
  memorising where each landmark sits, which a position prior does well;
- :func:`nearest_centroid_accuracy`: only ``n_reference`` patients (1, 3, 10) are labelled; each landmark
  is the mean of their L2-normalised features and every patch of the other patients takes the landmark
  of the closest centroid (cosine). Few references leave little to memorise;
- :func:`silhouette`: how tight and separate the landmark clusters are (cosine), in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, silhouette_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from edenkit.stats import mean_std

#: Reference patients for the few-reference protocol (nearest centroid).
N_REFERENCES = (1, 3, 10)


def patient_folds(groups: np.ndarray, n_splits: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index pairs of GroupKFold over patients: the folds every kNN-style score uses."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("need patches from at least 2 patients to hold patients out")
    return list(GroupKFold(n_splits=min(n_splits, n_groups)).split(np.zeros(len(groups)), groups=groups))


def knn_accuracy(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = 5,
                 n_splits: int = 5) -> float:
    """Cross-validated kNN accuracy (cosine) with patients held out: neighbours come from other folds."""
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine")
    predicted = cross_val_predict(knn, embeddings, labels, groups=groups, cv=patient_folds(groups, n_splits))
    return float(accuracy_score(labels, predicted))


def reference_splits(groups: np.ndarray, n_reference: int, trials: int = 5,
                     seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per trial, boolean masks ``(reference, query)`` over patches: ``n_reference`` seeded patients vs the rest."""
    patients = np.unique(groups)
    if n_reference >= len(patients):
        raise ValueError(f"{n_reference} reference patients need at least {n_reference + 1} patients, "
                         f"got {len(patients)}")
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(trials):
        reference = np.isin(groups, rng.choice(patients, n_reference, replace=False))
        splits.append((reference, ~reference))
    return splits


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def centroid_predict(features: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                     query: np.ndarray) -> np.ndarray:
    """Landmark of the closest (cosine) class mean of the reference patches, for every query patch."""
    x = _unit(np.asarray(features, dtype=np.float64))
    classes = np.unique(labels[reference])
    centroids = _unit(np.stack([x[reference & (labels == c)].mean(0) for c in classes]))
    return classes[(x[query] @ centroids.T).argmax(1)]


def nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_reference: int,
                              trials: int = 5, seed: int = 0) -> dict:
    """``mean_std`` of the nearest-centroid accuracy over ``trials`` seeded draws of reference patients."""
    accuracies = [float(accuracy_score(labels[query], centroid_predict(features, labels, reference, query)))
                  for reference, query in reference_splits(groups, n_reference, trials, seed)]
    return mean_std(accuracies)


def silhouette(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of the landmark clusters under cosine distance (1 = tight, separated clusters)."""
    return float(silhouette_score(embeddings, labels, metric="cosine"))


def usable_references(groups: np.ndarray, n_references: Sequence[int] = N_REFERENCES) -> list[int]:
    """The reference counts that leave at least one query patient (a small set cannot use 10)."""
    return [n for n in n_references if n < len(np.unique(groups))]


def identification_scores(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = 5,
                          n_splits: int = 5, n_references: Sequence[int] = N_REFERENCES, trials: int = 5,
                          seed: int = 0) -> dict:
    """Every identification score of one feature set: ``{"knn", "silhouette", "centroid": {n: mean_std}}``."""
    features = np.asarray(features, dtype=np.float64)
    return {
        "knn": knn_accuracy(features, labels, groups, k, n_splits),
        "silhouette": silhouette(features, labels),
        "centroid": {n: nearest_centroid_accuracy(features, labels, groups, n, trials, seed)
                     for n in usable_references(groups, n_references)},
    }
