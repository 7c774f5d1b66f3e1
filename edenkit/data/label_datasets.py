"""Real datasets whose targets are image-level labels: ChestX-ray14, JSRT, VinDr-CXR, Shenzhen, EyePACS.

EyePACS has no labels here (it is only used for pretraining the fundus model). Each class reads the
layout documented in :mod:`edenkit.data.datasets` and ``data_download/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edenkit.data.dataset_base import (
    SPLIT_FRACTIONS,
    DatasetError,
    RealDataset,
    Record,
    check_split,
    dataset_dir,
    group_split,
    read_csv,
    require,
)
from edenkit.data.formats import read_dicom, read_grey, read_jsrt_img, read_rgb

# The authors' ChestX-ray14 label order (the order of their label files and results).
CHESTXRAY14_LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
# The paper's ChestX-ray14 pretraining split sizes: train_val_list.txt = 75,312 + 11,212.
CHESTXRAY14_VAL_FRACTION = 11_212 / 86_524
# VinDr-CXR: the six classes of the authors' fine-tuning script (Adam-v2 target_tasks,
# class_name = ['PE', 'Lung tumor', ...]); "PE" read as pleural effusion (unconfirmed). Configurable.
VINDR_CXR_LABELS = ("Pleural effusion", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding")


class ChestXray14(RealDataset):
    """NIH ChestX-ray14: 112,120 PNGs, 14 labels in the authors' order (:data:`CHESTXRAY14_LABELS`).

    Splits: ``test`` (official test_list.txt, 25,596), ``train_val`` (official train_val_list.txt,
    86,524), ``all``, and ``train`` / ``val`` for pretraining: the authors' lists
    ``Xray14_{train,val}_official.txt`` (75,312 / 11,212) when present in the folder, otherwise a
    patient-disjoint split of train_val_list.txt with ``val_seed`` and the same val fraction.
    Labels come from Data_Entry_2017*.csv, or from the authors' list files (name + 14 digits).
    """

    name = "chestxray14"
    label_names = CHESTXRAY14_LABELS
    splits = ("train", "val", "train_val", "test", "all")

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 on_error: str = "raise", targets: bool = True, val_seed: int = 0):
        check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "chestxray14")
        self.images_dir = require(self.root / "images", "a folder of ChestX-ray14 PNGs")
        self.split = split
        labels = self._labels()
        names = self.split_names(split, val_seed)
        if labels is not None:
            unknown = [n for n in names if n not in labels]
            if unknown:
                raise DatasetError(f"{self.root}: {len(unknown)} image(s) of split {split!r} have no labels, "
                                   f"e.g. {unknown[0]}")
        records = [Record(n, self.images_dir / n, patient_of(n), labels[n] if labels else None) for n in names]
        super().__init__(records, size, on_error, targets)

    def _labels(self) -> dict[str, np.ndarray] | None:
        entry = self._data_entry()
        if entry is not None:
            labels = {}
            for row in read_csv(entry):
                found = set(row["Finding Labels"].split("|"))
                labels[row["Image Index"]] = np.array([n in found for n in CHESTXRAY14_LABELS], np.float32)
            return labels
        labels = {}
        for split in ("train", "val", "test"):
            path = self.root / f"Xray14_{split}_official.txt"
            if path.is_file():
                labels.update(_read_label_list(path, len(CHESTXRAY14_LABELS)))
        return labels or None

    def _data_entry(self) -> Path | None:
        for name in ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv"):
            if (self.root / name).is_file():
                return self.root / name
        return None

    def split_names(self, split: str, val_seed: int = 0) -> list[str]:
        """Image file names of ``split`` (see the class docstring for where each comes from)."""
        if split in ("train", "val"):
            official = self.root / f"Xray14_{split}_official.txt"
            if official.is_file():
                return list(_read_label_list(official, len(CHESTXRAY14_LABELS)))
            pool = self._read_list("train_val_list.txt")
            parts = group_split([patient_of(n) for n in pool],
                                {"train": 1 - CHESTXRAY14_VAL_FRACTION, "val": CHESTXRAY14_VAL_FRACTION},
                                seed=val_seed)
            return [pool[i] for i in parts[split]]
        if split == "train_val":
            return self._read_list("train_val_list.txt")
        if split == "test":
            if (self.root / "test_list.txt").is_file() or not (self.root / "Xray14_test_official.txt").is_file():
                return self._read_list("test_list.txt")
            return list(_read_label_list(self.root / "Xray14_test_official.txt", len(CHESTXRAY14_LABELS)))
        entry = self._data_entry()
        if entry is not None:
            return [row["Image Index"] for row in read_csv(entry)]
        return sorted(p.name for p in self.images_dir.glob("*.png"))

    def _read_list(self, name: str) -> list[str]:
        path = require(self.root / name, "the official ChestX-ray14 split list")
        return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def patient_of(chestxray14_name: str) -> str:
    """``00000013_005.png`` -> ``00000013`` (NIH names are <patient>_<follow-up>.png)."""
    return chestxray14_name.split("_", 1)[0]


def _read_label_list(path: Path, n_labels: int) -> dict[str, np.ndarray]:
    """The authors' list format: ``<file name> <n_labels digits>`` per line."""
    out = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 1 + n_labels:
            raise DatasetError(f"{path}:{number}: expected a file name and {n_labels} labels, got {len(parts) - 1}")
        out[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
    return out


class JSRT(RealDataset):
    """JSRT: 247 raw ``.IMG`` radiographs; label = [nodule] from the name (JPCLN nodule / JPCNN none)."""

    name = "jsrt"
    label_names = ("nodule",)

    def __init__(self, root: str | Path, split: str = "all", size: int | None = 224, *,
                 on_error: str = "raise", targets: bool = True, invert: bool = True):
        check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "jsrt")
        self.invert = invert
        images = require(self.root / "images", "a folder of JSRT .IMG files")
        paths = sorted(p for p in images.iterdir() if p.suffix.upper() == ".IMG")
        records = [Record(p.stem, p, p.stem, np.array([p.stem.upper().startswith("JPCLN")], np.float32))
                   for p in paths]
        super().__init__(records, size, on_error, targets)

    def read_image(self, record: Record) -> np.ndarray:
        return read_jsrt_img(record.path, invert=self.invert)


def _norm_label(name: str) -> str:
    """Column names differ in case, spacing and plural between files: compare a normal form."""
    return re.sub(r"[^a-z0-9]", "", name.lower()).rstrip("s")


class VinDrCXR(RealDataset):
    """VinDr-CXR: DICOMs (often MONOCHROME1) with image-level labels from image_labels_{split}.csv.

    ``labels`` picks the classes (default :data:`VINDR_CXR_LABELS`); the training set has three
    radiologists per image, combined by ``aggregate``: ``"majority"`` (>= 2 of 3) or ``"any"``.
    """

    name = "vindr_cxr"
    splits = ("train", "test")

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 labels: Sequence[str] = VINDR_CXR_LABELS, aggregate: str = "majority",
                 on_error: str = "raise", targets: bool = True):
        check_split(split, self.splits, self.name)
        if aggregate not in ("majority", "any"):
            raise ValueError(f"vindr_cxr: aggregate must be 'majority' or 'any', got {aggregate!r}")
        self.root = dataset_dir(root, "vindr_cxr")
        self.label_names = tuple(labels)
        table = require(self.root / "annotations" / f"image_labels_{split}.csv", "the VinDr-CXR label CSV")
        rows = read_csv(table)
        if not rows:
            raise DatasetError(f"{table}: no rows")
        columns = {_norm_label(c): c for c in rows[0]}
        missing = [n for n in self.label_names if _norm_label(n) not in columns]
        if missing:
            raise DatasetError(f"{table}: no column for label {missing[0]!r} (columns: {', '.join(rows[0])})")
        votes: dict[str, list[np.ndarray]] = {}
        for row in rows:
            values = [row[columns[_norm_label(n)]] for n in self.label_names]
            votes.setdefault(row["image_id"], []).append(np.array([float(v or 0) > 0 for v in values], np.float32))
        records = []
        for image_id in sorted(votes):
            stack = np.stack(votes[image_id])
            combined = stack.mean(0) > 0.5 if aggregate == "majority" else stack.max(0) > 0
            path = self.root / split / f"{image_id}.dicom"
            records.append(Record(image_id, path if path.exists() else path.with_suffix(".dcm"), image_id,
                                  combined.astype(np.float32)))
        super().__init__(records, size, on_error, targets)

    def read_image(self, record: Record) -> np.ndarray:
        return read_dicom(record.path)


class Shenzhen(RealDataset):
    """Shenzhen tuberculosis set: 662 PNGs, label [tb] from the name (``_0`` normal, ``_1`` TB).

    No official split: ``train`` / ``val`` / ``test`` are a seeded 70/10/20 split; ``all`` is all.
    """

    name = "shenzhen"
    splits = ("train", "val", "test", "all")
    label_names = ("tuberculosis",)

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 seed: int = 0, on_error: str = "raise", targets: bool = True):
        check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "shenzhen")
        folder = require(self.root / "CXR_png", "the Shenzhen CXR_png folder")
        paths = sorted(folder.glob("CHNCXR_*_[01].png"))
        if split != "all":
            paths = [paths[i] for i in group_split([p.stem for p in paths], SPLIT_FRACTIONS, seed)[split]]
        records = [Record(p.stem, p, p.stem.split("_")[1], np.array([p.stem.endswith("_1")], np.float32))
                   for p in paths]
        super().__init__(records, size, on_error, targets)


class EyePACS(RealDataset):
    """EyePACS (Kaggle diabetic retinopathy): fundus JPEGs, unlabelled here (pretraining only)."""

    name = "eyepacs"
    splits = ("train", "test")

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 color: str = "grey", on_error: str = "raise", targets: bool = True):
        check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "eyepacs")
        self.color = color
        folder = require(self.root / split, f"the EyePACS {split} folder")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
        records = [Record(p.stem, p, p.stem.split("_")[0]) for p in paths]  # 10_left -> patient 10
        super().__init__(records, size, on_error, targets)

    def read_image(self, record: Record) -> np.ndarray:
        return read_rgb(record.path) if self.color == "rgb" else read_grey(record.path)
