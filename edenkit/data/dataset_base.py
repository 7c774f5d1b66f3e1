"""The base of every real-dataset loader: a list of :class:`Record` plus a reader, and their helpers.

:class:`RealDataset` turns records into the kit's item dicts and owns the ``on_error`` policy
(missing and corrupt files). :func:`group_split` makes the patient-disjoint splits that datasets
without an official split (and the fine-tuning validation sets) use.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edenkit.data.formats import DatasetError, read_grey, resize_image, resize_masks

log = logging.getLogger(__name__)

SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}  # for datasets without an official split


@dataclass
class Record:
    """One image of a dataset: where it is and what it is labelled with."""

    image_id: str
    path: Path
    patient_id: str
    labels: np.ndarray | None = None  # float multi-hot
    extra: dict = field(default_factory=dict)  # mask paths, polygons, run-lengths ...


class RealDataset(Dataset):
    """Records + a reader. Subclasses build the records and implement ``read_image``/``read_masks``."""

    name = "dataset"
    splits: tuple[str, ...] = ("all",)  # the first is the default
    label_names: tuple[str, ...] = ()
    mask_names: tuple[str, ...] = ()

    def __init__(self, records: list[Record], size: int | None = 224, on_error: str = "raise",
                 targets: bool = True):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if not records:
            raise DatasetError(f"{self.name}: no images found for this split")
        self.size = size
        self.on_error = on_error
        self.targets = targets
        self.skipped: list[tuple[str, str]] = []  # (file, reason)
        self.records = self._drop_missing(records)

    def _drop_missing(self, records: list[Record]) -> list[Record]:
        missing = [r for r in records if not r.path.is_file()]
        if not missing:
            return records
        names = ", ".join(str(r.path) for r in missing[:3]) + (" ..." if len(missing) > 3 else "")
        if self.on_error == "raise":
            raise DatasetError(f"{self.name}: {len(missing)} image file(s) missing: {names}")
        log.warning("%s: skipping %d missing image file(s): %s", self.name, len(missing), names)
        self.skipped += [(str(r.path), "missing") for r in missing]
        kept = [r for r in records if r.path.is_file()]
        if not kept:
            raise DatasetError(f"{self.name}: every image file is missing (first: {names})")
        return kept

    def __len__(self) -> int:
        return len(self.records)

    def read_image(self, record: Record) -> np.ndarray:
        return read_grey(record.path)

    def read_masks(self, record: Record, height: int, width: int) -> np.ndarray | None:
        """bool [S, H, W] at the image's native size, or None for a dataset without masks."""
        return None

    def load(self, index: int) -> dict:
        """The item for ``index`` or an exception naming the file (no skipping)."""
        record = self.records[index]
        try:
            image = self.read_image(record)
            item = {"image": resize_image(image, self.size), "index": index,
                    "image_id": record.image_id, "patient_id": record.patient_id}
            if self.targets:
                if record.labels is not None:
                    item["labels"] = torch.as_tensor(record.labels, dtype=torch.float32)
                masks = self.read_masks(record, *image.shape[-2:])
                if masks is not None:
                    item["masks"] = resize_masks(masks, self.size)
        except DatasetError:
            raise
        except Exception as e:  # decoder errors come in many types; all name the file here
            raise DatasetError(f"{self.name}: cannot read {record.path}: {type(e).__name__}: {e}") from e
        return item

    def __getitem__(self, index: int) -> dict:
        if self.on_error == "raise":
            return self.load(index)
        for step in range(len(self)):
            i = (index + step) % len(self)
            try:
                item = self.load(i)
            except DatasetError as e:
                log.warning("%s", e)
                self.skipped.append((str(self.records[i].path), str(e)))
                continue
            item["index"] = index  # the sampler asked for this index; image_id says what came back
            return item
        raise DatasetError(f"{self.name}: no readable image left (last error logged above)")


def dataset_dir(root: str | Path, dirname: str) -> Path:
    """``root/<dirname>`` when it exists (``root`` is the data root), else ``root`` itself."""
    root = Path(root).expanduser()
    return root / dirname if (root / dirname).is_dir() else root


def require(path: Path, what: str) -> Path:
    """``path`` itself, or a DatasetError that says what was expected there and where to read how to get it."""
    if not path.exists():
        raise DatasetError(f"{path} not found: expected {what} (see data_download/README.md)")
    return path


def check_split(split: str, allowed: Sequence[str], name: str) -> None:
    """A ValueError naming the allowed splits unless ``split`` is one of them."""
    if split not in allowed:
        raise ValueError(f"{name}: unknown split {split!r}; expected one of {', '.join(allowed)}")


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV as dicts, with spaces around keys and values stripped."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]


def group_split(groups: Sequence[str], fractions: dict[str, float], seed: int = 0) -> dict[str, list[int]]:
    """Split item indices so that no group (patient) spans two splits; seeded and reproducible.

    Groups are shuffled with ``seed`` and dealt out in that order, each to the split that is
    furthest below its share of *items*; the sizes land within about one group of the targets.
    """
    names = list(fractions)
    total = sum(fractions.values())
    targets = np.array([fractions[n] / total * len(groups) for n in names])
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    unique = sorted(members)
    order = np.random.default_rng(seed).permutation(len(unique))
    out: dict[str, list[int]] = {n: [] for n in names}
    dealt = np.zeros(len(names))
    for j in order:
        items = members[unique[j]]
        k = int(np.argmax(targets - dealt))
        out[names[k]].extend(items)
        dealt[k] += len(items)
    return {n: sorted(v) for n, v in out.items()}
