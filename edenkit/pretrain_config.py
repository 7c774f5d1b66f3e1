"""The pretraining config: its schema, the checks types cannot express, and what follows from it.

A run is one ``PretrainConfig``, read from a packaged YAML (``ci``, ``demo_cpu``, ``adam_v1_paper``,
``mocov2_paper``) or a file, with ``key=value`` overrides (see ``edenkit.config``).

Learning rate: ``optim.lr`` is the rate at a global batch of ``optim.lr_batch`` and is scaled linearly
to the actual global batch (the linear scaling rule the MoCo authors use for other GPU counts: 0.03 at
256 in the paper). Set ``optim.lr_batch=null`` to use ``optim.lr`` as is.

Augmentation: ``data.augment`` says where the two views of each anchor are made. ``cpu``: in the
DataLoader workers, one sample at a time (``edenkit.augmentation.TwoViewAugment``). ``device``: the
workers only decompose and draw each view's parameters, and the batch is augmented on the training
device in a few batched operations (``edenkit.batch_augmentation``), which is what keeps a GPU fed at
the paper's 1024-px images. ``auto`` (the default): ``device`` when training on CUDA, ``cpu`` otherwise.
Both draw from the same distributions; the pixels differ slightly, so a run's numbers depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from edenkit.config import ConfigError, load_config
from edenkit.decomposer import grid_shape
from edenkit.moco import NEGATIVES
from edenkit.models.backbones import ARCHS

AUGMENT_CHOICES = ("auto", "cpu", "device")  # data.augment
MIN_VIEW_SIZE = 8  # the ResNet stem divides a view by 4 and the trunk by 32 in all; below 8 px little is left


@dataclass
class ModelConfig:
    arch: str = "resnet18"
    dim: int = 128
    mlp_hidden: int | None = None  # None: the trunk's feature size (2048 for resnet50)
    queue_size: int = 4096  # K, a multiple of the global batch
    momentum: float = 0.999
    temperature: float = 0.2
    bn_splits: int = 1  # split-BN chunks per process batch (see edenkit.moco)
    negatives: Literal["queue", "batch"] = "queue"  # "batch": this step's other keys only (see edenkit.moco)


@dataclass
class DataConfig:
    dataset: str = "phantom"  # or a name for edenkit.data.cache.open_image_dataset, e.g. chestxray14
    root: str | None = None  # folder of a real dataset (--data-root)
    image_size: int = 128  # images are generated / read at this size before decomposition
    view_size: int = 64  # RandomResizedCrop output of each view
    # Augmentation strength (the paper's values by default; see edenkit.augmentation)
    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])  # RandomResizedCrop area range
    rotation: float = 30.0  # RandomRotation, degrees
    jitter_p: float = 0.8  # probability of the colour jitter (brightness, contrast 0.4)
    blur_p: float = 0.5  # probability of the Gaussian blur
    decompose_mode: Literal["paper", "grid"] = "paper"
    augment: Literal["auto", "cpu", "device"] = "auto"  # where views are made (see above); auto: device on CUDA
    phantom_train: int = 2000  # phantom images for training ...
    phantom_val: int = 256  # ... and for the validation loss
    phantom_seed: int = 1000  # patients apart from the small seeds the evaluation notebooks use
    phantom_version: int = 1  # edenkit.phantom.PhantomConfig.version: 1 (the library default) or 2
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
    """Consistency and range checks that types alone cannot express; raises ``ConfigError`` naming the key.

    Run before any work, so a value out of range fails in a second, not at the first step.
    """
    stages, epochs = cfg.curriculum.stages, cfg.curriculum.epochs
    if not stages or any(not 0 <= n <= 4 for n in stages):
        raise ConfigError(f"curriculum.stages: expected granularity levels in 0..4, got {stages}")
    if len(epochs) != len(stages) or any(e < 1 for e in epochs):
        raise ConfigError(f"curriculum.epochs: expected {len(stages)} positive epoch counts, got {epochs}")
    _check_ranges(cfg)
    if cfg.model.arch not in ARCHS:
        raise ConfigError(f"model.arch: expected one of {list(ARCHS)}, got {cfg.model.arch!r}")
    if cfg.batch_size < 1 or cfg.batch_size % world_size:
        raise ConfigError(f"batch_size: {cfg.batch_size} is not a positive multiple of {world_size} processes")
    per_process = cfg.batch_size // world_size
    if per_process % cfg.model.bn_splits:
        raise ConfigError(f"model.bn_splits: {cfg.model.bn_splits} does not divide the per-process batch "
                          f"{per_process} (batch_size {cfg.batch_size} over {world_size} process(es))")
    if per_process // cfg.model.bn_splits < 2:  # BatchNorm needs two samples per chunk to have a variance
        raise ConfigError(f"model.bn_splits: {cfg.model.bn_splits} chunks of a per-process batch of {per_process} "
                          f"leave {per_process // cfg.model.bn_splits} image per BatchNorm chunk; expected >= 2 "
                          "(raise batch_size or lower model.bn_splits)")
    if cfg.model.queue_size < cfg.batch_size or cfg.model.queue_size % cfg.batch_size:
        raise ConfigError(f"model.queue_size: {cfg.model.queue_size} is not a multiple of batch_size "
                          f"{cfg.batch_size} (expected a positive multiple of the global batch)")
    if cfg.prune_threshold is not None and not -1.0 < cfg.prune_threshold <= 1.0:
        raise ConfigError(f"prune_threshold: expected a cosine similarity in (-1, 1] or null, got "
                          f"{cfg.prune_threshold} (at -1 every negative would be pruned)")
    scale = cfg.data.crop_scale
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise ConfigError(f"data.crop_scale: expected [min, max] with 0 < min <= max <= 1, got {scale}")
    if not 0 <= cfg.data.rotation <= 180:
        raise ConfigError(f"data.rotation: expected degrees in [0, 180], got {cfg.data.rotation}")
    if cfg.model.negatives not in NEGATIVES:
        raise ConfigError(f"model.negatives: expected one of {list(NEGATIVES)}, got {cfg.model.negatives!r}")
    if cfg.model.negatives == "batch" and cfg.batch_size < 2:
        raise ConfigError(f"model.negatives: 'batch' needs batch_size >= 2 (its other keys are the negatives), "
                          f"got {cfg.batch_size}")
    if cfg.data.augment not in AUGMENT_CHOICES:
        raise ConfigError(f"data.augment: expected one of {list(AUGMENT_CHOICES)}, got {cfg.data.augment!r}")
    if cfg.data.phantom_version not in (1, 2):
        raise ConfigError(f"data.phantom_version: expected 1 or 2, got {cfg.data.phantom_version!r}")
    for key in ("phantom_train", "phantom_val"):
        if cfg.data.dataset == "phantom" and getattr(cfg.data, key) < cfg.batch_size:
            raise ConfigError(f"data.{key}: {getattr(cfg.data, key)} images < one batch of {cfg.batch_size}")


def _check_ranges(cfg: PretrainConfig) -> None:
    """Every numeric key whose range is known (after the curriculum's), named with its value and range."""
    def expect(key: str, value, ok: bool, expected: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: expected {expected}, got {value!r}")

    m, d, o = cfg.model, cfg.data, cfg.optim
    expect("seed", cfg.seed, cfg.seed >= 0, "an integer >= 0")
    expect("log_every", cfg.log_every, cfg.log_every >= 0, "a number of steps >= 0 (0: per epoch only)")
    expect("model.dim", m.dim, m.dim >= 1, "an embedding size >= 1")
    expect("model.mlp_hidden", m.mlp_hidden, m.mlp_hidden is None or m.mlp_hidden >= 1, "a width >= 1 or null")
    expect("model.momentum", m.momentum, 0.0 <= m.momentum < 1.0, "the teacher's EMA momentum in [0, 1)")
    expect("model.temperature", m.temperature, m.temperature > 0, "a softmax temperature > 0")
    expect("model.bn_splits", m.bn_splits, m.bn_splits >= 1, "a number of BatchNorm chunks >= 1")
    expect("optim.lr", o.lr, o.lr > 0, "a learning rate > 0")
    expect("optim.lr_batch", o.lr_batch, o.lr_batch is None or o.lr_batch >= 1, "a batch size >= 1 or null")
    expect("optim.momentum", o.momentum, 0.0 <= o.momentum < 1.0, "an SGD momentum in [0, 1)")
    expect("optim.weight_decay", o.weight_decay, o.weight_decay >= 0, "a weight decay >= 0")
    expect("data.jitter_p", d.jitter_p, 0.0 <= d.jitter_p <= 1.0, "a probability in [0, 1]")
    expect("data.blur_p", d.blur_p, 0.0 <= d.blur_p <= 1.0, "a probability in [0, 1]")
    expect("data.num_workers", d.num_workers, d.num_workers >= 0, "a number of loader processes >= 0")
    expect("data.view_size", d.view_size, d.view_size >= MIN_VIEW_SIZE, f"a view side >= {MIN_VIEW_SIZE} px")
    finest = max((grid_shape(n, d.decompose_mode) for n in cfg.curriculum.stages), key=max)  # most parts
    expect("data.image_size", d.image_size, d.image_size >= max(finest),
           f"an image side of at least {max(finest)} px (the finest stage cuts it into {finest[0]} x {finest[1]} parts)")


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


def describe(cfg: PretrainConfig) -> dict[str, str]:
    """The settings that distinguish runs, as short strings (for tables in notebooks and reports)."""
    stages = ", ".join(f"n={n}: {e} ep" for n, e in zip(cfg.curriculum.stages, cfg.curriculum.epochs))
    negatives = (f"queue K = {cfg.model.queue_size}" if cfg.model.negatives == "queue"
                 else f"in-batch ({cfg.batch_size - 1})")
    return {
        "backbone": cfg.model.arch, "data": cfg.data.dataset,
        "image / view px": f"{cfg.data.image_size} / {cfg.data.view_size}", "stages": stages,
        "total epochs": str(sum(cfg.curriculum.epochs)), "pruner": str(cfg.prune_threshold),
        "batch": str(cfg.batch_size), "negatives": negatives, "teacher m": str(cfg.model.momentum),
        "tau": str(cfg.model.temperature), "lr": f"{learning_rate(cfg):g}", "precision": cfg.precision,
    }
