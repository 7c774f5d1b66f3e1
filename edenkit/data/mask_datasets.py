"""Real datasets with segmentation masks: SCR (on JSRT), ChestX-Det, SIIM-ACR, VinDr-RibCXR, DRIVE.

Masks are decoded at the image's native size (bool [S, H, W], one channel per structure or class,
in the order of the class's ``mask_names``) and resized with the image. Each class reads the
layout documented in :mod:`edenkit.data.datasets` and ``data_download/README.md``.
"""

from __future__ import annotations

import json
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
from edenkit.data.formats import (
    decode_siim_rle,
    rasterize_polygons,
    read_dicom,
    read_grey,
    read_mask,
    read_rgb,
    resize_mask_to,
)
from edenkit.data.label_datasets import JSRT

# SCR structures, in the phantom's STRUCTURES order; values are SCR's folder names.
SCR_STRUCTURES = {
    "right_lung": "right lung", "left_lung": "left lung", "heart": "heart",
    "right_clavicle": "right clavicle", "left_clavicle": "left clavicle",
}
CHESTX_DET_CLASSES = (
    "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "Diffuse Nodule", "Effusion",
    "Emphysema", "Fibrosis", "Fracture", "Mass", "Nodule", "Pleural Thickening", "Pneumothorax",
)
VINDR_RIBS = tuple(f"R{i}" for i in range(1, 11)) + tuple(f"L{i}" for i in range(1, 11))
DRIVE_MASKS = ("vessel", "fov")


class SCR(JSRT):
    """SCR masks (lungs, heart, clavicles) for the JSRT images, in SCR's two folds.

    ``split`` is ``fold1``, ``fold2`` or ``all``; ``structures`` picks and orders the masks
    (default: :data:`SCR_STRUCTURES`, the phantom's order). An image is in a fold when its masks are.
    """

    name = "scr"
    splits = ("fold1", "fold2", "all")

    def __init__(self, root: str | Path, split: str = "fold1", size: int | None = 224, *,
                 structures: Sequence[str] = tuple(SCR_STRUCTURES), on_error: str = "raise",
                 targets: bool = True, invert: bool = True):
        check_split(split, self.splits, self.name)
        unknown = [s for s in structures if s not in SCR_STRUCTURES]
        if unknown:
            raise ValueError(f"scr: unknown structure {unknown[0]!r}; expected some of {', '.join(SCR_STRUCTURES)}")
        self.mask_names = tuple(structures)
        self.scr_root = dataset_dir(root, "scr")
        jsrt_root = dataset_dir(root, "jsrt") if (Path(root) / "jsrt").is_dir() else self.scr_root.parent / "jsrt"
        self.root = jsrt_root
        self.invert = invert
        images = require(jsrt_root / "images", "the JSRT images beside the scr folder")
        folds = ("fold1", "fold2") if split == "all" else (split,)
        records = []
        discover = SCR_STRUCTURES[self.mask_names[0]] if self.mask_names else "heart"
        for fold in folds:
            first = require(self.scr_root / fold / "masks" / discover, f"SCR {fold} masks")
            for mask in sorted(first.glob("*.gif")):
                image = images / f"{mask.stem}.IMG"
                masks = [self.scr_root / fold / "masks" / SCR_STRUCTURES[s] / mask.name for s in self.mask_names]
                records.append(Record(mask.stem, image, mask.stem,
                                      np.array([mask.stem.upper().startswith("JPCLN")], np.float32),
                                      {"masks": masks, "fold": fold}))
        RealDataset.__init__(self, records, size, on_error, targets)

    def read_masks(self, record: Record, height: int, width: int) -> np.ndarray | None:
        if not self.mask_names:
            return None
        masks = [read_mask(path) for path in record.extra["masks"]]
        # SCR masks are drawn at half resolution (1024 px): bring them to the image's size
        return np.stack([resize_mask_to(m, height, width) for m in masks])


class ChestXDet(RealDataset):
    """ChestX-Det: 3,578 NIH images with 13 disease classes as polygons (JSON).

    ``binary=True`` (the paper's protocol) gives one mask, the union of all classes; otherwise one
    mask per class in :data:`CHESTX_DET_CLASSES` order. ``labels`` are the classes present.
    """

    name = "chestx_det"
    splits = ("train", "test")
    label_names = CHESTX_DET_CLASSES

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 binary: bool = True, on_error: str = "raise", targets: bool = True):
        check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "chestx_det")
        self.binary = binary
        self.mask_names = ("abnormal",) if binary else CHESTX_DET_CLASSES
        annotations = require(self.root / f"ChestX_Det_{split}.json", "the ChestX-Det annotation file")
        try:
            entries = json.loads(annotations.read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(f"{annotations}: not valid JSON ({e})") from e
        records = []
        for n, entry in enumerate(entries):
            try:
                syms, polygons = entry["syms"], entry["polygons"]
                file_name = entry["file_name"]
            except (KeyError, TypeError) as e:
                raise DatasetError(f"{annotations}: entry {n} lacks file_name/syms/polygons") from e
            unknown = set(syms) - set(CHESTX_DET_CLASSES)
            if unknown:
                raise DatasetError(f"{annotations}: entry {n} ({file_name}) has unknown class {sorted(unknown)[0]!r}")
            labels = np.array([c in syms for c in CHESTX_DET_CLASSES], np.float32)
            records.append(Record(Path(file_name).stem, self.root / split / file_name, Path(file_name).stem,
                                  labels, {"syms": syms, "polygons": polygons}))
        super().__init__(records, size, on_error, targets)

    def read_masks(self, record: Record, height: int, width: int) -> np.ndarray:
        out = np.zeros((len(self.mask_names), height, width), dtype=bool)
        for sym, polygon in zip(record.extra["syms"], record.extra["polygons"]):
            channel = 0 if self.binary else CHESTX_DET_CLASSES.index(sym)
            out[channel] |= rasterize_polygons([polygon], height, width)
        return out


class SIIMACR(RealDataset):
    """SIIM-ACR pneumothorax: DICOMs with run-length masks in ``train-rle.csv`` (several rows = union).

    Only the training images carry public masks, so ``train`` / ``val`` / ``test`` are a seeded
    70/10/20 split of them (the paper's split is not published); ``all`` is every labelled image.
    """

    name = "siim_acr"
    splits = ("train", "val", "test", "all")
    label_names = ("pneumothorax",)
    mask_names = ("pneumothorax",)

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 seed: int = 0, on_error: str = "raise", targets: bool = True):
        check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "siim_acr")
        rle_csv = require(self.root / "train-rle.csv", "the SIIM-ACR run-length CSV")
        images = require(self.root / "dicom-images-train", "the SIIM-ACR training DICOM folder")
        runs: dict[str, list[str]] = {}
        for row in read_csv(rle_csv):
            if "ImageId" not in row or "EncodedPixels" not in row:
                raise DatasetError(f"{rle_csv}: expected columns ImageId, EncodedPixels; got {', '.join(row)}")
            runs.setdefault(row["ImageId"], []).append(row["EncodedPixels"])
        files = {p.stem: p for p in images.rglob("*.dcm")}
        ids = sorted(runs)
        if split != "all":
            ids = [ids[i] for i in group_split(ids, SPLIT_FRACTIONS, seed)[split]]
        records = []
        for image_id in ids:
            rles = [r for r in runs[image_id] if r not in ("-1", "")]
            records.append(Record(image_id, files.get(image_id, images / f"{image_id}.dcm"), image_id,
                                  np.array([bool(rles)], np.float32), {"rles": rles}))
        super().__init__(records, size, on_error, targets)

    def read_image(self, record: Record) -> np.ndarray:
        return read_dicom(record.path)

    def read_masks(self, record: Record, height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), dtype=bool)
        for rle in record.extra["rles"]:
            mask |= decode_siim_rle(rle, height, width)
        return mask[None]


class VinDrRibCXR(RealDataset):
    """VinDr-RibCXR: 245 PNGs, 20 rib polygons each (R1..R10, L1..L10) in one JSON per split.

    The JSON is a column table as written by pandas: ``{"img": {"0": path, ...}, "R1": {"0":
    [{"x": .., "y": ..}, ...] or "None", ...}, ...}``. Masks follow :data:`VINDR_RIBS`.
    """

    name = "vindr_ribcxr"
    splits = ("train", "val")
    mask_names = VINDR_RIBS

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 on_error: str = "raise", targets: bool = True):
        check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "vindr_ribcxr")
        folder = require(self.root / split, f"the VinDr-RibCXR {split} folder")
        tables = sorted(folder.glob("*.json"))
        if len(tables) != 1:
            raise DatasetError(f"{folder}: expected one rib annotation JSON, found {len(tables)}")
        try:
            table = json.loads(tables[0].read_text())
        except json.JSONDecodeError as e:
            raise DatasetError(f"{tables[0]}: not valid JSON ({e})") from e
        missing = [k for k in ("img", *VINDR_RIBS) if k not in table]
        if missing:
            raise DatasetError(f"{tables[0]}: missing column {missing[0]!r}")
        records = []
        for key in sorted(table["img"], key=int):
            name = Path(table["img"][key]).name
            ribs = [table[r].get(key, "None") for r in VINDR_RIBS]
            records.append(Record(Path(name).stem, folder / "img" / name, Path(name).stem, None, {"ribs": ribs}))
        super().__init__(records, size, on_error, targets)

    def read_masks(self, record: Record, height: int, width: int) -> np.ndarray:
        out = np.zeros((len(VINDR_RIBS), height, width), dtype=bool)
        for channel, points in enumerate(record.extra["ribs"]):
            if isinstance(points, list) and points:
                out[channel] = rasterize_polygons([[(p["x"], p["y"]) for p in points]], height, width)
        return out


class DRIVE(RealDataset):
    """DRIVE retinal vessels: 20 training + 20 test images, masks [vessel, fov] (:data:`DRIVE_MASKS`).

    ``color="grey"`` gives [1,H,W] (the kit's convention); ``"rgb"`` gives [3,H,W].
    """

    name = "drive"
    splits = ("training", "test")
    mask_names = DRIVE_MASKS

    def __init__(self, root: str | Path, split: str = "training", size: int | None = 224, *,
                 color: str = "grey", on_error: str = "raise", targets: bool = True):
        split = {"train": "training"}.get(split, split)
        check_split(split, self.splits, self.name)
        if color not in ("grey", "rgb"):
            raise ValueError(f"drive: color must be 'grey' or 'rgb', got {color!r}")
        self.root = dataset_dir(root, "drive")
        self.color = color
        folder = require(self.root / split / "images", f"the DRIVE {split}/images folder")
        records = []
        for path in sorted(folder.glob("*.tif")):
            number = path.stem.split("_")[0]  # 21_training.tif -> 21
            vessel = self.root / split / "1st_manual" / f"{number}_manual1.gif"
            fov = self.root / split / "mask" / f"{path.stem}_mask.gif"
            records.append(Record(path.stem, path, number, None, {"masks": [vessel, fov]}))
        super().__init__(records, size, on_error, targets)

    def read_image(self, record: Record) -> np.ndarray:
        return read_rgb(record.path) if self.color == "rgb" else read_grey(record.path)

    def read_masks(self, record: Record, height: int, width: int) -> np.ndarray:
        return np.stack([read_mask(p) for p in record.extra["masks"]])
