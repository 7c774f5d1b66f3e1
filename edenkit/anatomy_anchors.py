"""The loader side of on-device augmentation: read, decompose, draw the views' parameters; no pixels made.

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

Where the images are bytes in memory or a memmap (``read_uint8`` is a view), the workers need not
copy the anchors at all: with ``pixels=False`` an item is only its index, box and parameters, and
``AnchorBatches`` gathers the anchors of each batch in the main process into a reused (pinned) buffer.
Each anchor's bytes are then copied once, where a worker would write them into a freshly allocated
shared-memory batch and the pinning thread copy them again; at n = 0 (1 MB anchors at 1024 px) that
copy is most of a worker's time.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from edenkit.batch_augmentation import BatchTwoViewAugment
from edenkit.decomposer import MAX_LEVEL, MODES, EpochDataset, Mode, part_boxes, sample_seed


class AnatomyAnchors(EpochDataset):
    """Anchors and view parameters for ``BatchTwoViewAugment``: ``AnatomyPairs``' worker-side half.

    Item ``i`` is ``{"anchor": uint8 [1, ph, pw], "params": float64 [2, len(PARAM_KEYS)] (the packed
    table of ``BatchTwoViewAugment.sample_param_table``), "box": LongTensor[4] (y0, x0, y1, x1),
    "part": int, "index": i}``; without ``"anchor"`` when ``pixels`` is False (``AnchorBatches`` gathers
    it). ``set_epoch`` as for ``AnatomyPairs`` (shared memory, seen by workers).
    """

    def __init__(self, base_dataset: Dataset, n: int, augment: BatchTwoViewAugment, mode: Mode = "paper",
                 seed: int = 0, pixels: bool = True):
        if mode not in MODES:
            raise ValueError(f"decomposer mode must be one of {MODES}, got {mode!r}")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_LEVEL:
            raise ValueError(f"granularity level n must be an integer in 0..{MAX_LEVEL}, got {n!r}")
        if seed < 0:
            raise ValueError(f"AnatomyAnchors: seed must be >= 0, got {seed}")
        self.base_dataset, self.n, self.augment, self.mode, self.seed = base_dataset, n, augment, mode, seed
        self.pixels = pixels
        self._init_epoch()

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
        image = self.read_uint8(index)  # a view where the base dataset keeps bytes: nothing read yet
        if image.ndim != 3:
            raise ValueError(f"AnatomyAnchors: image {index} must be [1, H, W], got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        boxes = part_boxes(height, width, self.n, self.mode)
        # The same generator and first draw as AnatomyPairs: the same part for the same sample.
        generator = torch.Generator().manual_seed(sample_seed(self.seed, self.n, self.epoch, index))
        part = int(torch.randint(len(boxes), (), generator=generator))
        y0, x0, y1, x1 = boxes[part]
        item = {"params": self.augment.sample_param_table([y1 - y0], [x1 - x0], generator)[0],
                "box": torch.tensor(boxes[part]), "part": part, "index": index}
        if self.pixels:
            rows, cols = anchor_shape(height, width, self.n, self.mode)
            anchor = image[:, y0:y1, x0:x1]
            if anchor.shape[-2:] != (rows, cols):  # edge-pad the smaller parts to the level's anchor size
                anchor = copy_anchor(image, boxes[part], torch.empty(1, rows, cols, dtype=torch.uint8))
            item["anchor"] = anchor.contiguous()
        return item


def anchor_shape(height: int, width: int, n: int, mode: Mode = "paper") -> tuple[int, int]:
    """(rows, columns) of the anchors at level ``n`` of ``height x width`` images: the largest part."""
    boxes = part_boxes(height, width, n, mode)
    return max(y1 - y0 for y0, _, y1, _ in boxes), max(x1 - x0 for _, x0, _, x1 in boxes)


def copy_anchor(image: torch.Tensor, box, out: torch.Tensor) -> torch.Tensor:
    """Write part ``box`` (y0, x0, y1, x1) of ``image`` [1, H, W] into ``out`` [1, rows, cols], padded at its
    bottom and right with its edge pixels (as ``F.pad(..., mode="replicate")``) to the level's anchor size."""
    y0, x0, y1, x1 = (int(v) for v in box)
    h, w = y1 - y0, x1 - x0
    out[:, :h, :w].copy_(image[:, y0:y1, x0:x1])
    if w < out.shape[-1]:
        out[:, :h, w:] = out[:, :h, w - 1 : w]
    if h < out.shape[-2]:
        out[:, h:, :] = out[:, h - 1 : h, :]
    return out


def augment_batch(batch: dict, augment: BatchTwoViewAugment, device: torch.device) -> dict:
    """A collated batch of ``AnatomyAnchors`` items -> ``{"view1", "view2": [B, 1, s, s]}`` on ``device``."""
    anchors = batch["anchor"].to(device, non_blocking=True)
    views = augment.apply(anchors, batch["params"])
    return {**{key: value for key, value in batch.items() if key not in ("anchor", "params")},
            "view1": views[:, 0], "view2": views[:, 1]}


class AnchorBatches:
    """The batches of ``loader`` (a DataLoader over ``AnatomyAnchors``), with their anchors, and the hook
    ``augment_batch(batch, device)`` that makes their views on ``device``: what the engine calls.

    When the dataset's items carry no pixels (``pixels=False``), the anchors of each batch are gathered
    here, in the main process, into one of two reused buffers (pinned when ``pin``, so the copy to the
    GPU is asynchronous). A batch's ``"anchor"`` is therefore valid until the batch after next is drawn;
    on CUDA a buffer is refilled only after its copy to the device has finished. ``sampler`` and
    ``dataset`` are the loader's, for ``pretrain_data.set_epoch``.
    """

    def __init__(self, loader: DataLoader, pin: bool = False):
        if not isinstance(loader.dataset, AnatomyAnchors):
            raise TypeError(f"AnchorBatches: expected a DataLoader over AnatomyAnchors, got {type(loader.dataset).__name__}")
        self.loader, self.pin = loader, pin
        self.dataset: AnatomyAnchors = loader.dataset
        self.sampler = loader.sampler
        self._buffers: list[torch.Tensor] = []
        self._copied: list[torch.cuda.Event | None] = []  # per buffer: its last copy to a GPU
        self._turn = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if "anchor" not in batch:
                batch["anchor"] = self.gather(batch["index"].tolist(), batch["box"].tolist())
            yield batch

    def augment_batch(self, batch: dict, device: torch.device) -> dict:
        """``batch`` -> its views on ``device`` (``augment_batch`` with the dataset's augmentation)."""
        views = augment_batch(batch, self.dataset.augment, device)
        if device.type == "cuda":
            for i, buffer in enumerate(self._buffers):
                if buffer.data_ptr() == batch["anchor"].data_ptr():
                    self._copied[i] = torch.cuda.Event()
                    self._copied[i].record()
        return views

    def gather(self, indices: list[int], boxes: list[list[int]]) -> torch.Tensor:
        """The anchors [B, 1, rows, cols] of samples ``indices`` (parts ``boxes``), in the next buffer."""
        image = self.dataset.read_uint8(indices[0])
        rows, cols = anchor_shape(*image.shape[-2:], self.dataset.n, self.dataset.mode)
        out = self._buffer((len(indices), 1, rows, cols))
        for anchor, index, box in zip(out, indices, boxes):
            copy_anchor(self.dataset.read_uint8(index), box, anchor)
        return out

    def _buffer(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The next of the two buffers, as a uint8 tensor of ``shape`` (made anew if too small)."""
        turn, self._turn = self._turn, 1 - self._turn
        if len(self._buffers) < 2:
            self._buffers.append(torch.empty(0, dtype=torch.uint8))
            self._copied.append(None)
        if self._copied[turn] is not None:
            self._copied[turn].synchronize()  # its last batch has reached the GPU: it may be overwritten
            self._copied[turn] = None
        if self._buffers[turn].numel() < torch.Size(shape).numel():
            self._buffers[turn] = torch.empty(torch.Size(shape).numel(), dtype=torch.uint8, pin_memory=self.pin)
        return self._buffers[turn][: torch.Size(shape).numel()].view(shape)
