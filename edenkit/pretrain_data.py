"""Pretraining data: unlabeled images, and the loaders of anatomy-decomposed view pairs at level n.

The images of a run are opened once (the phantom, generated once and kept as uint8, or a real
dataset); each curriculum stage wraps them in ``AnatomyPairs`` at its own granularity n, or, when the
views are made on the device (``data.augment``), in ``AnatomyAnchors`` whose batches the engine
augments there (``AnchorBatches.augment_batch``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import DataLoader, Dataset

from edenkit import dist
from edenkit.anatomy_anchors import AnatomyAnchors, AnchorBatches
from edenkit.augmentation import TwoViewAugment
from edenkit.batch_augmentation import BatchTwoViewAugment
from edenkit.checkpoint import atomic_save, load_checkpoint
from edenkit.config import ConfigError
from edenkit.data.cache import CachedImages, open_image_dataset
from edenkit.data.datasets import DatasetError
from edenkit.decomposer import AnatomyPairs
from edenkit.phantom import PhantomConfig, PhantomDataset
from edenkit.pretrain_config import DataConfig, PretrainConfig


class ImageTensor(Dataset):
    """Images kept in memory as one uint8 tensor [N, 1, H, W]; items like PhantomDataset's."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index].float() / 255.0, "index": index}

    def read_uint8(self, index: int) -> torch.Tensor:
        """Image ``index`` as uint8 [1, H, W]: a view, no copy (on-device augmentation reads these)."""
        return self.images[index]


@functools.lru_cache(maxsize=4)
def phantom_images(n: int, size: int, seed: int, cache_dir: str | None = None, version: int = 1) -> torch.Tensor:
    """``n`` phantom radiographs as uint8 [n, 1, size, size]: generated once, then from memory or disk.

    Generating a phantom takes tens of milliseconds, far more than a training step needs per image,
    so pretraining reads them from this cache (``cache_dir`` keeps it across processes).
    """
    # the phantom's version is in the key: a cache written by another version holds other images
    path = Path(cache_dir) / f"phantom_v{version}_{n}x{size}px_seed{seed}.pt" if cache_dir else None
    if path is not None and path.is_file():
        images = load_checkpoint(path)
        if isinstance(images, torch.Tensor) and images.shape == (n, 1, size, size):
            return images
    phantoms = PhantomDataset(n, size=size, seed=seed, config=PhantomConfig(version=version))
    workers = min(4, os.cpu_count() or 1) if n >= 256 else 0  # worker start-up only pays off for many
    # A DataLoader draws its workers' base seed from the global RNG; the run that generates the images
    # must leave that RNG as the run that reads them from the cache does, or the two train differently.
    with torch.random.fork_rng(devices=[]):
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
        return ImageTensor(phantom_images(n, data.image_size, seed, data.cache_dir, data.phantom_version))
    if data.root is None:
        raise ConfigError(f"data.root: dataset {data.dataset!r} needs its folder (--data-root or data.root=...)")
    root = Path(data.root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"data.root: folder not found: {root}")
    try:
        return open_image_dataset(data.dataset, root, split, data.image_size)
    except (DatasetError, ValueError) as e:
        raise ConfigError(f"data.dataset {data.dataset!r} in {root}: {e}") from e


def anatomy_pairs(images: Dataset, n: int, cfg: PretrainConfig, seed: int) -> AnatomyPairs:
    """``AnatomyPairs`` at level ``n`` with the config's decomposition, view size and augmentation."""
    augment = TwoViewAugment(cfg.data.view_size, scale=tuple(cfg.data.crop_scale), degrees=cfg.data.rotation,
                             jitter_p=cfg.data.jitter_p, blur_p=cfg.data.blur_p)
    return AnatomyPairs(images, n, cfg.data.view_size, mode=cfg.data.decompose_mode, seed=seed, augment=augment)


def anatomy_anchors(images: Dataset, n: int, cfg: PretrainConfig, seed: int) -> AnatomyAnchors:
    """``AnatomyAnchors`` at level ``n``: ``anatomy_pairs``' anchors, views to be made on the device.

    Where the images are bytes in memory or an unresized memmap, the workers send no pixels and the
    anchors are gathered in the main process (``AnchorBatches``): reading them there costs one copy.
    """
    augment = BatchTwoViewAugment(cfg.data.view_size, scale=tuple(cfg.data.crop_scale), degrees=cfg.data.rotation,
                                  jitter_p=cfg.data.jitter_p, blur_p=cfg.data.blur_p)
    in_place = isinstance(images, ImageTensor) or (isinstance(images, CachedImages) and images.size == images.info.size)
    return AnatomyAnchors(images, n, augment, mode=cfg.data.decompose_mode, seed=seed, pixels=not in_place)


def trains_on_cuda(cfg: PretrainConfig) -> bool:
    """Whether the run trains on a GPU (``cfg.device``, resolved as ``dist.setup`` does)."""
    return cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())


def augments_on_device(cfg: PretrainConfig) -> bool:
    """Whether the views are made on the training device: ``data.augment`` ``device``, or ``auto`` on CUDA."""
    return cfg.data.augment == "device" or (cfg.data.augment == "auto" and trains_on_cuda(cfg))


def pair_loader(images: Dataset, n: int, cfg: PretrainConfig, seed: int, train: bool) -> DataLoader | AnchorBatches:
    """Two views of an anatomy-decomposed anchor per image, sharded over processes.

    Call ``set_epoch`` before each epoch: the sampler's order and the pairs' anchors and augmentations
    are functions of (seed, epoch), which is what makes a resumed run repeat the same batches. On the
    device path (``augments_on_device``) the loader yields anchors and the views' parameters, and the
    engine makes the views with its ``augment_batch(batch, device)``.
    """
    on_device = augments_on_device(cfg)
    pairs = (anatomy_anchors if on_device else anatomy_pairs)(images, n, cfg, seed)
    sampler = dist.make_sampler(pairs, shuffle=train, seed=seed, drop_last=train)
    loader = DataLoader(
        pairs,
        batch_size=cfg.batch_size // dist.world_size(),
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        persistent_workers=cfg.data.num_workers > 0,
        drop_last=True,  # full batches: the queue stays a multiple of the global batch, BN sees whole chunks
        pin_memory=torch.cuda.is_available(),
    )
    return AnchorBatches(loader, pin=trains_on_cuda(cfg)) if on_device else loader


def set_epoch(loader: DataLoader | AnchorBatches, epoch: int) -> None:
    """New anchors, views and order for ``epoch`` (both are functions of the seed and the epoch)."""
    loader.sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)
