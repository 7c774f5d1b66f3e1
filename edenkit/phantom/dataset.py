"""``PhantomDataset``: phantoms as a torch ``Dataset`` of the kit's item dicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from edenkit.phantom.render import (
    FINDINGS,
    LANDMARKS,
    STRUCTURES,
    PhantomConfig,
    PhantomSample,
    generate,
    rib_names,
)


def add_version_argument(parser) -> None:
    """``--phantom-version`` for a CLI that generates phantoms (``PhantomConfig.version``)."""
    parser.add_argument("--phantom-version", type=int, choices=(1, 2), default=1,
                        help="phantom version: 1 (default) or 2, individual patients (edenkit.phantom.render)")


class PhantomDataset(torch.utils.data.Dataset):
    """``n`` phantoms; item ``i`` is ``generate(seed * 1_000_003 + i)``: the same in every worker
    process and every epoch.

    Items: ``{"image": [1,H,W], "masks": [S,H,W] (order = self.structures), "labels": [4] (FINDINGS),
    "landmarks": [10, 2] (x, y), "patient_id": int, "index": int}``.
    """

    def __init__(
        self,
        n: int,
        size: int = 256,
        seed: int = 0,
        config: PhantomConfig | None = None,
        structures=None,
    ):
        if n < 0:
            raise ValueError(f"PhantomDataset: n must be >= 0, got {n}")
        self.n, self.seed = int(n), int(seed)
        self.config = dataclasses.replace(config or PhantomConfig(), size=int(size))
        known = STRUCTURES + rib_names(self.config.n_rib_pairs)
        self.structures = tuple(STRUCTURES if structures is None else structures)
        for name in self.structures:
            if name not in known:
                raise ValueError(f"PhantomDataset: unknown structure {name!r}; expected one of {known}")

    def __len__(self) -> int:
        return self.n

    def sample_seed(self, index: int) -> int:
        return self.seed * 1_000_003 + index

    def sample(self, index: int) -> PhantomSample:
        """The full ground truth of item ``index`` (NumPy; every mask, finding masks, extras)."""
        if not 0 <= index < self.n:
            raise IndexError(f"PhantomDataset: index {index} out of range for length {self.n}")
        return generate(self.sample_seed(index), self.config)

    def __getitem__(self, index: int) -> dict:
        s = self.sample(index)
        size = self.config.size
        masks = [s.masks[name] for name in self.structures]
        masks = np.stack(masks) if masks else np.zeros((0, size, size), bool)
        return {
            "image": torch.from_numpy(s.image)[None],
            "masks": torch.from_numpy(masks.astype(np.float32)),
            "labels": torch.tensor([float(s.findings[f]) for f in FINDINGS]),
            "landmarks": torch.tensor([s.landmarks[k] for k in LANDMARKS], dtype=torch.float32),
            "patient_id": s.patient_id,
            "index": index,
        }
