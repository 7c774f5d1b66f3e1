"""The transfer metrics: Dice and IoU per mask (segmentation_models_pytorch), ROC AUC per class (sklearn).

Dice and IoU are computed per image and per class from the pixel counts of
``segmentation_models_pytorch.metrics.get_stats``, in float64; a mask pair where both the prediction
and the target are empty scores 1 (nothing to find, nothing found). Two helpers say what a Dice can
mean: :func:`majority_vote` (the prior-only prediction: the pixels inside at least half of the training
masks, the same for every test image) and :func:`mean_thickness` (a structure 2 px thick has a Dice that
is mostly boundary noise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

#: Score of an empty prediction against an empty target (0 / 0 in both formulas): a perfect answer.
EMPTY_PAIR_SCORE = 1.0


def _pixel_counts(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(tp, fp, fn, tn)`` per mask over the last two dims, shaped like the leading dims, as float64."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    leading = pred.shape[:-2]
    # any non-zero value is "in the mask"; smp wants [N, C, ...] integer masks: one channel per mask
    pred, target = (m.bool().reshape(-1, 1, m.shape[-2] * m.shape[-1]).long() for m in (pred, target))
    stats = smp.metrics.get_stats(pred, target, mode="binary")
    # float64 so that the ratios are exact to double precision (smp would divide int64 counts in float32)
    return tuple(s.double().reshape(leading) for s in stats)


def dice_score(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice 2|P∩T| / (|P| + |T|) per mask over the last two dims; 1 where both masks are empty."""
    return smp.metrics.f1_score(*_pixel_counts(pred, target), reduction="none", zero_division=EMPTY_PAIR_SCORE)


def iou_score(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU |P∩T| / |P∪T| per mask over the last two dims; 1 where both masks are empty."""
    return smp.metrics.iou_score(*_pixel_counts(pred, target), reduction="none", zero_division=EMPTY_PAIR_SCORE)


def auc_scores(labels: np.ndarray, scores: np.ndarray, names: Sequence[str] | None = None) -> dict:
    """Per-class ROC AUC and their mean (sklearn). A class with only one label value has no AUC (None)
    and is left out of the mean, which says over how many classes it was taken."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    if labels.shape != scores.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must both be [N, C]")
    names = list(names) if names is not None else [str(c) for c in range(labels.shape[1])]
    per_class: dict[str, float | None] = {}
    for c, name in enumerate(names):
        column = labels[:, c]
        per_class[name] = float(roc_auc_score(column, scores[:, c])) if 0 < column.sum() < len(column) else None
    defined = [v for v in per_class.values() if v is not None]
    return {"per_class": per_class, "mean": float(np.mean(defined)) if defined else float("nan"),
            "n_classes": len(defined)}


def majority_vote(masks: torch.Tensor) -> torch.Tensor:
    """[N, ..., H, W] training masks -> [..., H, W] bool: the pixels inside at least half of them.

    The prior-only baseline of the few-shot protocol: no image is looked at, only where the structure
    usually is. Ties (exactly half, even N) count as inside.
    """
    if len(masks) == 0:
        raise ValueError("majority_vote: no masks")
    return (masks > 0.5).double().mean(0) >= 0.5


def mean_thickness(masks: torch.Tensor) -> float:
    """Mean thickness in pixels of the non-empty masks [..., H, W]: 2 area / boundary length.

    For a band of length L and thickness t the boundary has about 2 L pixels, so 2 L t / 2 L = t; the
    boundary is the mask minus its 3 x 3 erosion (a 1-px line reads as 2 px).
    """
    m = (masks > 0.5).reshape(-1, 1, *masks.shape[-2:]).float()
    m = m[m.flatten(1).sum(1) > 0]
    if len(m) == 0:
        return float("nan")
    eroded = -F.max_pool2d(-F.pad(m, (1, 1, 1, 1)), 3, stride=1)  # 8-neighbour erosion, zero outside
    boundary = (m - eroded).clamp(min=0).flatten(1).sum(1)
    return float((2 * m.flatten(1).sum(1) / boundary.clamp(min=1)).mean())


def prior_dice(train_set, test_set) -> float:
    """Mean test Dice of the majority vote of the training masks (one class), predicted for every image."""
    vote = majority_vote(torch.stack([train_set[i]["masks"] for i in range(len(train_set))]))
    targets = torch.stack([test_set[i]["masks"] for i in range(len(test_set))]) > 0.5
    return float(dice_score(vote.expand_as(targets), targets).mean())
