"""Identification scores on constructed features whose answer is known."""

import numpy as np
import pytest

from edenkit.analysis.identification import (
    identification_scores,
    nearest_centroid_accuracy,
    reference_splits,
    usable_references,
)


def _separable(n_patients=6, n_landmarks=3, noise=0.05, seed=0):
    """Landmark c of every patient sits near the c-th basis vector: perfectly identifiable."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(n_landmarks), n_patients)
    groups = np.repeat(np.arange(n_patients), n_landmarks)
    features = np.eye(n_landmarks)[labels] + noise * rng.standard_normal((len(labels), n_landmarks))
    return features, labels, groups


def test_reference_splits_are_seeded_whole_patients_and_disjoint():
    _, _, groups = _separable()
    splits = reference_splits(groups, 2, trials=3, seed=1)
    assert len(splits) == 3
    for reference, query in splits:
        assert len(np.unique(groups[reference])) == 2 and not (reference & query).any() and (reference | query).all()
        assert not set(groups[reference]) & set(groups[query])  # a patient is reference or query, never both
    again = reference_splits(groups, 2, trials=3, seed=1)
    assert all((a[0] == b[0]).all() for a, b in zip(splits, again))
    with pytest.raises(ValueError, match="at least 7"):
        reference_splits(groups, 6)


def test_separable_features_are_identified_from_one_reference_patient():
    features, labels, groups = _separable()
    assert nearest_centroid_accuracy(features, labels, groups, 1, trials=4)["mean"] == 1.0
    scores = identification_scores(features, labels, groups, k=1, n_splits=3, n_references=(1, 3, 10), trials=2)
    assert scores["knn"] == 1.0 and scores["silhouette"] > 0.8
    assert set(scores["centroid"]) == {1, 3}  # 10 reference patients need 11 patients


def test_features_without_landmark_information_score_at_chance():
    rng = np.random.default_rng(0)
    _, labels, groups = _separable(n_patients=40, n_landmarks=4)
    features = rng.standard_normal((len(labels), 8))  # nothing to do with the landmark
    result = nearest_centroid_accuracy(features, labels, groups, 3, trials=20)
    assert abs(result["mean"] - 0.25) < 0.06


def test_usable_references():
    assert usable_references(np.repeat(np.arange(4), 2)) == [1, 3]
