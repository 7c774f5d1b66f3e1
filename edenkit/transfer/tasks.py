"""The transfer tasks (the phantom's and the paper's) and their train/val/test splits as item datasets.

Datasets are the kit's item dicts (``image`` [1, H, W] in [0, 1] plus ``masks`` [S, H, W] or ``labels``
[C]); a plain list of such dicts works too, which is how small sets are kept in memory
(:func:`in_memory`). Segmentation targets are unions of named masks (:class:`MaskGroups`), so that the
phantom and SCR share one vocabulary (:data:`STRUCTURE_GROUPS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from edenkit.data.datasets import group_split, open_dataset
from edenkit.phantom import FINDINGS, PhantomConfig, PhantomDataset

#: Segmentation targets as unions of named masks; the phantom and SCR share these names.
STRUCTURE_GROUPS = {
    "heart": ("heart",),
    "clavicle": ("right_clavicle", "left_clavicle"),  # SCR's clavicle target: both, one class
    "lungs": ("right_lung", "left_lung"),
}


def structure_group(task: str) -> tuple[str, ...]:
    """The masks of a segmentation target: a key of :data:`STRUCTURE_GROUPS`, or one mask by its own name
    (e.g. ``"rib_right_5"``, ``"right_clavicle"``): individual ribs are targets without being listed."""
    return STRUCTURE_GROUPS.get(task, (task,))


@dataclasses.dataclass(frozen=True)
class TransferTask:
    dataset: str  # "phantom" or a name of edenkit.data.datasets.DATASETS
    kind: str  # "segmentation" or "classification"
    metric: str  # "dice", "iou" or "auc" (the paper's metric for the task)
    splits: tuple[str, str | None, str] = ("train", "val", "test")  # val None: carved from train by patient
    targets: tuple[str, ...] | None = None  # segmentation: keys of STRUCTURE_GROUPS (None: every mask)
    options: tuple[tuple[str, object], ...] = ()  # keyword options of the dataset class


TRANSFER_TASKS: dict[str, TransferTask] = {
    "phantom_heart": TransferTask("phantom", "segmentation", "dice", targets=("heart",)),
    "phantom_clavicle": TransferTask("phantom", "segmentation", "dice", targets=("clavicle",)),
    "phantom_findings": TransferTask("phantom", "classification", "auc"),
    "scr_heart": TransferTask("scr", "segmentation", "dice", ("fold1", None, "fold2"), ("heart",)),
    "scr_clavicle": TransferTask("scr", "segmentation", "dice", ("fold1", None, "fold2"), ("clavicle",)),
    "chestx_det": TransferTask("chestx_det", "segmentation", "iou", ("train", None, "test"), options=(("binary", True),)),
    "siim_acr": TransferTask("siim_acr", "segmentation", "dice"),
    "vindr_ribcxr": TransferTask("vindr_ribcxr", "segmentation", "dice", ("train", None, "val")),
    "chestxray14": TransferTask("chestxray14", "classification", "auc"),
    "vindr_cxr": TransferTask("vindr_cxr", "classification", "auc", ("train", None, "test")),
    "shenzhen": TransferTask("shenzhen", "classification", "auc"),
}


class MaskGroups(Dataset):
    """Target classes made of named mask channels: ``{"clavicle": ("right_clavicle", "left_clavicle")}``
    gives one channel that is the union of both clavicles (the SCR clavicle target)."""

    def __init__(self, base, groups: dict[str, Sequence[str]], structures: Sequence[str] | None = None):
        structures = list(structures if structures is not None else getattr(base, "structures", ()))
        unknown = sorted({s for names in groups.values() for s in names} - set(structures))
        if unknown:
            raise KeyError(f"MaskGroups: no mask named {unknown}; the dataset has {structures}")
        self.base = base
        self.classes = tuple(groups)
        self.channels = [[structures.index(s) for s in names] for names in groups.values()]

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.base[index])
        masks = item["masks"]
        item["masks"] = torch.stack([masks[idx].amax(0) for idx in self.channels])
        return item


def in_memory(dataset, keys: Sequence[str] = ("image", "masks", "labels", "patient_id")) -> list[dict]:
    """Every item of ``dataset`` computed once and kept (only ``keys``): small sets train faster."""
    return [{k: v for k, v in dataset[i].items() if k in keys} for i in range(len(dataset))]


def transfer_splits(name: str, size: int, seed: int = 0, data_root: str | Path | None = None,
                    phantom_counts: tuple[int, int, int] = (64, 16, 32), val_fraction: float = 0.1,
                    phantom_version: int = 1):
    """``(train, val, test, classes)`` for a task of :data:`TRANSFER_TASKS`.

    Phantom sets are generated (disjoint patients, seeded) and kept in memory; real datasets are read
    from ``data_root`` in their own formats, with the official splits where there are any and a
    patient-disjoint validation split carved from the training split otherwise.
    """
    if name not in TRANSFER_TASKS:
        raise KeyError(f"unknown transfer task {name!r}; expected one of {sorted(TRANSFER_TASKS)}")
    task = TRANSFER_TASKS[name]
    if task.dataset == "phantom":
        config = PhantomConfig(version=phantom_version)
        sets = [PhantomDataset(n, size=size, seed=seed * 10 + k + 1, config=config)
                for k, n in enumerate(phantom_counts)]
        if task.kind == "segmentation":
            sets = [MaskGroups(d, {t: STRUCTURE_GROUPS[t] for t in task.targets}) for d in sets]
        return (*(in_memory(d) for d in sets), task.targets or FINDINGS)
    if data_root is None:
        raise ValueError(f"transfer task {name!r} reads the {task.dataset} dataset: give its data root")
    train_split, val_split, test_split = task.splits
    options = dict(task.options)
    train = open_dataset(task.dataset, data_root, train_split, size, **options)
    test = open_dataset(task.dataset, data_root, test_split, size, **options)
    if val_split is None:
        parts = group_split([r.patient_id for r in train.records], {"train": 1 - val_fraction, "val": val_fraction},
                            seed)
        train, val = Subset(train, parts["train"]), Subset(train, parts["val"])
    else:
        val = open_dataset(task.dataset, data_root, val_split, size, **options)
    base = test
    if task.kind == "classification":
        return train, val, test, base.label_names
    if task.targets is None:
        return train, val, test, base.mask_names
    groups = {t: STRUCTURE_GROUPS[t] for t in task.targets}
    return (*(MaskGroups(d, groups, base.mask_names) for d in (train, val, test)), task.targets)
