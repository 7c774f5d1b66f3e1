"""Fine-tuning a pretrained encoder: segmentation and multi-label classification.

The paper's transfer protocol (METHOD.md, "Evaluation protocols"):
- segmentation: U-Net with the pretrained ResNet encoder, Adam lr 1e-3, soft-Dice loss, early stopping
  on a validation split; Dice (and IoU for ChestX-Det) on the test split;
- classification: the ResNet with a linear head, Adam lr 2e-4, BCE, per-class and mean AUC;
- several seeded runs, reported as mean and std, methods compared with t-tests
  (``edenkit.stats``).

Datasets are the kit's item dicts (``image`` [1, H, W] in [0, 1] plus ``masks`` [S, H, W] or ``labels``
[C]); a plain list of such dicts works too, which is how small sets are kept in memory.
Training is counted in optimizer steps rather than epochs, so that a 3-image few-shot set and a
75,000-image set share one loop: evaluate every ``eval_every`` steps, keep the best weights, stop after
``patience`` evaluations without improvement.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import segmentation_models_pytorch as smp
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from edenkit.checkpoint import add_encoder_arguments, load_into_resnet, load_into_unet, parse_encoder_specs
from edenkit.models.backbones import GreyEncoder
from edenkit.models.segmentation import DEFAULT_DECODER_CHANNELS, SegmentationUNet

# ----------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------


def _overlap(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
    pred, target = pred.bool().flatten(-2), target.bool().flatten(-2)
    inter = (pred & target).sum(-1).double()
    return inter, pred.sum(-1).double(), target.sum(-1).double()


def dice_score(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice 2|P∩T| / (|P| + |T|) per mask over the last two dims; 1 where both masks are empty."""
    inter, p, t = _overlap(pred, target)
    denom = p + t
    return torch.where(denom > 0, 2 * inter / denom.clamp(min=1), torch.ones_like(denom))


def iou_score(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU |P∩T| / |P∪T| per mask over the last two dims; 1 where both masks are empty."""
    inter, p, t = _overlap(pred, target)
    union = p + t - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


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


# ----------------------------------------------------------------------------------------------------
# Data helpers
# ----------------------------------------------------------------------------------------------------


class MaskGroups(Dataset):
    """Target classes made of named mask channels: ``{"clavicle": ("right_clavicle", "left_clavicle")}``
    gives one channel that is the union of both clavicles (the SCR clavicle target)."""

    def __init__(self, base, groups: dict[str, Sequence[str]], structures: Sequence[str] | None = None):
        structures = list(structures if structures is not None else getattr(base, "structures", ()))
        unknown = sorted({s for names in groups.values() for s in names} - set(structures))
        if unknown:
            raise KeyError(f"MaskGroups: no mask named {unknown}; the dataset has {structures}")
        self.base = base
        self.classes = tuple(groups)
        self.channels = [[structures.index(s) for s in names] for names in groups.values()]

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.base[index])
        masks = item["masks"]
        item["masks"] = torch.stack([masks[idx].amax(0) for idx in self.channels])
        return item


def in_memory(dataset, keys: Sequence[str] = ("image", "masks", "labels", "patient_id")) -> list[dict]:
    """Every item of ``dataset`` computed once and kept (only ``keys``): small sets train faster."""
    return [{k: v for k, v in dataset[i].items() if k in keys} for i in range(len(dataset))]


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
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # safe inside Jupyter kernels and with threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads, initargs=(1,)) as pool:
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
# Transfer tasks: the phantom's and the paper's (METHOD.md), with their splits
# ----------------------------------------------------------------------------------------------------

#: Segmentation targets as unions of named masks; the phantom and SCR share these names.
STRUCTURE_GROUPS = {
    "heart": ("heart",),
    "clavicle": ("right_clavicle", "left_clavicle"),  # SCR's clavicle target: both, one class
    "lungs": ("right_lung", "left_lung"),
}


@dataclasses.dataclass(frozen=True)
class TransferTask:
    dataset: str  # "phantom" or a name of edenkit.data.datasets.DATASETS
    kind: str  # "segmentation" or "classification"
    metric: str  # "dice", "iou" or "auc" (the paper's metric for the task)
    splits: tuple[str, str | None, str] = ("train", "val", "test")  # val None: carved from train by patient
    targets: tuple[str, ...] | None = None  # segmentation: keys of STRUCTURE_GROUPS (None: every mask)
    options: tuple[tuple[str, object], ...] = ()  # keyword options of the dataset class


TRANSFER_TASKS: dict[str, TransferTask] = {
    "phantom_heart": TransferTask("phantom", "segmentation", "dice", targets=("heart",)),
    "phantom_clavicle": TransferTask("phantom", "segmentation", "dice", targets=("clavicle",)),
    "phantom_findings": TransferTask("phantom", "classification", "auc"),
    "scr_heart": TransferTask("scr", "segmentation", "dice", ("fold1", None, "fold2"), ("heart",)),
    "scr_clavicle": TransferTask("scr", "segmentation", "dice", ("fold1", None, "fold2"), ("clavicle",)),
    "chestx_det": TransferTask("chestx_det", "segmentation", "iou", ("train", None, "test"), options=(("binary", True),)),
    "siim_acr": TransferTask("siim_acr", "segmentation", "dice"),
    "vindr_ribcxr": TransferTask("vindr_ribcxr", "segmentation", "dice", ("train", None, "val")),
    "chestxray14": TransferTask("chestxray14", "classification", "auc"),
    "vindr_cxr": TransferTask("vindr_cxr", "classification", "auc", ("train", None, "test")),
    "shenzhen": TransferTask("shenzhen", "classification", "auc"),
}


def transfer_splits(name: str, size: int, seed: int = 0, data_root: str | Path | None = None,
                    phantom_counts: tuple[int, int, int] = (64, 16, 32), val_fraction: float = 0.1):
    """``(train, val, test, classes)`` for a task of :data:`TRANSFER_TASKS`.

    Phantom sets are generated (disjoint patients, seeded) and kept in memory; real datasets are read
    from ``data_root`` in their own formats, with the official splits where there are any and a
    patient-disjoint validation split carved from the training split otherwise.
    """
    if name not in TRANSFER_TASKS:
        raise KeyError(f"unknown transfer task {name!r}; expected one of {sorted(TRANSFER_TASKS)}")
    task = TRANSFER_TASKS[name]
    if task.dataset == "phantom":
        from edenkit.phantom import FINDINGS, PhantomDataset

        sets = [PhantomDataset(n, size=size, seed=seed * 10 + k + 1) for k, n in enumerate(phantom_counts)]
        if task.kind == "segmentation":
            sets = [MaskGroups(d, {t: STRUCTURE_GROUPS[t] for t in task.targets}) for d in sets]
        return (*(in_memory(d) for d in sets), task.targets or FINDINGS)
    if data_root is None:
        raise ValueError(f"transfer task {name!r} reads the {task.dataset} dataset: give its data root")
    from torch.utils.data import Subset

    from edenkit.data.datasets import group_split, open_dataset

    train_split, val_split, test_split = task.splits
    options = dict(task.options)
    train = open_dataset(task.dataset, data_root, train_split, size, **options)
    test = open_dataset(task.dataset, data_root, test_split, size, **options)
    if val_split is None:
        parts = group_split([r.patient_id for r in train.records], {"train": 1 - val_fraction, "val": val_fraction},
                            seed)
        train, val = Subset(train, parts["train"]), Subset(train, parts["val"])
    else:
        val = open_dataset(task.dataset, data_root, val_split, size, **options)
    base = test
    if task.kind == "classification":
        return train, val, test, base.label_names
    if task.targets is None:
        return train, val, test, base.mask_names
    groups = {t: STRUCTURE_GROUPS[t] for t in task.targets}
    return (*(MaskGroups(d, groups, base.mask_names) for d in (train, val, test)), task.targets)


def run_transfer(name: str, encoder_state: dict[str, torch.Tensor] | None, splits, cfg: FinetuneConfig,
                 seed: int = 0, keep_model: bool = False) -> dict:
    """Fine-tune on a task's splits (from :func:`transfer_splits`) and add the task's headline ``score``."""
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
    from edenkit.checkpoint import resolve_encoder
    from edenkit.stats import mean_std

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
                                                       tuple(args.phantom_counts))
            out = run_transfer(args.task, resolve_encoder(spec, args.arch, seed), splits_by_seed[seed], cfg, seed)
            out.pop("history")
            runs.append(out)
            print(f"{name} seed {seed}: {out['metric']} {out['score']:.4f} ({out['seconds']:.0f} s)")
        results["methods"][name] = {"encoder": spec, "runs": runs, "score": mean_std([r["score"] for r in runs])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0
