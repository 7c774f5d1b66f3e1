"""Shared data for research/recipe: phantom v1/v2 images (uint8, cached under /tmp) and a landmark probe set."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from edenkit.phantom import PhantomConfig, PhantomDataset

CACHE = Path(os.environ.get("RECIPE_CACHE", "/tmp/research-recipe/cache"))


def phantom_u8(n, size, seed, version, with_landmarks=False):
    """``n`` phantoms of ``version`` as uint8 [n,1,size,size] (and landmarks [n,10,2] if asked), cached."""
    path = CACHE / f"v{version}_{n}x{size}_seed{seed}.pt"
    if path.is_file():
        out = torch.load(path)
    else:
        ds = PhantomDataset(n, size=size, seed=seed, config=PhantomConfig(version=version))
        imgs, lms = [], []
        for b in DataLoader(ds, batch_size=32, num_workers=0):
            imgs.append((b["image"].clamp(0, 1) * 255).round().to(torch.uint8))
            lms.append(b["landmarks"])
        out = {"images": torch.cat(imgs), "landmarks": torch.cat(lms)}
        CACHE.mkdir(parents=True, exist_ok=True)
        torch.save(out, path)
    return out if with_landmarks else out["images"]
