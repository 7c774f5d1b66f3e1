"""``python -m edenkit pretrain``: Adam / MoCo-v2 pretraining with the coarse-to-fine curriculum.

    python -m edenkit pretrain --config demo_cpu [--out DIR] [--resume auto|PATH] [key=value ...]
    torchrun --nproc-per-node=4 -m edenkit pretrain --config adam_v1_paper --data-root /data/chestxray14

Adam-v1 (METHOD.md) is MoCo-v2 trained in stages of increasing anatomical granularity, n = 0 -> 2 -> 4:
at level n every image is decomposed into 2^n parts and one part is the anchor whose two views are
the positive pair; for n > 0 the purposive pruner drops negatives too similar to the query. Each stage
starts from the previous stage's full state (both encoders and the queue) with a fresh optimizer and
a fresh cosine schedule. The MoCo-v2 baseline is the same code with one stage n = 0 and no pruner.

Learning rate: ``optim.lr`` is the rate at a global batch of ``optim.lr_batch`` and is scaled linearly
to the actual global batch (the linear scaling rule the MoCo authors use for other GPU counts: 0.03 at
256 in the paper). Set ``optim.lr_batch=null`` to use ``optim.lr`` as is.

Run folder (``--out``): ``config.yaml`` (resolved config), ``log.jsonl`` (one record per epoch and
split, plus step records when ``log_every`` > 0), ``checkpoints/last.pt`` (every epoch: model, queue,
optimizer, scheduler, RNG, position, config; plain data), ``checkpoints/best_stage<i>_n<n>.pt`` (lowest
validation loss within the stage: losses at different n are not comparable), ``encoder_stage<i>_n<n>.pt``
(exported at the end of each stage), ``encoder.pt`` (the final weights), ``encoder_best.pt`` (the final
stage's best validation checkpoint, the one the paper transfers) and ``summary.json``.
Exported encoders are plain torchvision ResNet ``state_dict``s without ``fc``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from edenkit import dist, engine
from edenkit.checkpoint import CheckpointError, atomic_save, export_encoder, load_checkpoint
from edenkit.config import ConfigError, load_config, to_dict
from edenkit.moco import MoCo
from edenkit.models.backbones import ARCHS

CHECKPOINT_FORMAT = "edenkit.pretrain/1"
# Keys that may change when a run is resumed: they do not change what is computed (data.root: the
# same dataset may be mounted elsewhere).
RESUMABLE_CHANGES = ("progress", "log_every", "data.num_workers", "data.cache_dir", "data.root", "compile")
PRUNED_ALMOST_ALL = 0.95  # above this fraction of pruned negatives, InfoNCE has (almost) nothing to push
VAL_SEED_OFFSET = 1_000_003  # validation pairs: fixed views, drawn apart from the training stream


# ----------------------------------------------------------------------------------------------- config
@dataclass
class ModelConfig:
    arch: str = "resnet18"
    dim: int = 128
    mlp_hidden: int | None = None  # None: the trunk's feature size (2048 for resnet50)
    queue_size: int = 4096  # K, a multiple of the global batch
    momentum: float = 0.999
    temperature: float = 0.2
    bn_splits: int = 1  # split-BN chunks per process batch (see edenkit.moco)


@dataclass
class DataConfig:
    dataset: str = "phantom"  # or a name for edenkit.data.datasets.open_image_dataset, e.g. chestxray14
    root: str | None = None  # folder of a real dataset (--data-root)
    image_size: int = 128  # images are generated / read at this size before decomposition
    view_size: int = 64  # RandomResizedCrop output of each view
    # Augmentation strength (the paper's values by default; see edenkit.augmentation)
    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])  # RandomResizedCrop area range
    rotation: float = 30.0  # RandomRotation, degrees
    decompose_mode: Literal["paper", "grid"] = "paper"
    phantom_train: int = 2000  # phantom images for training ...
    phantom_val: int = 256  # ... and for the validation loss
    phantom_seed: int = 1000  # patients apart from the small seeds the evaluation notebooks use
    num_workers: int = 0
    cache_dir: str | None = None  # keep generated phantom images here as uint8 tensors (reused by later runs)


@dataclass
class OptimConfig:
    lr: float = 0.03
    lr_batch: int | None = 256  # lr is for this global batch and scaled linearly; None: lr as is
    momentum: float = 0.9
    weight_decay: float = 1e-4


@dataclass
class CurriculumConfig:
    stages: list[int] = field(default_factory=lambda: [0, 2, 4])  # granularity n of each stage
    epochs: list[int] = field(default_factory=lambda: [200, 200, 200])  # epochs of each stage


@dataclass
class PretrainConfig:
    name: str = "adam"
    seed: int = 0
    batch_size: int = 256  # global: summed over processes
    prune_threshold: float | None = 0.8  # purposive pruner for n > 0; None turns it off
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: bool = True
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    log_every: int = 0  # also log every this many steps (0: per epoch only)
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)


def load_pretrain_config(name_or_path: str | Path, overrides: list[str] | None = None) -> PretrainConfig:
    """A packaged config name (``ci``, ``demo_cpu``, ``adam_v1_paper``, ``mocov2_paper``) or a YAML path."""
    cfg = load_config(PretrainConfig, name_or_path, overrides)
    check_config(cfg)
    return cfg


def check_config(cfg: PretrainConfig, world_size: int = 1) -> None:
    """Consistency checks that types alone cannot express; raises ``ConfigError`` naming the key."""
    stages, epochs = cfg.curriculum.stages, cfg.curriculum.epochs
    if not stages or any(not 0 <= n <= 4 for n in stages):
        raise ConfigError(f"curriculum.stages: expected granularity levels in 0..4, got {stages}")
    if len(epochs) != len(stages) or any(e < 1 for e in epochs):
        raise ConfigError(f"curriculum.epochs: expected {len(stages)} positive epoch counts, got {epochs}")
    if cfg.model.arch not in ARCHS:
        raise ConfigError(f"model.arch: expected one of {list(ARCHS)}, got {cfg.model.arch!r}")
    if cfg.batch_size < 1 or cfg.batch_size % world_size:
        raise ConfigError(f"batch_size: {cfg.batch_size} is not a positive multiple of {world_size} processes")
    if (cfg.batch_size // world_size) % cfg.model.bn_splits:
        raise ConfigError(f"model.bn_splits: {cfg.model.bn_splits} does not divide the per-process batch")
    if cfg.model.queue_size % cfg.batch_size:
        raise ConfigError(f"model.queue_size: {cfg.model.queue_size} is not a multiple of batch_size {cfg.batch_size}")
    if cfg.prune_threshold is not None and not -1.0 <= cfg.prune_threshold <= 1.0:
        raise ConfigError(f"prune_threshold: a cosine similarity in [-1, 1] or null, got {cfg.prune_threshold}")
    scale = cfg.data.crop_scale
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ConfigError(f"data.crop_scale: expected [min, max] with 0 < min <= max <= 1, got {scale}")
    if not 0 <= cfg.data.rotation <= 180:
        raise ConfigError(f"data.rotation: expected degrees in [0, 180], got {cfg.data.rotation}")
    for key in ("phantom_train", "phantom_val"):
        if cfg.data.dataset == "phantom" and getattr(cfg.data, key) < cfg.batch_size:
            raise ConfigError(f"data.{key}: {getattr(cfg.data, key)} images < one batch of {cfg.batch_size}")


def learning_rate(cfg: PretrainConfig) -> float:
    """``optim.lr`` scaled linearly from ``optim.lr_batch`` to the global batch (unscaled if null)."""
    if cfg.optim.lr_batch is None:
        return cfg.optim.lr
    return cfg.optim.lr * cfg.batch_size / cfg.optim.lr_batch


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; ``auto`` picks what the hardware does fast."""
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:  # bf16 pays off on CPUs with native bf16 units (AVX512-BF16, AMX); elsewhere it is slower
            native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(
                torch.cpu, "_is_amx_tile_supported", lambda: False
            )()
            precision = "bf16" if native else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision: fp16 needs a CUDA GPU; use bf16 or fp32 on a CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# ------------------------------------------------------------------------------------------------- data
class ImageTensor(Dataset):
    """Images kept in memory as one uint8 tensor [N, 1, H, W]; items like PhantomDataset's."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index].float() / 255.0, "index": index}


@functools.lru_cache(maxsize=4)
def phantom_images(n: int, size: int, seed: int, cache_dir: str | None = None) -> torch.Tensor:
    """``n`` phantom radiographs as uint8 [n, 1, size, size]: generated once, then from memory or disk.

    Generating a phantom takes tens of milliseconds, far more than a training step needs per image,
    so pretraining reads them from this cache (``cache_dir`` keeps it across processes).
    """
    from edenkit.phantom import PhantomDataset

    path = Path(cache_dir) / f"phantom_{n}x{size}px_seed{seed}.pt" if cache_dir else None
    if path is not None and path.is_file():
        images = load_checkpoint(path)
        if isinstance(images, torch.Tensor) and images.shape == (n, 1, size, size):
            return images
    phantoms = PhantomDataset(n, size=size, seed=seed)
    workers = min(4, os.cpu_count() or 1) if n >= 256 else 0  # worker start-up only pays off for many
    loader = DataLoader(phantoms, batch_size=32, num_workers=workers)
    images = torch.cat([(batch["image"].clamp(0, 1) * 255).round().to(torch.uint8) for batch in loader])
    if path is not None and dist.is_main():
        atomic_save(images, path)
    return images


def open_images(data: DataConfig, split: Literal["train", "val"]) -> Dataset:
    """Unlabeled images for pretraining: the phantom, or a real dataset through ``open_image_dataset``."""
    if data.dataset == "phantom":
        n = data.phantom_train if split == "train" else data.phantom_val
        seed = data.phantom_seed if split == "train" else data.phantom_seed + 1
        return ImageTensor(phantom_images(n, data.image_size, seed, data.cache_dir))
    if data.root is None:
        raise ConfigError(f"data.root: dataset {data.dataset!r} needs its folder (--data-root or data.root=...)")
    root = Path(data.root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"data.root: folder not found: {root}")
    from edenkit.data.datasets import DatasetError, open_image_dataset  # only needed for real data

    try:
        return open_image_dataset(data.dataset, root, split, data.image_size)
    except (DatasetError, ValueError) as e:
        raise ConfigError(f"data.dataset {data.dataset!r} in {root}: {e}") from e


def anatomy_pairs(images: Dataset, n: int, cfg: PretrainConfig, seed: int) -> Dataset:
    """``AnatomyPairs`` at level ``n`` with the config's decomposition, view size and augmentation."""
    from edenkit.augmentation import TwoViewAugment
    from edenkit.decomposer import AnatomyPairs

    augment = TwoViewAugment(cfg.data.view_size, scale=tuple(cfg.data.crop_scale), degrees=cfg.data.rotation)
    return AnatomyPairs(images, n, cfg.data.view_size, mode=cfg.data.decompose_mode, seed=seed, augment=augment)


def pair_loader(images: Dataset, n: int, cfg: PretrainConfig, seed: int, train: bool) -> DataLoader:
    """Two views of an anatomy-decomposed anchor per image, sharded over processes.

    Call ``set_epoch`` before each epoch: the sampler's order and the pairs' anchors and augmentations
    are functions of (seed, epoch), which is what makes a resumed run repeat the same batches.
    """
    pairs = anatomy_pairs(images, n, cfg, seed)
    sampler = dist.make_sampler(pairs, shuffle=train, seed=seed, drop_last=train)
    return DataLoader(
        pairs,
        batch_size=cfg.batch_size // dist.world_size(),
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
        drop_last=True,  # full batches: the queue stays a multiple of the global batch, BN sees whole chunks
        pin_memory=torch.cuda.is_available(),
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    loader.sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)


# ----------------------------------------------------------------------------------------------- run dir
@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    def best(self, stage: int, n: int) -> Path:
        return self.root / "checkpoints" / f"best_stage{stage}_n{n}.pt"

    def stage_encoder(self, stage: int, n: int) -> Path:
        return self.root / f"encoder_stage{stage}_n{n}.pt"

    @property
    def encoder(self) -> Path:
        return self.root / "encoder.pt"

    @property
    def encoder_best(self) -> Path:
        return self.root / "encoder_best.pt"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"


class JsonLog:
    """Append-only JSON-lines log, written by rank 0."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def truncate_to(self, global_epoch: int) -> None:
        """Drop records of epochs at or after ``global_epoch`` (a resumed run redoes them)."""
        if not (self.enabled and self.path.is_file()):
            return
        records = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        kept = [r for r in records if r.get("global_epoch", -1) < global_epoch]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.path)

    def __call__(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def read_log(path: str | Path) -> list[dict]:
    """The records of a run's ``log.jsonl`` (or of the run folder that holds it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"pretraining log not found: {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _save_best(last: Path, best: Path) -> None:
    """``best`` becomes a copy of ``last`` (a hard link when possible: no second write)."""
    tmp = best.with_name(f".{best.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(last, tmp)
    except OSError:
        shutil.copyfile(last, tmp)
    os.replace(tmp, best)


def _config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _config_differences(a, b, f"{name}.")
        elif a != b and name not in RESUMABLE_CHANGES:
            diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs


def find_resume_checkpoint(resume: str | None, paths: RunPaths) -> Path | None:
    """``None`` (fresh run), ``"auto"`` (``last.pt`` of the run folder if any) or a checkpoint path."""
    if resume is None:
        if paths.last.exists():
            raise ConfigError(f"{paths.root} already holds a run; pass --resume auto to continue it or pick another --out")
        return None
    if resume == "auto":
        return paths.last if paths.last.exists() else None
    if not Path(resume).is_file():
        raise CheckpointError(f"checkpoint to resume from not found: {resume}")
    return Path(resume)


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------------- train
@dataclass
class PretrainResult:
    out_dir: Path
    encoder: Path  # final weights
    encoder_best: Path  # final stage's best validation checkpoint
    model: MoCo  # the trained model (on its device), e.g. to compare ranks in tests
    seconds: float  # wall time of the training, summed over resumed sessions


def build_model(cfg: PretrainConfig) -> MoCo:
    m = cfg.model
    return MoCo(m.arch, m.dim, m.queue_size, m.momentum, m.temperature, m.mlp_hidden, m.bn_splits)


def pretrain(cfg: PretrainConfig, out_dir: str | Path, resume: str | None = None) -> PretrainResult:
    """Run the curriculum of ``cfg`` into ``out_dir`` (resuming from ``resume``: None, "auto" or a path).

    Works in one process or under torchrun (rank 0 writes the files). Returns the exported encoders.
    """
    env, device = dist.setup(cfg.device)
    check_config(cfg, env.world_size)
    paths = RunPaths(Path(out_dir))
    main = dist.is_main()
    dtype = autocast_dtype(cfg.precision, device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    checkpoint_path = find_resume_checkpoint(resume, paths)

    torch.manual_seed(cfg.seed)
    train_images, val_images = open_images(cfg.data, "train"), open_images(cfg.data, "val")
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)

    state = _load_resume_state(checkpoint_path, cfg, model) if checkpoint_path is not None else None
    if cfg.compile:  # in place, so state_dict keys stay those of the plain modules
        model.encoder_q.compile()
        model.encoder_k.compile()
    net = model
    if env.is_distributed:
        # No buffer broadcast before every forward: the queue stays identical on all ranks by
        # construction (all-gathered keys) and BN statistics are averaged once per epoch.
        device_ids = [device.index] if device.type == "cuda" else None
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(
            DistributedDataParallel).parameters else {"broadcast_buffers": False})  # torch < 2.14 spelling
        net = DistributedDataParallel(model, device_ids=device_ids, **no_sync)

    log = JsonLog(paths.log, enabled=main)
    if main:
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.config.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    stages, stage_epochs = cfg.curriculum.stages, cfg.curriculum.epochs
    first_stage = state["stage"] if state else 0
    seconds_before = state["seconds"] if state else 0.0
    log.truncate_to(sum(stage_epochs[: state["stage"]]) + state["epoch"] if state else 0)
    start = time.perf_counter()

    for stage, (n, epochs) in enumerate(zip(stages, stage_epochs)):
        if stage < first_stage:
            continue
        # A fresh optimizer and cosine schedule per stage; the model and the queue carry over.
        optimizer = torch.optim.SGD(
            model.encoder_q.parameters(), lr=learning_rate(cfg), momentum=cfg.optim.momentum,
            weight_decay=cfg.optim.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        threshold = cfg.prune_threshold if n > 0 else None  # n = 0 is plain MoCo-v2
        train_loader = pair_loader(train_images, n, cfg, seed=cfg.seed, train=True)
        val_loader = pair_loader(val_images, n, cfg, seed=cfg.seed + VAL_SEED_OFFSET, train=False)
        where = f"stage {stage + 1}/{len(stages)} (n={n})"
        first_epoch, best_val = 0, math.inf
        if state is not None and stage == state["stage"]:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            first_epoch, best_val = state["epoch"], state["best_val_loss"]
            if scaler is not None and "scaler" in state:
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"], device)  # last: the next random number is the epoch's first
            state = None

        for epoch in range(first_epoch, epochs):
            global_epoch = sum(stage_epochs[:stage]) + epoch
            set_epoch(train_loader, global_epoch)  # new anchors, views and order every epoch
            position = {"stage": stage, "n": n, "epoch": epoch, "global_epoch": global_epoch}
            train = engine.train_one_epoch(
                net, train_loader, optimizer, device=device, prune_threshold=threshold, autocast_dtype=dtype,
                scaler=scaler, channels_last=cfg.channels_last, epoch=epoch,
                log=lambda r, p=position: log({"split": "step", **p, **r}), log_every=cfg.log_every,
                progress=cfg.progress, desc=f"{where} epoch {epoch + 1}/{epochs}",
            )
            dist.average_batchnorm_stats(model)  # every rank holds the same model from here on
            val = engine.evaluate(
                net, val_loader, device=device, prune_threshold=threshold, autocast_dtype=dtype,
                channels_last=cfg.channels_last,
            )
            scheduler.step()
            seconds = seconds_before + time.perf_counter() - start
            log({"split": "train", **position, **train, "seconds": seconds})
            log({"split": "val", **position, **val, "lr": train["lr"], "seconds": seconds})
            if main and cfg.progress:
                print(f"[pretrain] {where} epoch {epoch + 1}/{epochs}: loss {train['loss']:.4f} "
                      f"acc {train['acc']:.3f} val {val['loss']:.4f} pruned {train['frac_pruned']:.3f} "
                      f"{train['images_per_s']:.0f} img/s", file=sys.stderr, flush=True)

            if main and train["frac_pruned"] > PRUNED_ALMOST_ALL:
                print(f"[pretrain] warning: {where} epoch {epoch + 1}: the pruner removed "
                      f"{train['frac_pruned']:.1%} of the negatives, so the loss is ~0 and the student has "
                      f"stopped learning. The embeddings had already collapsed (mean cosine of the negatives "
                      f"{train['neg_sim']:.2f}); a longer n=0 stage or a higher prune_threshold avoids this.",
                      file=sys.stderr, flush=True)

            is_best = val["loss"] < best_val
            best_val = min(best_val, val["loss"])
            if main:
                atomic_save(  # "epoch" counts the epochs done in the stage: where a resumed run starts
                    {"format": CHECKPOINT_FORMAT, "config": to_dict(cfg), "stage": stage, "n": n,
                     "epoch": epoch + 1, "global_epoch": global_epoch + 1, "sampler_epoch": global_epoch + 1,
                     "best_val_loss": best_val, "val_loss": val["loss"], "seconds": seconds, "world_size": env.world_size, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     **({"scaler": scaler.state_dict()} if scaler is not None else {}), "rng": _rng_state(device)},
                    paths.last,
                )
                if is_best:
                    _save_best(paths.last, paths.best(stage, n))
            dist.barrier()
        if main:
            export_encoder(model.backbone.state_dict(), paths.stage_encoder(stage, n))
        dist.barrier()

    seconds = seconds_before + time.perf_counter() - start
    if main:
        _export_final(paths, model, stages)
        summary = {"config": to_dict(cfg), "seconds": seconds, "world_size": env.world_size,
                   "device": str(device), "autocast": str(dtype), "encoder": str(paths.encoder),
                   "encoder_best": str(paths.encoder_best)}
        paths.summary.write_text(json.dumps(summary, indent=2) + "\n")
    dist.barrier()
    return PretrainResult(paths.root, paths.encoder, paths.encoder_best, model, seconds)


def _load_resume_state(path: Path, cfg: PretrainConfig, model: MoCo) -> dict:
    """Read a checkpoint written with ``cfg``, load its model state, return it for the rest."""
    state = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an edenkit pretraining checkpoint")
    diffs = _config_differences(state["config"], to_dict(cfg))
    if diffs:
        raise ConfigError(f"{path} was written with another config ({'; '.join(diffs[:3])})")
    model.load_state_dict(state["model"])
    return state


def _export_final(paths: RunPaths, model: MoCo, stages: list[int]) -> None:
    """``encoder.pt`` (last weights) and ``encoder_best.pt`` (the final stage's best validation loss)."""
    export_encoder(model.backbone.state_dict(), paths.encoder)
    best = load_checkpoint(paths.best(len(stages) - 1, stages[-1]))["model"]
    prefix = "encoder_q.backbone.net."
    export_encoder({k[len(prefix):]: v for k, v in best.items() if k.startswith(prefix)}, paths.encoder_best)


def describe(cfg: PretrainConfig) -> dict[str, str]:
    """The settings that distinguish runs, as short strings (for tables in notebooks and reports)."""
    stages = ", ".join(f"n={n}: {e} ep" for n, e in zip(cfg.curriculum.stages, cfg.curriculum.epochs))
    return {
        "backbone": cfg.model.arch, "data": cfg.data.dataset,
        "image / view px": f"{cfg.data.image_size} / {cfg.data.view_size}", "stages": stages,
        "total epochs": str(sum(cfg.curriculum.epochs)), "pruner": str(cfg.prune_threshold),
        "batch": str(cfg.batch_size), "queue K": str(cfg.model.queue_size), "teacher m": str(cfg.model.momentum),
        "tau": str(cfg.model.temperature), "lr": f"{learning_rate(cfg):g}", "precision": cfg.precision,
    }


def stage_ends(records: list[dict], split: str = "train") -> list[dict]:
    """The last per-epoch record of each stage in a run's log."""
    ends: dict[int, dict] = {}
    for record in records:
        if record.get("split") == split:
            ends[record["stage"]] = record
    return [ends[stage] for stage in sorted(ends)]


# --------------------------------------------------------------------------------------------------- CLI
def torchrun_command(
    config: str, out: str, nproc_per_node: int = 4, nnodes: int = 1, master_addr: str = "node0",
    master_port: int = 29500, overrides: list[str] | None = None, data_root: str | None = None,
) -> str:
    """The shell command that runs ``config`` under torchrun (run it on every node when ``nnodes`` > 1)."""
    parts = ["torchrun", f"--nproc-per-node={nproc_per_node}"]
    if nnodes > 1:
        parts += [f"--nnodes={nnodes}", "--node-rank=$NODE_RANK", f"--master-addr={master_addr}",
                  f"--master-port={master_port}"]
    parts += ["-m", "edenkit", "pretrain", "--config", config, "--out", out, "--resume", "auto"]
    if data_root:
        parts += ["--data-root", data_root]
    return " ".join(parts + list(overrides or []))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="ci, demo_cpu, adam_v1_paper, mocov2_paper, or a YAML file")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/pretrain/<config name>)")
    parser.add_argument("--resume", metavar="auto|PATH", help="continue from the run folder's last checkpoint or PATH")
    parser.add_argument("--data-root", help="folder of the real dataset (sets data.root)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.01")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides) + ([f"data.root={args.data_root}"] if args.data_root else [])
    try:
        cfg = load_pretrain_config(args.config, overrides)
        out = args.out or Path("runs") / "pretrain" / Path(args.config).stem
        result = pretrain(cfg, out, resume=args.resume)
        main = dist.is_main()
    except (ConfigError, CheckpointError, FileNotFoundError, engine.NonFiniteLossError) as e:
        print(f"edenkit pretrain: {e}", file=sys.stderr)
        return 2
    finally:
        dist.cleanup()
    if main:
        print(f"pretraining done in {result.seconds:.1f} s; encoder: {result.encoder} (best: {result.encoder_best})")
    return 0

