"""Fine-tuning a pretrained encoder for segmentation or classification, and ``python -m edenkit finetune``.

The paper's transfer protocol (docs/method.md, "How the paper evaluates"):
- segmentation: U-Net with the pretrained ResNet encoder, Adam lr 1e-3, soft-Dice loss, early stopping
  on a validation split; Dice (and IoU for ChestX-Det) on the test split;
- classification: the ResNet with a linear head, Adam lr 2e-4, BCE, per-class and mean AUC;
- several seeded runs, reported as mean and std, methods compared with t-tests
  (``edenkit.stats``).

The tasks and their splits are in :mod:`edenkit.transfer.tasks`, the metrics in
:mod:`edenkit.transfer.metrics`. Training is counted in optimizer steps rather than epochs, so that a
3-image few-shot set and a 75,000-image set share one loop: evaluate every ``eval_every`` steps, keep the
best weights, stop after ``patience`` evaluations without improvement.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import segmentation_models_pytorch as smp
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from edenkit.checkpoint import (
    add_encoder_arguments,
    load_into_resnet,
    load_into_unet,
    parse_encoder_specs,
    resolve_encoder,
)
from edenkit.models.backbones import GreyEncoder
from edenkit.models.segmentation import DEFAULT_DECODER_CHANNELS, SegmentationUNet
from edenkit.phantom import add_version_argument
from edenkit.stats import mean_std
from edenkit.transfer.metrics import auc_scores, dice_score, iou_score
from edenkit.transfer.tasks import TRANSFER_TASKS, transfer_splits

# ----------------------------------------------------------------------------------------------------
# Training loop shared by both tasks
# ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FinetuneConfig:
    arch: str = "resnet50"
    lr: float | None = None  # None: the paper's 1e-3 (segmentation) or 2e-4 (classification)
    batch_size: int = 8
    max_steps: int = 2000
    eval_every: int = 100  # steps between validations
    patience: int = 5  # validations without improvement before stopping
    threshold: float = 0.5  # on the sigmoid, for masks
    decoder_channels: tuple[int, ...] = DEFAULT_DECODER_CHANNELS
    num_workers: int = 0
    device: str = "cpu"


def _loader(dataset, batch_size: int, cfg: FinetuneConfig, generator: torch.Generator | None = None):
    sampler = RandomSampler(dataset, generator=generator) if generator is not None else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=cfg.num_workers,
                      drop_last=False)


def _forever(dataset, cfg: FinetuneConfig, generator: torch.Generator):
    while True:
        yield from _loader(dataset, min(cfg.batch_size, len(dataset)), cfg, generator)


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam, fused where this torch build has it (on CPU about 5x faster per step for a ResNet-18 U-Net)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without a fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


def _worker_setup() -> None:
    """One thread per worker; Ctrl-C (and a Jupyter kernel's shutdown) is the main process's to handle,
    so an idle worker does not print a KeyboardInterrupt traceback."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def map_jobs(function: Callable, jobs: Sequence[dict], workers: int = 1):
    """``function(**job)`` for every job, in order, in ``workers`` processes (one thread each) when > 1.

    Separate single-threaded processes use small CPUs better than one process with several threads
    for the small images of the demo. ``function`` must be importable (defined in a module) and the jobs
    picklable. Yields results in job order as they become available.
    """
    if workers <= 1:
        for job in jobs:
            yield function(**job)
        return
    context = multiprocessing.get_context("spawn")  # safe inside Jupyter kernels and with threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_setup) as pool:
        futures = [pool.submit(function, **job) for job in jobs]
        for future in futures:
            yield future.result()


def train_with_early_stopping(model: nn.Module, loss_fn: Callable, target_key: str, train_set, validate: Callable,
                              cfg: FinetuneConfig, lr: float, generator: torch.Generator) -> dict:
    """Adam on ``loss_fn(model(image), item[target_key])``; keep the weights with the best ``validate(model)``."""
    device = torch.device(cfg.device)
    optimizer = _adam(model, lr)
    best = {"score": -float("inf"), "step": 0, "state": copy.deepcopy(model.state_dict())}
    history, waited = [], 0
    batches = _forever(train_set, cfg, generator)
    for step in range(1, cfg.max_steps + 1):
        model.train()
        batch = next(batches)
        loss = loss_fn(model(batch["image"].to(device)), batch[target_key].to(device).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            score = validate(model)
            history.append({"step": step, "train_loss": loss.item(), "val_score": score})
            if score > best["score"] or best["step"] == 0:  # NaN never wins, but the first evaluation counts
                best, waited = {"score": score, "step": step, "state": copy.deepcopy(model.state_dict())}, 0
            else:
                waited += 1
                if waited >= cfg.patience:
                    break
    model.load_state_dict(best["state"])
    return {"best_val": best["score"], "best_step": best["step"], "steps": step, "history": history}


# ----------------------------------------------------------------------------------------------------
# Segmentation
# ----------------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_segmentation(model: nn.Module, dataset, cfg: FinetuneConfig) -> dict[str, np.ndarray]:
    """Per-image, per-class Dice and IoU: ``{"dice": [N, K], "iou": [N, K]}``."""
    model.eval()
    device = torch.device(cfg.device)
    dice, iou = [], []
    for batch in _loader(dataset, max(cfg.batch_size, 16), cfg):
        pred = torch.sigmoid(model(batch["image"].to(device))) > cfg.threshold
        target = batch["masks"].to(device) > 0.5
        dice.append(dice_score(pred, target).cpu())
        iou.append(iou_score(pred, target).cpu())
    return {"dice": torch.cat(dice).numpy(), "iou": torch.cat(iou).numpy()}


def finetune_segmentation(encoder_state: dict[str, torch.Tensor] | None, train_set, val_set, test_set,
                          classes: Sequence[str], cfg: FinetuneConfig | None = None, seed: int = 0,
                          keep_model: bool = False) -> dict:
    """Fine-tune a U-Net (encoder from ``encoder_state``, random when None) on masks; test Dice and IoU.

    Returns ``{"dice": {class: mean}, "iou": {class: mean}, "mean_dice", "mean_iou", "best_val", "best_step",
    "steps", "seconds", "history"}`` (plus ``"model"`` with ``keep_model``); Dice/IoU are fractions in
    [0, 1], averaged over test images.
    """
    cfg = cfg or FinetuneConfig()
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # a seeded decoder init that leaves the caller's RNG alone
        torch.manual_seed(seed)
        model = SegmentationUNet(cfg.arch, len(classes), cfg.decoder_channels)
    if encoder_state is not None:
        load_into_unet(model.unet, encoder_state)
    model.to(cfg.device)
    dice_loss = smp.losses.DiceLoss(mode="multilabel", from_logits=True)

    def validate(m):
        return float(evaluate_segmentation(m, val_set, cfg)["dice"].mean())

    generator = torch.Generator().manual_seed(seed)
    fit = train_with_early_stopping(model, dice_loss, "masks", train_set, validate, cfg,
                                    cfg.lr if cfg.lr is not None else 1e-3, generator)
    test = evaluate_segmentation(model, test_set, cfg)
    dice, iou = test["dice"].mean(0), test["iou"].mean(0)
    out = {
        "dice": dict(zip(classes, map(float, dice))), "iou": dict(zip(classes, map(float, iou))),
        "mean_dice": float(dice.mean()), "mean_iou": float(iou.mean()),
        **fit, "seconds": time.perf_counter() - start,
    }
    return {**out, "model": model.eval()} if keep_model else out


# ----------------------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------------------


def build_classifier(arch: str, num_classes: int, encoder_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """Grey image -> ``num_classes`` logits: the ResNet trunk (loaded strictly) and a linear head."""
    encoder = GreyEncoder(arch)
    if encoder_state is not None:
        load_into_resnet(encoder.net, encoder_state)
    return nn.Sequential(encoder, nn.Linear(encoder.dim, num_classes))


@torch.no_grad()
def predict_labels(model: nn.Module, dataset, cfg: FinetuneConfig) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    labels, scores = [], []
    for batch in _loader(dataset, max(cfg.batch_size, 32), cfg):
        scores.append(torch.sigmoid(model(batch["image"].to(cfg.device))).cpu())
        labels.append(batch["labels"])
    return torch.cat(labels).numpy(), torch.cat(scores).numpy()


def finetune_classification(encoder_state: dict[str, torch.Tensor] | None, train_set, val_set, test_set,
                            class_names: Sequence[str], cfg: FinetuneConfig | None = None, seed: int = 0) -> dict:
    """Fine-tune ResNet + linear head with BCE; test per-class and mean AUC (validation picks the weights).

    Returns ``{"auc": {class: auc or None}, "mean_auc", "best_val", "best_step", "steps", "seconds", "history"}``.
    """
    cfg = cfg or FinetuneConfig()
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier(cfg.arch, len(class_names), encoder_state)
    model.to(cfg.device)

    def validate(m):
        labels, scores = predict_labels(m, val_set, cfg)
        auc = auc_scores(labels, scores)["mean"]
        if np.isfinite(auc):
            return auc
        # no class has both label values in this validation set: fall back to the (negated) BCE
        return -float(nn.functional.binary_cross_entropy(torch.as_tensor(scores), torch.as_tensor(labels).float()))

    generator = torch.Generator().manual_seed(seed)
    fit = train_with_early_stopping(model, nn.functional.binary_cross_entropy_with_logits, "labels", train_set,
                                    validate, cfg, cfg.lr if cfg.lr is not None else 2e-4, generator)
    test = auc_scores(*predict_labels(model, test_set, cfg), names=class_names)
    return {"auc": test["per_class"], "mean_auc": test["mean"], **fit, "seconds": time.perf_counter() - start}


# ----------------------------------------------------------------------------------------------------
# A task of TRANSFER_TASKS
# ----------------------------------------------------------------------------------------------------


def run_transfer(name: str, encoder_state: dict[str, torch.Tensor] | None, splits, cfg: FinetuneConfig,
                 seed: int = 0, keep_model: bool = False) -> dict:
    """Fine-tune on a task's splits (from ``transfer_splits``) and add the task's headline ``score``."""
    task = TRANSFER_TASKS[name]
    train, val, test, classes = splits
    if task.kind == "segmentation":
        out = finetune_segmentation(encoder_state, train, val, test, classes, cfg, seed, keep_model)
    else:
        out = finetune_classification(encoder_state, train, val, test, classes, cfg, seed)
    out["score"] = out[{"dice": "mean_dice", "iou": "mean_iou", "auc": "mean_auc"}[task.metric]]
    out["metric"] = task.metric
    return out


# ----------------------------------------------------------------------------------------------------
# CLI: python -m edenkit finetune
# ----------------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--task", required=True, choices=sorted(TRANSFER_TASKS))
    add_encoder_arguments(parser)
    parser.add_argument("--data-root", default=None, help="folder of the real datasets (not for phantom_* tasks)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (224 in the paper)")
    parser.add_argument("--phantom-counts", type=int, nargs=3, default=[64, 16, 32], metavar=("TRAIN", "VAL", "TEST"))
    add_version_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--lr", type=float, default=None, help="default: 1e-3 segmentation, 2e-4 classification")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, help="JSON file to write")


def run(args) -> int:
    cfg = FinetuneConfig(arch=args.arch, lr=args.lr, batch_size=args.batch_size, max_steps=args.max_steps,
                         eval_every=args.eval_every, patience=args.patience, num_workers=args.num_workers,
                         device=args.device)
    results: dict = {"task": args.task, "config": dataclasses.asdict(cfg), "seeds": args.seeds, "methods": {}}
    splits_by_seed = {}
    for name, spec in parse_encoder_specs(args.encoder).items():
        runs = []
        for seed in args.seeds:
            if seed not in splits_by_seed:  # the same data for every method
                splits_by_seed[seed] = transfer_splits(args.task, args.size, seed, args.data_root,
                                                       tuple(args.phantom_counts),
                                                       phantom_version=args.phantom_version)
            out = run_transfer(args.task, resolve_encoder(spec, args.arch, seed), splits_by_seed[seed], cfg, seed)
            out.pop("history")
            runs.append(out)
            print(f"{name} seed {seed}: {out['metric']} {out['score']:.4f} ({out['seconds']:.0f} s)")
        results["methods"][name] = {"encoder": spec, "runs": runs, "score": mean_std([r["score"] for r in runs])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0
