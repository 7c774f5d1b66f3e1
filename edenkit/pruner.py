"""InfoNCE with the purposive pruner, vectorized over the whole batch.

MoCo-v2 scores each query ``q_i`` against its positive key ``k_i`` and the ``K`` keys in the queue
(negatives). At fine granularity many queue keys are the *same anatomy* seen in another patient, and
pushing them away fights the very similarity Adam wants to learn ("semantic collision"). The purposive
pruner removes, for each anchor, the negatives whose cosine similarity with the query is at least the
threshold (0.8 in the paper) from that anchor's softmax denominator; the positive is always kept::

    L_i = -log( exp(q_i.k_i/tau) / (exp(q_i.k_i/tau) + sum_{j: q_i.m_j < thr} exp(q_i.m_j/tau)) )

The released code loops over the batch in Python; here one boolean mask over the B x K logits sets the
pruned logits to -inf before the cross-entropy, which gives the same value (and gradient) in one pass.
Logits are computed in float32 even under bf16/fp16 autocast: a bf16 cosine near 0.8 carries an error
of about 0.002 (enough to flip the threshold test for keys that close to it), and dividing by tau = 0.2
makes it five times larger in the logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def purposive_prune_mask(q: torch.Tensor, queue: torch.Tensor, threshold: float) -> torch.Tensor:
    """Bool [B, K]: True where queue key ``j`` is pruned for query ``i`` (cosine ``q_i . m_j >= threshold``).

    ``q`` [B, D] and ``queue`` [K, D] must be L2-normalized.
    """
    with torch.autocast(q.device.type, enabled=False):
        return q.float() @ queue.float().T >= threshold


def info_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    tau: float = 0.2,
    prune_threshold: float | None = None,
    in_batch: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MoCo-v2's InfoNCE loss (mean over the batch), with the purposive pruner when a threshold is given.

    ``q`` [B, D] queries (with gradient), ``k`` [B, D] positive keys, ``queue`` [K, D] negatives, all
    L2-normalized. ``prune_threshold=None`` is plain InfoNCE (MoCo-v2 and Adam's n=0 stage).
    ``in_batch=True``: the other keys of this batch, ``k_j`` for j != i, are negatives of ``q_i`` too
    (``MoCo(negatives="batch")``, where ``queue`` holds only the other processes' keys of this step and
    may be empty); they come from the same teacher as the positive, so a key's age cannot tell them apart.

    Returns ``(loss, stats)``; ``stats`` holds detached float32 0-dim tensors (so logging every step
    does not force a GPU sync; call ``.item()`` when writing them):
    ``acc`` fraction of queries whose positive scores above every kept negative, ``pos_sim`` mean
    ``q_i . k_i``, ``neg_sim`` mean ``q_i . m_j`` over all queue negatives (pruned or not, so it
    describes the embedding space rather than the threshold), ``frac_pruned`` fraction of the B x K
    negatives pruned (0 without a threshold).
    """
    if q.ndim != 2 or q.shape != k.shape or queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"info_nce expects q [B, D], k [B, D], queue [K, D]; got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(queue.shape)}"
        )
    if queue.shape[0] + (q.shape[0] - 1 if in_batch else 0) < 1:
        raise ValueError(f"info_nce: no negatives (a batch of {q.shape[0]}, {queue.shape[0]} queued keys)")
    with torch.autocast(q.device.type, enabled=False):
        q, k, queue = q.float(), k.float(), queue.float()
        pos = (q * k).sum(dim=1, keepdim=True)  # [B, 1]
        neg = q @ queue.T  # [B, K]
        if in_batch:  # the batch's other keys: q @ k.T without its diagonal (the positives), [B, B - 1]
            others = ~torch.eye(q.shape[0], dtype=torch.bool, device=q.device)
            neg = torch.cat([(q @ k.T)[others].view(q.shape[0], q.shape[0] - 1), neg], dim=1)
        neg_sim = neg.detach().mean()
        pruned = None
        if prune_threshold is not None:
            pruned = neg.detach() >= prune_threshold
            # In place: the matmul's backward does not need its output, and copies of the B x K
            # logits are most of this loss's cost (16.7M floats at the paper's B=256, K=65,536).
            neg.masked_fill_(pruned, float("-inf"))
        logits = torch.cat([pos, neg], dim=1).div_(tau)
        # The positive sits in column 0 of every row.
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, target)

    with torch.no_grad():
        stats = {
            "acc": (logits.argmax(dim=1) == 0).float().mean(),
            "pos_sim": pos.mean(),
            "neg_sim": neg_sim,
            "frac_pruned": pruned.float().mean() if pruned is not None else neg_sim.new_zeros(()),
        }
    return loss, {name: value.detach() for name, value in stats.items()}
