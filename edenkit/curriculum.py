"""The coarse-to-fine curriculum: one stage of Adam pretraining at one anatomical granularity n.

Adam-v1 is MoCo-v2 trained in stages of increasing granularity, n = 0 -> 2 -> 4. At level n every
image is decomposed into 2^n parts and one part is the anchor whose two views are the positive pair;
for n > 0 the purposive pruner drops the negatives too similar to the query (n = 0 is plain MoCo-v2).
The MoCo-v2 baseline is the same code with one stage n = 0 and no pruner.

What carries over from one stage to the next: the full model state, both encoders (student and
EMA teacher) and the queue of keys. What starts afresh in every stage: the SGD optimizer (no
momentum buffer from the coarser task) and the cosine schedule (back to the base learning rate).
``pretrain.py`` sets up the run and calls :func:`run_stage` once per stage.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch
from torch.utils.data import Dataset

from edenkit import dist, engine
from edenkit.checkpoint import export_encoder
from edenkit.config import to_dict
from edenkit.moco import MoCo
from edenkit.pretrain_config import PretrainConfig, learning_rate
from edenkit.pretrain_data import pair_loader, set_epoch
from edenkit.run_folder import (
    CHECKPOINT_FORMAT,
    JsonLog,
    RunPaths,
    rng_state,
    save_best_copy,
    save_last,
    set_rng_state,
)

PRUNED_ALMOST_ALL = 0.95  # above this fraction of pruned negatives, InfoNCE has (almost) nothing to push
VAL_SEED_OFFSET = 1_000_003  # validation pairs: fixed views, drawn apart from the training stream


def run_stage(
    cfg: PretrainConfig,
    stage: int,
    model: MoCo,
    net: torch.nn.Module,
    train_images: Dataset,
    val_images: Dataset,
    *,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    scaler: torch.amp.GradScaler | None,
    paths: RunPaths,
    log: JsonLog,
    elapsed: Callable[[], float],
    resume: dict | None = None,
) -> float:
    """Train stage ``stage`` of ``cfg.curriculum`` (granularity n, its epochs); return its best validation loss.

    ``model`` is the MoCo module whose state is saved and exported; ``net`` is what the steps call (the
    same module, or it wrapped in ``DistributedDataParallel``). Each epoch: train, evaluate, log, write
    ``last.pt`` and, at a new lowest validation loss, the stage's best checkpoint. At the end the stage's
    encoder is exported. ``resume`` is the state of a checkpoint written in this stage (from
    ``run_folder.load_resume_state``): the stage goes on after the epoch it holds. ``elapsed()`` is the
    training time so far, over resumed sessions.
    """
    n, epochs = cfg.curriculum.stages[stage], cfg.curriculum.epochs[stage]
    epochs_before = sum(cfg.curriculum.epochs[:stage])
    main = dist.is_main()
    optimizer = torch.optim.SGD(
        model.encoder_q.parameters(), lr=learning_rate(cfg), momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    threshold = cfg.prune_threshold if n > 0 else None  # n = 0 is plain MoCo-v2
    train_loader = pair_loader(train_images, n, cfg, seed=cfg.seed, train=True)
    val_loader = pair_loader(val_images, n, cfg, seed=cfg.seed + VAL_SEED_OFFSET, train=False)
    where = f"stage {stage + 1}/{len(cfg.curriculum.stages)} (n={n})"
    first_epoch, best_val = 0, math.inf
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        first_epoch, best_val = resume["epoch"], resume["best_val_loss"]
        if scaler is not None and "scaler" in resume:
            scaler.load_state_dict(resume["scaler"])
        set_rng_state(resume["rng"], device)  # last: the next random number is the epoch's first

    for epoch in range(first_epoch, epochs):
        global_epoch = epochs_before + epoch
        set_epoch(train_loader, global_epoch)  # new anchors, views and order every epoch
        position = {"stage": stage, "n": n, "epoch": epoch, "global_epoch": global_epoch}
        train = engine.train_one_epoch(
            net, train_loader, optimizer, device=device, prune_threshold=threshold, autocast_dtype=autocast_dtype,
            scaler=scaler, channels_last=cfg.channels_last, epoch=epoch,
            log=lambda r, p=position: log({"split": "step", **p, **r}), log_every=cfg.log_every,
            progress=cfg.progress, desc=f"{where} epoch {epoch + 1}/{epochs}",
        )
        dist.average_batchnorm_stats(model)  # every rank holds the same model from here on
        val = engine.evaluate(
            net, val_loader, device=device, prune_threshold=threshold, autocast_dtype=autocast_dtype,
            channels_last=cfg.channels_last,
        )
        scheduler.step()
        seconds = elapsed()
        log({"split": "train", **position, **train, "seconds": seconds})
        log({"split": "val", **position, **val, "lr": train["lr"], "seconds": seconds})
        if main:
            _report(where, epoch, epochs, train, val, cfg.progress)

        is_best = val["loss"] < best_val
        best_val = min(best_val, val["loss"])
        if main:
            save_last(  # "epoch" counts the epochs done in the stage: where a resumed run starts
                {"format": CHECKPOINT_FORMAT, "config": to_dict(cfg), "stage": stage, "n": n,
                 "epoch": epoch + 1, "global_epoch": global_epoch + 1, "sampler_epoch": global_epoch + 1,
                 "best_val_loss": best_val, "val_loss": val["loss"], "seconds": seconds,
                 "world_size": dist.world_size(), "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 **({"scaler": scaler.state_dict()} if scaler is not None else {}), "rng": rng_state(device)},
                paths,
            )
            if is_best:
                save_best_copy(paths.last, paths.best(stage, n))
        dist.barrier()
    if main:
        export_encoder(model.backbone.state_dict(), paths.stage_encoder(stage, n))
    dist.barrier()
    return best_val


def _report(where: str, epoch: int, epochs: int, train: dict, val: dict, progress: bool) -> None:
    """One line per epoch on stderr (with ``progress``), and a warning when the pruner left nothing to learn."""
    if progress:
        print(f"[pretrain] {where} epoch {epoch + 1}/{epochs}: loss {train['loss']:.4f} acc {train['acc']:.3f} "
              f"val {val['loss']:.4f} pruned {train['frac_pruned']:.3f} {train['images_per_s']:.0f} img/s",
              file=sys.stderr, flush=True)
    if train["frac_pruned"] > PRUNED_ALMOST_ALL:
        print(f"[pretrain] warning: {where} epoch {epoch + 1}: the pruner removed {train['frac_pruned']:.1%} of "
              f"the negatives, so the loss is ~0 and the student has stopped learning. The embeddings had already "
              f"collapsed (mean cosine of the negatives {train['neg_sim']:.2f}); a longer n=0 stage or a higher "
              f"prune_threshold avoids this.", file=sys.stderr, flush=True)
