"""Question 2: remedies for the age shortcut, one at a time, on phantom v1/v2. One thread.

The loop of research/moco_dynamics/harness.py (the kit's MoCo, info_nce, TwoViewAugment, AnatomyPairs and
engine.evaluate, with its monitors), plus switches:
  --key-before     keys from the teacher BEFORE this step's EMA update (update after the keys)
  --negatives      queue (kit) | batch (the other keys of this batch only, no queue; chance 1/B)
  --symmetric      both directions (q1.k2 and q2.k1), both key sets enqueued
  --lr / --m       as given (no linear scaling)
  --warmup E       linear warm-up over the first E epochs, per step (session 5)
Monitors (harness.monitors): val_acc (kit evaluate, vs stale queue), val_acc_ema (after one virtual EMA
step), fresh_acc (val q vs current-teacher keys of all 256 val images, chance 0.004), ret (backbone
partner retrieval on paper- or mild-augmented val pairs, eval BN, chance 0.004), lm_err (landmark kNN on
512 un-augmented probe phantoms of the same version, px at 128), eff_rank of val projections.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

THREADS = int(os.environ.get("RECIPE_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(THREADS)
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "moco_dynamics"))
from common import phantom_u8  # noqa: E402
from harness import AMP, CPU, monitors, pairs_loader, param_groups  # noqa: E402

from edenkit import engine  # noqa: E402
from edenkit.moco import MoCo  # noqa: E402
from edenkit.pruner import info_nce  # noqa: E402


def batch_nce(q, k, tau):
    """InfoNCE with the other keys of this batch as the only negatives (same teacher as the positive)."""
    logits = q @ k.T / tau
    labels = torch.arange(len(q))
    loss = F.cross_entropy(logits, labels)
    with torch.no_grad():
        sim = q @ k.T
        eye = torch.eye(len(q), dtype=torch.bool)
        st = {"acc": (logits.argmax(1) == labels).float().mean().item(), "pos_sim": sim[eye].mean().item(),
              "neg_sim": sim[~eye].mean().item()}
    return loss, st


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", type=int, default=2)
    ap.add_argument("--ntrain", type=int, default=1536)
    ap.add_argument("--image", type=int, default=128)
    ap.add_argument("--view", type=int, default=64)
    ap.add_argument("--crop", type=float, nargs=2, default=[0.2, 1.0])
    ap.add_argument("--rot", type=float, default=30.0)
    ap.add_argument("--jitter-p", type=float, default=0.8, help="colour jitter probability (paper 0.8; session 6)")
    ap.add_argument("--blur-p", type=float, default=0.5, help="Gaussian blur probability (paper 0.5; session 6)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.00375)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--m", type=float, default=0.99)
    ap.add_argument("--K", type=int, default=1024)
    ap.add_argument("--T", type=float, default=0.2)
    ap.add_argument("--splits", type=int, default=2)
    ap.add_argument("--symmetric", action="store_true")
    ap.add_argument("--key-before", action="store_true")
    ap.add_argument("--negatives", default="queue", choices=["queue", "batch"])
    ap.add_argument("--mon-at", default="0,1,3,5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=float, default=0.0, help="epochs of linear warm-up (per step), then the cosine")
    args = ap.parse_args()
    mon_at = {int(e) for e in args.mon_at.split(",")}

    torch.manual_seed(args.seed)
    train_u8 = phantom_u8(args.ntrain, args.image, 1000, args.version)
    val_u8 = phantom_u8(256, args.image, 1001, args.version)
    ctx = {"probe": phantom_u8(512, args.image, 777, args.version, with_landmarks=True)}
    args.data = "phantom"  # harness.pairs_loader reads view/crop/rot/batch
    _, train_loader = pairs_loader(train_u8, args, seed=args.seed, train=True)
    val_pairs, val_loader = pairs_loader(val_u8, args, seed=args.seed + 1_000_003, train=False,
                                         batch=min(args.batch, 256))  # 256 val images: one batch at most
    ctx["val_loader"] = val_loader
    items = [val_pairs[i] for i in range(len(val_pairs))]
    ctx["ret_v1"] = torch.stack([it["view1"] for it in items])
    ctx["ret_v2"] = torch.stack([it["view2"] for it in items])

    model = MoCo("resnet18", 128, args.K, args.m, args.T, None, args.splits).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(param_groups(model, args.wd, False), lr=args.lr, momentum=0.9)
    spe = len(train_loader)

    def lr_at(step):  # per-epoch cosine, as the kit's CosineAnnealingLR stepped per epoch
        warm = min(1.0, (step + 1) / (args.warmup * spe)) if args.warmup > 0 else 1.0
        return warm * args.lr * 0.5 * (1 + math.cos(math.pi * (step // spe) / args.epochs))

    out = Path("/tmp/research-recipe/runs") / args.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(vars(args)))
    logf = (out / "log.jsonl").open("w")

    def log(rec):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}), flush=True)

    if 0 in mon_at:
        log({"epoch": 0, **monitors(model, args, ctx)})
    step = 0
    for epoch in range(1, args.epochs + 1):
        train_loader.dataset.set_epoch(epoch)
        model.train()
        sums = {"loss": 0.0, "acc": 0.0, "pos_sim": 0.0, "neg_sim": 0.0}
        t0, nb = time.perf_counter(), 0
        for b in train_loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            v1 = b["view1"].contiguous(memory_format=torch.channels_last)
            v2 = b["view2"].contiguous(memory_format=torch.channels_last)
            with engine.autocast(CPU, AMP):
                if args.key_before:
                    q1 = model._embed(model.encoder_q, v1)
                    k2 = model._keys(v2)
                    if args.symmetric:
                        q2, k1 = model._embed(model.encoder_q, v2), model._keys(v1)
                    model.momentum_update()
                else:
                    q1, k2 = model(v1, v2)  # the kit: EMA update, then keys
                    if args.symmetric:
                        q2, k1 = model._embed(model.encoder_q, v2), model._keys(v1)
            nce = (lambda q, k: batch_nce(q, k, args.T)) if args.negatives == "batch" else \
                (lambda q, k: info_nce(q, k, model.queue, tau=args.T))
            loss, st = nce(q1, k2)
            if args.symmetric:
                loss2, st2 = nce(q2, k1)
                loss, st = loss + loss2, {k: (float(st[k]) + float(st2[k])) / 2 for k in st}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if args.negatives == "queue":
                model.enqueue(torch.cat([k1, k2]) if args.symmetric else k2)
            sums["loss"] += loss.item() / (2 if args.symmetric else 1)
            for k in ("acc", "pos_sim", "neg_sim"):
                sums[k] += float(st[k])
            nb += 1
            step += 1
        rec = {"epoch": epoch, "lr": lr_at(step - 1), **{k: v / nb for k, v in sums.items()},
               "sec": time.perf_counter() - t0}
        if epoch in mon_at or epoch == args.epochs:
            t1 = time.perf_counter()
            rec.update(monitors(model, args, ctx))
            rec["mon_sec"] = time.perf_counter() - t1
        log(rec)


if __name__ == "__main__":
    main()
