"""Vectorized purposive pruner vs the released code's per-sample loop, at the paper's sizes.

    python benchmarks/bench_pruner.py [--batch 256] [--queue 65536] [--dim 128] [--repeats 3] [--device cpu]

Both versions compute the InfoNCE loss with pruning threshold 0.8 and its backward pass (what one
training step pays); plain InfoNCE (no pruner) is timed alongside, interleaved with both. The loop
follows the released code (``PurposivePrunerLoss``): per anchor, a mask over its K negatives,
``masked_select`` and a cross-entropy. Prints JSON.

The loop runs on the whole batch. Its cost cannot be extrapolated from a few anchors: each anchor's
``logits[i]`` is a row of the B x (K + 1) logits, and autograd's backward of that row writes a dense
B x (K + 1) gradient and adds it to the others, so the backward does B x B x K work (a linear
extrapolation from 16 of 256 anchors was 16x too low; the forward alone is linear in B). The loop's
forward and backward are reported apart.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from edenkit.pruner import info_nce


def released_loop_loss(q, k, queue, tau, threshold):
    """The released code's per-sample pruner: logits/tau with the positive first, then one loop per anchor."""
    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = q @ queue.T
    logits = torch.cat([l_pos, l_neg], dim=1) / tau
    keep_positive = torch.ones(1, dtype=torch.bool, device=q.device)
    label = torch.zeros(1, dtype=torch.long, device=q.device)
    losses = []
    for i in range(q.shape[0]):
        mask = torch.cat([keep_positive, l_neg[i] < threshold])
        losses.append(F.cross_entropy(torch.masked_select(logits[i], mask).unsqueeze(0), label))
    return torch.stack(losses).mean()


def clustered_inputs(batch, queue_size, dim, seed=0):
    """Embeddings around 64 shared centres ("anatomies"), so that about 1/64 of the negatives collide."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(64, dim, generator=g), dim=1)

    def around(count, spread=0.3):
        picks = centres[torch.randint(64, (count,), generator=g)]
        return F.normalize(picks + spread / dim**0.5 * torch.randn(count, dim, generator=g), dim=1)

    q = around(batch)
    return q, around(batch), around(queue_size)


def time_steps(candidates: dict, repeats: int) -> dict[str, float]:
    """Median seconds of forward + backward for each ``name: (loss_fn, q)``, measured interleaved
    (one run of each per round) so that a change in machine load affects all of them alike."""
    times = {name: [] for name in candidates}
    for round_ in range(repeats + 1):  # round 0 warms up
        for name, (loss_fn, q) in candidates.items():
            leaf = q.clone().requires_grad_()
            _synchronize(q.device)
            start = time.perf_counter()
            loss_fn(leaf).backward()
            _synchronize(q.device)
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


@torch.no_grad()
def time_forward(loss_fn, q: torch.Tensor, repeats: int) -> float:
    """Median seconds of the forward alone (no graph kept)."""
    times = []
    for round_ in range(repeats + 1):
        _synchronize(q.device)
        start = time.perf_counter()
        loss_fn(q)
        _synchronize(q.device)
        if round_:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--queue", type=int, default=65536)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    tau, thr = 0.2, args.threshold
    q, k, queue = (x.to(args.device) for x in clustered_inputs(args.batch, args.queue, args.dim))
    seconds = time_steps(
        {
            "plain": (lambda x: info_nce(x, k, queue, tau)[0], q),
            "vectorized": (lambda x: info_nce(x, k, queue, tau, thr)[0], q),
            "loop": (lambda x: released_loop_loss(x, k, queue, tau, thr), q),
        },
        args.repeats,
    )
    plain_s, vector_s, loop_s = seconds["plain"], seconds["vectorized"], seconds["loop"]
    loop_forward_s = time_forward(lambda x: released_loop_loss(x, k, queue, tau, thr), q, args.repeats)

    vectorized, stats = info_nce(q, k, queue, tau, thr)
    loop = released_loop_loss(q, k, queue, tau, thr)
    result = {
        "batch": args.batch,
        "queue": args.queue,
        "dim": args.dim,
        "threshold": thr,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "frac_pruned": round(stats["frac_pruned"].item(), 4),
        "plain_infonce_s": round(plain_s, 4),
        "vectorized_pruner_s": round(vector_s, 4),
        "loop_s": round(loop_s, 3),
        "loop_forward_s": round(loop_forward_s, 3),
        "loop_backward_s": round(loop_s - loop_forward_s, 3),
        "loop_measured_on": f"all {args.batch} anchors",
        "speedup": round(loop_s / vector_s, 1),
        "pruning_overhead_vs_plain": round(vector_s / plain_s - 1, 3),
        "max_abs_loss_diff": float((vectorized - loop).abs()),
        "what": "median forward+backward seconds of the InfoNCE loss for one training step",
    }
    print(json.dumps(result, indent=2))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
