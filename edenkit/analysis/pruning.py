"""The pruning profile: what each purposive-pruner threshold removes, collisions versus genuine negatives."""

from __future__ import annotations

import torch


def pruning_profile(
    sims: torch.Tensor, thresholds: list[float], same: torch.Tensor | None = None
) -> dict[str, list[float]]:
    """What each pruning threshold removes, from the query-negative cosines ``sims`` [B, K].

    ``same`` [B, K] (bool, optional) marks the negatives that show the query's own anatomy (a semantic
    collision). Per threshold: ``pruned`` fraction of all negatives; with ``same`` also
    ``pruned_same`` (fraction of the collisions removed), ``pruned_other`` (fraction of genuine
    negatives lost) and ``same_among_pruned`` (share of collisions among what is pruned; NaN when
    nothing is).
    """
    if same is not None and same.shape != sims.shape:
        raise ValueError(f"pruning_profile: same {tuple(same.shape)} must match sims {tuple(sims.shape)}")
    profile: dict[str, list[float]] = {"threshold": [float(t) for t in thresholds], "pruned": []}
    if same is not None:
        profile.update(pruned_same=[], pruned_other=[], same_among_pruned=[])
    for threshold in thresholds:
        pruned = sims >= threshold
        profile["pruned"].append(pruned.float().mean().item())
        if same is not None:
            profile["pruned_same"].append(pruned[same].float().mean().item())
            profile["pruned_other"].append(pruned[~same].float().mean().item())
            profile["same_among_pruned"].append(same[pruned].float().mean().item())
    return profile
