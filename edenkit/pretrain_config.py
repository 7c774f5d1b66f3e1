"""The pretraining config: its schema, the checks types cannot express, and what follows from it.

A run is one ``PretrainConfig``, read from a packaged YAML (``ci``, ``demo_cpu``, ``adam_v1_paper``,
``mocov2_paper``) or a file, with ``key=value`` overrides (see ``edenkit.config``).

Learning rate: ``optim.lr`` is the rate at a global batch of ``optim.lr_batch`` and is scaled linearly
to the actual global batch (the linear scaling rule the MoCo authors use for other GPU counts: 0.03 at
256 in the paper). Set ``optim.lr_batch=null`` to use ``optim.lr`` as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from edenkit.config import ConfigError, load_config
from edenkit.models.backbones import ARCHS


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
    dataset: str = "phantom"  # or a name for edenkit.data.cache.open_image_dataset, e.g. chestxray14
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
