"""The vectorized InfoNCE / purposive pruner against a per-sample reference loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from edenkit.analysis.pruning import pruning_profile
from edenkit.pruner import info_nce, purposive_prune_mask


def reference_loss(q, k, queue, tau, threshold):
    """One anchor at a time, as in the released code: drop negatives with q_i.m_j >= threshold."""
    losses, correct = [], []
    for i in range(q.shape[0]):
        pos = q[i] @ k[i]
        neg = queue @ q[i]
        if threshold is not None:
            neg = neg[neg < threshold]
        logits = torch.cat([pos.view(1), neg]) / tau
        losses.append(-torch.log_softmax(logits, dim=0)[0])
        correct.append(bool((neg < pos).all()))
    return torch.stack(losses).mean(), sum(correct) / len(correct)


def random_inputs(batch=8, size=64, dim=16, spread=1.0, clusters=2, seed=0):
    """Queries and queue keys scattered around a few shared centres ("anatomies"): a small `spread`
    makes many queue keys collide with each query, a large one makes the keys nearly random."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(clusters, dim, generator=g), dim=1)

    def around_centres(count):
        picks = centres[torch.randint(clusters, (count,), generator=g)]
        return F.normalize(picks + spread / dim**0.5 * torch.randn(count, dim, generator=g), dim=1)

    q = around_centres(batch)
    k = F.normalize(q + 0.3 / dim**0.5 * torch.randn(batch, dim, generator=g), dim=1)
    return q, k, around_centres(size)


@pytest.mark.parametrize("threshold", [None, 0.8, 0.5, 0.0])
@pytest.mark.parametrize("spread", [0.3, 1.0])
def test_matches_the_per_sample_loop(threshold, spread):
    q, k, queue = random_inputs(spread=spread)
    q_vec = q.clone().requires_grad_()
    q_ref = q.clone().requires_grad_()
    loss, stats = info_nce(q_vec, k, queue, tau=0.2, prune_threshold=threshold)
    expected, expected_acc = reference_loss(q_ref, k, queue, 0.2, threshold)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(q_vec.grad, q_ref.grad)
    assert stats["acc"].item() == pytest.approx(expected_acc)


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_in_batch_negatives_are_the_other_keys_of_the_batch(threshold):
    q, k, queue = random_inputs(spread=0.3)
    for bank in (queue[:0], queue[:5]):  # one process (no other keys), or other processes' keys
        loss, stats = info_nce(q, k, bank, 0.2, threshold, in_batch=True)
        losses = [reference_loss(q[i:i + 1], k[i:i + 1], torch.cat([k[torch.arange(len(k)) != i], bank]), 0.2,
                                 threshold)[0] for i in range(len(q))]
        torch.testing.assert_close(loss, torch.stack(losses).mean())
    with pytest.raises(ValueError, match="no negatives"):
        info_nce(q[:1], k[:1], queue[:0], in_batch=True)


def test_the_random_inputs_cover_heavy_pruning():
    q, _, queue = random_inputs(spread=0.3)
    assert purposive_prune_mask(q, queue, 0.8).float().mean() > 0.3  # else the test above proves little
    q, _, queue = random_inputs(spread=1.0)
    assert 0.0 < purposive_prune_mask(q, queue, 0.8).float().mean() < 0.1


def test_stats_describe_the_mask():
    q, k, queue = random_inputs(spread=0.5, seed=1)
    _, stats = info_nce(q, k, queue, prune_threshold=0.5)
    mask = purposive_prune_mask(q, queue, 0.5)
    assert mask.shape == (8, 64) and mask.dtype == torch.bool
    torch.testing.assert_close(mask, q @ queue.T >= 0.5)
    assert stats["frac_pruned"].item() == pytest.approx(mask.float().mean().item())
    assert stats["pos_sim"].item() == pytest.approx((q * k).sum(1).mean().item(), abs=1e-6)
    assert stats["neg_sim"].item() == pytest.approx((q @ queue.T).mean().item(), abs=1e-6)
    for value in stats.values():
        assert value.ndim == 0 and value.dtype == torch.float32 and not value.requires_grad


def test_no_threshold_is_plain_infonce():
    q, k, queue = random_inputs(seed=2)
    loss, stats = info_nce(q, k, queue, tau=0.2)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], dim=1) / 0.2
    expected = (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()
    torch.testing.assert_close(loss, expected)
    assert stats["frac_pruned"].item() == 0.0
    # A threshold above every cosine prunes nothing.
    torch.testing.assert_close(info_nce(q, k, queue, tau=0.2, prune_threshold=1.01)[0], loss)


def test_the_positive_survives_when_every_negative_is_pruned():
    q, k, queue = random_inputs(seed=3)
    loss, stats = info_nce(q, k, queue, prune_threshold=-1.01)
    assert loss.item() == 0.0  # only the positive is left in each softmax
    assert stats["frac_pruned"].item() == 1.0 and stats["acc"].item() == 1.0


def test_logits_stay_float32_under_bf16_autocast():
    q, k, queue = random_inputs(size=512, dim=128, spread=0.3, seed=4)
    expected, expected_stats = info_nce(q, k, queue, prune_threshold=0.8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats = info_nce(q, k, queue, prune_threshold=0.8)
        mask = purposive_prune_mask(q, queue, 0.8)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected)
    assert stats["frac_pruned"].item() == expected_stats["frac_pruned"].item()
    torch.testing.assert_close(mask, q @ queue.T >= 0.8)


def test_bad_shapes_name_the_inputs():
    q, k, queue = random_inputs()
    with pytest.raises(ValueError, match="queue"):
        info_nce(q, k, queue[:, :8])
    with pytest.raises(ValueError, match="q \\[B, D\\]"):
        info_nce(q, k[:4], queue)


def test_pruning_profile_splits_collisions_from_genuine_negatives():
    sims = torch.tensor([[0.9, 0.85, 0.3, 0.95], [0.1, 0.82, 0.7, 0.2]])
    same = torch.tensor([[True, False, False, True], [False, True, False, False]])
    profile = pruning_profile(sims, [0.8, 0.9, 0.99], same)
    assert profile["threshold"] == [0.8, 0.9, 0.99]
    assert profile["pruned"] == pytest.approx([4 / 8, 2 / 8, 0.0])
    assert profile["pruned_same"] == pytest.approx([1.0, 2 / 3, 0.0])
    assert profile["pruned_other"] == pytest.approx([1 / 5, 0.0, 0.0])
    assert profile["same_among_pruned"][:2] == pytest.approx([3 / 4, 1.0])
    assert math.isnan(profile["same_among_pruned"][2])
    assert set(pruning_profile(sims, [0.5])) == {"threshold", "pruned"}
