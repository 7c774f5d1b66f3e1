"""The worker side of on-device augmentation: read, decompose, draw the views' parameters; no pixels made.

``AnatomyAnchors`` is ``AnatomyPairs`` without the augmentation: item ``i`` is the uint8 anchor (the
same part of the same image that ``AnatomyPairs`` draws for that seed, level, epoch and index) and the
parameters of its two views, drawn from the same per-sample generator. A DataLoader collates them
into a batch that ``BatchTwoViewAugment.apply`` turns into views on the device, so the views of a
sample depend only on (seed, n, epoch, index): not on the batch, the worker count, the device or
whether the run was resumed. A worker copies bytes and draws a few dozen random numbers per sample.

Anchors of one level have one size so that they stack: parts differ by at most a pixel when the
grid does not divide the image, and the smaller ones are padded at the bottom and right (edge pixels)
to the largest part; the crop boxes stay inside the true part.

Images are read as uint8 without a float round trip when the base dataset has
``read_uint8(index) -> uint8 [1, H, W]``; otherwise from ``item["image"]`` (uint8 as is, float in
[0, 1] rounded to uint8, which is exact for images that were stored as uint8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from edenkit.batch_augmentation import BatchTwoViewAugment
from edenkit.decomposer import MAX_LEVEL, MODES, Mode, part_boxes, sample_seed


class AnatomyAnchors(Dataset):
    """Anchors and view parameters for ``BatchTwoViewAugment``: ``AnatomyPairs``' worker-side half.

    Item ``i`` is ``{"anchor": uint8 [1, ph, pw], "params": float64 [2, len(PARAM_KEYS)] (the packed
    table of ``BatchTwoViewAugment.sample_param_table``), "box": LongTensor[4] (y0, x0, y1, x1),
    "part": int, "index": i}``. ``set_epoch`` as for ``AnatomyPairs`` (shared memory, seen by workers).
    """

    def __init__(self, base_dataset: Dataset, n: int, augment: BatchTwoViewAugment, mode: Mode = "paper",
                 seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"decomposer mode must be one of {MODES}, got {mode!r}")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_LEVEL:
            raise ValueError(f"granularity level n must be an integer in 0..{MAX_LEVEL}, got {n!r}")
        if seed < 0:
            raise ValueError(f"AnatomyAnchors: seed must be >= 0, got {seed}")
        self.base_dataset, self.n, self.augment, self.mode, self.seed = base_dataset, n, augment, mode, seed
        self._epoch = torch.zeros((), dtype=torch.long).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"AnatomyAnchors.set_epoch: epoch must be >= 0, got {epoch}")
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.base_dataset)

    def read_uint8(self, index: int) -> torch.Tensor:
        """Image ``index`` of the base dataset as uint8 [1, H, W]."""
        reader = getattr(self.base_dataset, "read_uint8", None)
        if reader is not None:
            return reader(index)
        item = self.base_dataset[index]
        if not isinstance(item, dict) or "image" not in item:
            raise TypeError(f"AnatomyAnchors: item {index} of {type(self.base_dataset).__name__} must be a dict "
                            f"with an 'image' tensor [1, H, W], got {type(item).__name__}")
        image = item["image"]
        if image.dtype == torch.uint8:
            return image
        return image.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)

    def __getitem__(self, index: int) -> dict:
        image = self.read_uint8(index)
        if image.ndim != 3:
            raise ValueError(f"AnatomyAnchors: image {index} must be [1, H, W], got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        boxes = part_boxes(height, width, self.n, self.mode)
        # The same generator and first draw as AnatomyPairs: the same part for the same sample.
        generator = torch.Generator().manual_seed(sample_seed(self.seed, self.n, self.epoch, index))
        part = int(torch.randint(len(boxes), (), generator=generator))
        y0, x0, y1, x1 = boxes[part]
        params = self.augment.sample_param_table([y1 - y0], [x1 - x0], generator)[0]
        rows, cols = anchor_shape(height, width, self.n, self.mode)
        anchor = image[:, y0:y1, x0:x1]
        if anchor.shape[-2:] != (rows, cols):  # edge-pad the smaller parts to the level's anchor size
            pad = (0, cols - anchor.shape[-1], 0, rows - anchor.shape[-2])
            anchor = F.pad(anchor[None].float(), pad, mode="replicate")[0].to(torch.uint8)
        return {"anchor": anchor.contiguous(), "params": params,
                "box": torch.tensor(boxes[part]), "part": part, "index": index}


def anchor_shape(height: int, width: int, n: int, mode: Mode = "paper") -> tuple[int, int]:
    """(rows, columns) of the anchors at level ``n`` of ``height x width`` images: the largest part."""
    boxes = part_boxes(height, width, n, mode)
    return max(y1 - y0 for y0, _, y1, _ in boxes), max(x1 - x0 for _, x0, _, x1 in boxes)


def augment_batch(batch: dict, augment: BatchTwoViewAugment, device: torch.device) -> dict:
    """A collated batch of ``AnatomyAnchors`` items -> ``{"view1", "view2": [B, 1, s, s]}`` on ``device``."""
    anchors = batch["anchor"].to(device, non_blocking=True)
    views = augment.apply(anchors, batch["params"])
    return {**{key: value for key, value in batch.items() if key not in ("anchor", "params")},
            "view1": views[:, 0], "view2": views[:, 1]}
