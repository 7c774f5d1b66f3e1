"""What the decomposer and the purposive pruner cost: an Adam step (n = 4, pruner on) against a plain
MoCo-v2 step (n = 0, no pruner) on the same backbone, batch and queue, from one run.

    python benchmarks/bench_pretrain_step.py [--config demo_cpu] [--rounds 5] [--steps 4] [--threads N]

Both steps run through the kit's real path (``AnatomyPairs`` -> ``engine.train_one_epoch``: data,
forward, InfoNCE, backward, SGD, enqueue), with the config's backbone, batch, view size, queue,
precision and memory format. Rounds alternate MoCo-v2 / Adam so that a machine that gets slower or
faster (other processes, turbo) affects both alike; medians are reported. Images/s counts anchors
(one anchor = two views). The data time (decomposition + two-view augmentation, main process) and
the model time are also given apart.

The second part times the InfoNCE loss with the vectorized pruner against the released code's
per-sample loop at the paper's sizes (B = 256, K = 65,536, D = 128), forward + backward, using
``benchmarks/bench_pruner.py``'s loop and inputs. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from edenkit import engine
from edenkit.pretrain import build_model
from edenkit.pretrain_config import autocast_dtype, learning_rate, load_pretrain_config
from edenkit.pretrain_data import ImageTensor, anatomy_pairs, phantom_images
from edenkit.pruner import info_nce

sys.path.insert(0, str(Path(__file__).parent))
from bench_pruner import clustered_inputs, released_loop_loss, time_steps  # noqa: E402

STEPS = {"mocov2": (0, None), "adam": (4, 0.8)}  # granularity n, prune threshold


def fetch_batches(loader: DataLoader) -> tuple[list[dict], float]:
    start = time.perf_counter()
    batches = list(loader)
    return batches, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="demo_cpu")
    parser.add_argument("--rounds", type=int, default=5, help="alternating MoCo-v2 / Adam measurements")
    parser.add_argument("--steps", type=int, default=4, help="training steps per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--pruner-batch", type=int, default=256)
    parser.add_argument("--pruner-queue", type=int, default=65536)
    parser.add_argument("--pruner-repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from edenkit.decomposer import decompose

    cfg = load_pretrain_config(args.config)
    device = torch.device("cpu")
    dtype = autocast_dtype(cfg.precision, device)
    images = ImageTensor(phantom_images(cfg.batch_size * args.steps, cfg.data.image_size, cfg.data.phantom_seed))
    torch.manual_seed(0)
    model = build_model(cfg)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=learning_rate(cfg), momentum=0.9, weight_decay=1e-4)

    def measure(method: str, epoch: int) -> dict:
        n, threshold = STEPS[method]
        pairs = anatomy_pairs(images, n, cfg, seed=0)
        pairs.set_epoch(epoch)
        loader = DataLoader(pairs, batch_size=cfg.batch_size, drop_last=True)
        batches, data_s = fetch_batches(loader)
        result = engine.train_one_epoch(model, batches, optimizer, device=device, prune_threshold=threshold,
                                        autocast_dtype=dtype, channels_last=cfg.channels_last)
        model_s = result["images"] / result["images_per_s"]
        return {"step_ips": result["images"] / (data_s + model_s), "model_ips": result["images_per_s"],
                "data_ips": result["images"] / data_s, "frac_pruned": result["frac_pruned"]}

    measure("mocov2", 0)  # warm-up (allocator, oneDNN kernels)
    measure("adam", 0)
    runs = {"mocov2": [], "adam": []}
    for r in range(args.rounds):
        for method in ("mocov2", "adam") if r % 2 == 0 else ("adam", "mocov2"):
            runs[method].append(measure(method, r + 1))
    med = {m: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for m, rs in runs.items()}

    # The pruner alone at this step's sizes: the loss with and without it, next to the step time.
    tau, thr = 0.2, 0.8
    q, k, queue = clustered_inputs(cfg.batch_size, cfg.model.queue_size, cfg.model.dim)
    step_losses = time_steps(
        {"plain": (lambda x: info_nce(x, k, queue, tau)[0], q), "pruned": (lambda x: info_nce(x, k, queue, tau, thr)[0], q)},
        20,
    )
    step_plain_s, step_pruned_s = step_losses["plain"], step_losses["pruned"]
    step_s = cfg.batch_size / med["mocov2"]["step_ips"]
    # The decomposer alone: drawing the n = 4 part of each image of a batch (the views are made either way).
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for i in range(cfg.batch_size * args.steps):
        decompose(images[i]["image"], 4, cfg.data.decompose_mode, generator)
    decompose_s = (time.perf_counter() - start) / args.steps

    # The loss alone at the paper's sizes: vectorized pruner vs the released per-sample loop.
    q, k, queue = clustered_inputs(args.pruner_batch, args.pruner_queue, 128)
    losses = time_steps(
        {
            "plain": (lambda x: info_nce(x, k, queue, tau)[0], q),
            "vector": (lambda x: info_nce(x, k, queue, tau, thr)[0], q),
            "loop": (lambda x: released_loop_loss(x, k, queue, tau, thr), q),
        },
        args.pruner_repeats,
    )
    plain_s, vector_s, loop_s = losses["plain"], losses["vector"], losses["loop"]
    difference = float((info_nce(q, k, queue, tau, thr)[0] - released_loop_loss(q, k, queue, tau, thr)).abs())

    overhead = 1 - med["adam"]["step_ips"] / med["mocov2"]["step_ips"]
    result = {
        "config": args.config, "arch": cfg.model.arch, "batch": cfg.batch_size, "image_size": cfg.data.image_size,
        "view_size": cfg.data.view_size, "queue": cfg.model.queue_size, "autocast": str(dtype),
        "channels_last": cfg.channels_last, "threads": torch.get_num_threads(), "rounds": args.rounds,
        "steps_per_round": args.steps,
        "mocov2": {k: round(v, 2) for k, v in med["mocov2"].items()},
        "adam": {k: round(v, 2) for k, v in med["adam"].items()},
        "adam_cost_vs_mocov2": round(overhead, 4),
        "pruner_at_step_size": {"plain_infonce_ms": round(1e3 * step_plain_s, 3),
                                "with_pruner_ms": round(1e3 * step_pruned_s, 3),
                                "pruner_cost_of_a_step": round((step_pruned_s - step_plain_s) / step_s, 5)},
        "decomposer_per_batch_ms": round(1e3 * decompose_s, 3),
        "decomposer_cost_of_a_step": round(decompose_s / step_s, 5),
        "pruner": {"batch": args.pruner_batch, "queue": args.pruner_queue, "dim": 128,
                   "plain_infonce_s": round(plain_s, 4), "vectorized_pruner_s": round(vector_s, 4),
                   "per_sample_loop_s": round(loop_s, 4), "speedup": round(loop_s / vector_s, 1),
                   "max_abs_loss_difference": difference},
    }
    print(f"\n{cfg.model.arch}, batch {cfg.batch_size}, {cfg.data.view_size}-px views, K={cfg.model.queue_size}, "
          f"{dtype or 'fp32'}, {torch.get_num_threads()} threads; median of {args.rounds} rounds x {args.steps} steps")
    print(f"{'images/s':<28}{'MoCo-v2 (n=0)':>15}{'Adam (n=4, PP)':>16}")
    for key, label in (("step_ips", "full step (data + model)"), ("model_ips", "model step"), ("data_ips", "data")):
        print(f"{label:<28}{med['mocov2'][key]:>15.1f}{med['adam'][key]:>16.1f}")
    print(f"Adam costs {100 * overhead:+.1f}% vs MoCo-v2 per full step "
          f"(fraction of negatives pruned: {med['adam']['frac_pruned']:.3f})")
    print(f"the pruner alone at B={cfg.batch_size}, K={cfg.model.queue_size}: InfoNCE {1e3 * step_plain_s:.2f} ms -> "
          f"{1e3 * step_pruned_s:.2f} ms with the pruner, {100 * (step_pruned_s - step_plain_s) / step_s:.2f}% of a "
          f"{1e3 * step_s:.0f} ms step")
    print(f"the decomposer alone: {1e3 * decompose_s:.2f} ms per batch, {100 * decompose_s / step_s:.2f}% of a step")
    print(f"\nInfoNCE forward+backward at B={args.pruner_batch}, K={args.pruner_queue}: plain {plain_s:.4f} s, "
          f"vectorized pruner {vector_s:.4f} s, per-sample loop {loop_s:.3f} s ({loop_s / vector_s:.0f}x)")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
