"""The anatomy decomposer: cut an image into parts and draw one part as the anchor.

Adam learns anatomy from coarse to fine by contrasting *parts* of chest X-rays. At granularity level
``n`` the image is cut into ``2**n`` non-overlapping parts by recursive binary splits that alternate
direction, starting with a vertical cut (the paper's rule, ``mode="paper"``)::

    n=0  whole image        n=1  left | right        n=2  2 x 2
    n=3  2 rows x 4 cols    n=4  4 x 4

Alternating cuts that start vertically always give a grid of ``2**ceil(n/2)`` columns by
``2**floor(n/2)`` rows, so the parts are computed as that grid directly. Edges are at
``size * i // parts``: the parts tile the whole image, differing by at most one pixel in size.

The authors' released code (MR-HosseinzadehTaher/Eden, ``Adam-v1/data_loader.py``,
``AnatomyDecomposerDataset``) instead tiles an ``n x n`` grid (``mode="grid"``): ``n=0`` is the whole
image, ``n=1`` a 1 x 1 grid (the whole image as well), ``n=3`` a 3 x 3 grid. Its parts are
``H // n`` by ``W // n`` pixels starting at ``i * (H // n)``, so when ``n`` does not divide the size the
last rows/columns are never sampled; ``mode="grid"`` reproduces that exactly. The two modes agree for
``n=0``, ``n=2`` and ``n=4`` whenever the size is divisible by 4 (as at 224 or 256 px).

The released code draws the part with ``np.random`` inside DataLoader workers; here the draw comes from
a ``torch.Generator`` seeded per (seed, level, epoch, index), so runs are reproducible with any number
of workers and a resumed run sees exactly the anchors it would have seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from edenkit.augmentation import TwoViewAugment

Mode = Literal["paper", "grid"]
MODES = ("paper", "grid")
MAX_LEVEL = 4

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), pixels, half-open


def grid_shape(n: int, mode: Mode = "paper") -> tuple[int, int]:
    """(rows, columns) of the parts at level ``n``."""
    _check_level(n, mode)
    if mode == "grid":
        return (max(n, 1), max(n, 1))
    return (2 ** (n // 2), 2 ** ((n + 1) // 2))  # the first cut is vertical, so columns lead


def part_boxes(height: int, width: int, n: int, mode: Mode = "paper") -> list[Box]:
    """The parts of a ``height x width`` image at level ``n`` as ``(y0, x0, y1, x1)``, row-major."""
    rows, cols = grid_shape(n, mode)
    if height < rows or width < cols:
        raise ValueError(f"a {height}x{width} image cannot be cut into {rows}x{cols} parts (level n={n})")
    if mode == "grid":  # the released code: floor-sized cells, remainder never sampled
        ys = [i * (height // rows) for i in range(rows + 1)]
        xs = [j * (width // cols) for j in range(cols + 1)]
    else:
        ys = [height * i // rows for i in range(rows + 1)]
        xs = [width * j // cols for j in range(cols + 1)]
    return [(ys[i], xs[j], ys[i + 1], xs[j + 1]) for i in range(rows) for j in range(cols)]


def decompose(
    image: torch.Tensor, n: int, mode: Mode = "paper", generator: torch.Generator | None = None
) -> tuple[torch.Tensor, Box]:
    """Draw one part of ``image`` [C, H, W] uniformly at random; returns (anchor [C, h, w], box)."""
    anchor, box, _ = _draw_part(image, n, mode, generator)
    return anchor, box


def _draw_part(
    image: torch.Tensor, n: int, mode: Mode, generator: torch.Generator | None
) -> tuple[torch.Tensor, Box, int]:
    if image.ndim != 3:
        raise ValueError(f"decompose expects an image [C, H, W], got shape {tuple(image.shape)}")
    boxes = part_boxes(image.shape[-2], image.shape[-1], n, mode)
    part = int(torch.randint(len(boxes), (), generator=generator))
    y0, x0, y1, x1 = boxes[part]
    return image[:, y0:y1, x0:x1], boxes[part], part


def sample_seed(seed: int, n: int, epoch: int, index: int) -> int:
    """A 63-bit generator seed for one sample, well mixed from (seed, level, epoch, index).

    ``np.random.SeedSequence`` is used only as a hash here (no global NumPy state is involved).
    """
    words = [seed, n, epoch, index]
    if min(words) < 0:
        raise ValueError(f"seed, n, epoch and index must be >= 0, got {words}")
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


class EpochDataset(Dataset):
    """A view of ``base_dataset`` whose items depend on the epoch: ``set_epoch`` writes a counter in
    shared memory, so DataLoader workers (which hold copies of the dataset) see the new epoch too."""

    base_dataset: Dataset

    def _init_epoch(self) -> None:
        self._epoch = torch.zeros((), dtype=torch.long).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"{type(self).__name__}.set_epoch: epoch must be >= 0, got {epoch}")
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.base_dataset)


class AnatomyPairs(EpochDataset):
    """Positive pairs for Adam: two augmented views of one anatomical part of each image.

    Wraps any dataset whose items are dicts with ``"image"`` [1, H, W] in [0, 1] (``PhantomDataset``,
    the real-data loaders). Item ``i`` is ``{"view1", "view2": [1, s, s], "box": LongTensor[4]
    (y0, x0, y1, x1), "part": int (row-major part index), "index": i}``. ``n=0`` gives MoCo-v2 pairs.

    Everything random in item ``i`` comes from one generator seeded by (seed, n, epoch, i). Call
    ``set_epoch(epoch)`` before iterating an epoch (as with ``DistributedSampler``) to draw new anchors
    and augmentations each epoch. The epoch lives in shared memory, so DataLoader workers (also
    persistent ones) see it; worker count and scheduling never change an item.

    ``augment`` (default ``TwoViewAugment(view_size)``) is any callable ``(anchor, generator) -> (view1,
    view2)``; ``base_dataset`` may also be a plain list of such dicts.
    """

    def __init__(
        self,
        base_dataset: Dataset,
        n: int,
        view_size: int,
        mode: Mode = "paper",
        seed: int = 0,
        augment: Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ):
        _check_level(n, mode)
        if seed < 0:
            raise ValueError(f"AnatomyPairs: seed must be >= 0, got {seed}")
        self.base_dataset = base_dataset
        self.n = n
        self.mode = mode
        self.seed = seed
        self.augment = augment if augment is not None else TwoViewAugment(view_size)
        self._init_epoch()

    def __getitem__(self, index: int) -> dict:
        return self.pair(index)

    def pair(self, index: int, part: int | None = None) -> dict:
        """Item ``index``; ``part`` forces the anchor (same generator stream), for figures and analyses."""
        item = self.base_dataset[index]
        if not isinstance(item, dict) or "image" not in item:
            raise TypeError(
                f"AnatomyPairs: item {index} of {type(self.base_dataset).__name__} must be a dict with an "
                f"'image' tensor [1, H, W], got {type(item).__name__}"
            )
        image = item["image"]
        generator = torch.Generator().manual_seed(sample_seed(self.seed, self.n, self.epoch, index))
        anchor, box, drawn = _draw_part(image, self.n, self.mode, generator)
        if part is not None and part != drawn:
            boxes = part_boxes(image.shape[-2], image.shape[-1], self.n, self.mode)
            if not 0 <= part < len(boxes):
                raise IndexError(f"AnatomyPairs.pair: part {part} out of range for {len(boxes)} parts at n={self.n}")
            y0, x0, y1, x1 = box = boxes[part]
            anchor = image[:, y0:y1, x0:x1]
        view1, view2 = self.augment(anchor, generator)
        part = drawn if part is None else part
        return {"view1": view1, "view2": view2, "box": torch.tensor(box), "part": part, "index": index}


def _check_level(n: int, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"decomposer mode must be one of {MODES}, got {mode!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_LEVEL:
        raise ValueError(f"granularity level n must be an integer in 0..{MAX_LEVEL}, got {n!r}")
