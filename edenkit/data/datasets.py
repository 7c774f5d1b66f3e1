"""The paper's real datasets, read from their real on-disk formats.

Every loader returns the same item dicts as :class:`edenkit.phantom.PhantomDataset`:
``{"image": float [1,H,W] in [0,1], "index": int, "image_id": str, "patient_id": str}`` plus
``"labels"`` (float multi-hot) and/or ``"masks"`` (float [S,H,W]) where the dataset has them.
Images are grey; radiographs are shown the usual way (air and lungs dark, bone bright).

``root`` may be the dataset's own folder or the data root that holds it (``<root>/<name>``); the
standard layout each loader expects is written by the scripts in ``data_download/`` and documented
in ``data_download/README.md``:

=============  ===================================================================================
chestxray14    images/*.png, Data_Entry_2017_v2020.csv (or Data_Entry_2017.csv), train_val_list.txt,
               test_list.txt; optional Xray14_{train,val,test}_official.txt (the authors' lists)
jsrt           images/JPCLN001.IMG ... (raw, no header, 16-bit big-endian, 12 bits used)
scr            fold1/masks/<structure>/JPCLN001.gif, fold2/... (+ the jsrt folder beside it)
chestx_det     train/*.png, test/*.png, ChestX_Det_train.json, ChestX_Det_test.json
siim_acr       dicom-images-train/**/<ImageId>.dcm, train-rle.csv
vindr_cxr      train/*.dicom, test/*.dicom, annotations/image_labels_{train,test}.csv
vindr_ribcxr   {train,val}/img/*.png, {train,val}/*.json (20 rib polygons per image)
shenzhen       CXR_png/CHNCXR_0001_0.png ... (_0 normal, _1 tuberculosis)
drive          {training,test}/images/*.tif, 1st_manual/*_manual1.gif, mask/*_mask.gif
eyepacs        {train,test}/*.jpeg (unlabelled, for pretraining the fundus model)
=============  ===================================================================================

**Missing and corrupt files** follow ``on_error``: ``"raise"`` (default) stops with an error that
names the file; ``"skip"`` drops files missing at construction and, for a file that fails to
decode later, logs it, records it in ``dataset.skipped`` and returns the next readable item, so an
epoch never dies on one bad file and nothing is skipped silently.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageDraw
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

log = logging.getLogger(__name__)

# The authors' ChestX-ray14 label order (METHOD.md).
CHESTXRAY14_LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
# The paper's ChestX-ray14 pretraining split sizes: train_val_list.txt = 75,312 + 11,212.
CHESTXRAY14_VAL_FRACTION = 11_212 / 86_524

# SCR structures, in the phantom's STRUCTURES order; values are SCR's folder names.
SCR_STRUCTURES = {
    "right_lung": "right lung", "left_lung": "left lung", "heart": "heart",
    "right_clavicle": "right clavicle", "left_clavicle": "left clavicle",
}
CHESTX_DET_CLASSES = (
    "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "Diffuse Nodule", "Effusion",
    "Emphysema", "Fibrosis", "Fracture", "Mass", "Nodule", "Pleural Thickening", "Pneumothorax",
)
# VinDr-CXR: the six classes of the authors' fine-tuning script (Adam-v2 target_tasks,
# class_name = ['PE', 'Lung tumor', ...]); "PE" read as pleural effusion (unconfirmed). Configurable.
VINDR_CXR_LABELS = ("Pleural effusion", "Lung tumor", "Pneumonia", "Tuberculosis", "Other diseases", "No finding")
VINDR_RIBS = tuple(f"R{i}" for i in range(1, 11)) + tuple(f"L{i}" for i in range(1, 11))
DRIVE_MASKS = ("vessel", "fov")

SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}  # for datasets without an official split


class DatasetError(RuntimeError):
    """A dataset folder, index file or image that cannot be read as expected."""


# ----------------------------------------------------------------------------------------------
# Decoders: one function per file format, plain NumPy in and out.
# ----------------------------------------------------------------------------------------------

def read_grey(path: str | Path) -> np.ndarray:
    """PNG / JPEG / TIFF / GIF -> float32 [H, W] in [0, 1]; 16-bit files keep their precision."""
    with Image.open(path) as im:
        if im.mode.startswith("I;16") or im.mode == "I":
            return np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def read_rgb(path: str | Path) -> np.ndarray:
    """Colour image -> float32 [3, H, W] in [0, 1] (fundus photographs)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0


def read_mask(path: str | Path) -> np.ndarray:
    """Binary mask image (GIF/PNG, 0 = background) -> bool [H, W]."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def read_jsrt_img(path: str | Path, invert: bool = True) -> np.ndarray:
    """A JSRT ``.IMG``: no header, 16-bit big-endian, 12 bits used, square (2048 x 2048).

    JSRT stores film density, so the lungs have HIGH values; ``invert=True`` maps them dark, as a
    radiograph is displayed (and as ChestX-ray14 stores them). The side is inferred from the size.
    """
    raw = np.fromfile(path, dtype=">u2")
    side = math.isqrt(raw.size)
    if raw.size == 0 or side * side != raw.size:
        raise DatasetError(f"{path}: {raw.size * 2} bytes is not a square 16-bit image (JSRT: 2048 x 2048 x 2)")
    image = np.clip(raw.reshape(side, side).astype(np.float32), 0, 4095) / 4095.0
    return 1.0 - image if invert else image


def read_dicom(path: str | Path) -> np.ndarray:
    """DICOM -> float32 [H, W] in [0, 1]: VOI LUT / window applied, min-max scaled, MONOCHROME1 inverted."""
    import pydicom

    try:
        from pydicom.pixels import apply_voi_lut  # pydicom >= 3
    except ImportError:  # pragma: no cover - pydicom 2.x
        from pydicom.pixel_data_handlers.util import apply_voi_lut
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    if pixels.ndim == 3:  # colour or multi-frame: grey from the first frame / the channel mean
        pixels = pixels.mean(axis=-1) if pixels.shape[-1] in (3, 4) else pixels[0]
    else:
        pixels = apply_voi_lut(pixels, ds)
    pixels = pixels.astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    image = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    if getattr(ds, "PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        image = 1.0 - image  # MONOCHROME1: the lowest value is white
    return image


def decode_siim_rle(rle: str, height: int, width: int) -> np.ndarray:
    """SIIM-ACR run-length string -> bool [H, W]; ``"-1"`` (or empty) is an empty mask.

    SIIM's variant is *relative*: pairs ``(gap, length)`` where each gap counts from the end of
    the previous run, over the pixels in column-major order (down the first column, then the next).
    """
    mask = np.zeros(height * width, dtype=bool)
    text = str(rle).strip()
    if text in ("", "-1"):
        return mask.reshape(height, width)
    numbers = np.asarray(text.split(), dtype=np.int64)
    if numbers.size % 2:
        raise ValueError(f"run-length string has an odd number of values ({numbers.size})")
    position = 0
    for gap, length in zip(numbers[0::2], numbers[1::2]):
        position += gap
        if position + length > mask.size:
            raise ValueError(f"run-length runs past the end of a {height} x {width} mask")
        mask[position:position + length] = True
        position += length
    return mask.reshape(width, height).T


def encode_siim_rle(mask: np.ndarray) -> str:
    """bool [H, W] -> SIIM relative run-length string (``"-1"`` when empty); inverse of the decoder."""
    flat = np.concatenate([[0], np.asarray(mask, dtype=np.int8).T.ravel(), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if starts.size == 0:
        return "-1"
    gaps = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{g} {n}" for g, n in zip(gaps, ends - starts))


def rasterize_polygons(polygons: Iterable[Sequence[Sequence[float]]], height: int, width: int,
                       scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Fill polygons of ``(x, y)`` pixel points into a bool [H, W] mask (points scaled by ``(sx, sy)``)."""
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    sx, sy = scale
    for polygon in polygons:
        points = [(float(x) * sx, float(y) * sy) for x, y in polygon]
        if len(points) >= 3:
            draw.polygon(points, fill=1, outline=1)
        elif points:  # a degenerate annotation still marks its pixels
            draw.line(points, fill=1)
    return np.array(canvas, dtype=bool)


def resize_image(image: np.ndarray, size: int | None) -> torch.Tensor:
    """float [H, W] or [C, H, W] -> tensor [C, size, size] (bilinear, antialiased); ``None`` keeps the size."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    if tensor.ndim == 2:
        tensor = tensor[None]
    if size is not None and tuple(tensor.shape[-2:]) != (size, size):
        tensor = TF.resize(tensor, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return tensor.clamp_(0.0, 1.0)


def resize_masks(masks: np.ndarray, size: int | None) -> torch.Tensor:
    """bool [S, H, W] -> float [S, size, size] (nearest neighbour, so masks stay binary)."""
    tensor = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8))
    if size is not None and tuple(tensor.shape[-2:]) != (size, size):
        tensor = TF.resize(tensor, [size, size], interpolation=InterpolationMode.NEAREST)
    return tensor.float()


# ----------------------------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# The base class
# ----------------------------------------------------------------------------------------------

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


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path} not found: expected {what} (see data_download/README.md)")
    return path


def _check_split(split: str, allowed: Sequence[str], name: str) -> None:
    if split not in allowed:
        raise ValueError(f"{name}: unknown split {split!r}; expected one of {', '.join(allowed)}")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]


# ----------------------------------------------------------------------------------------------
# ChestX-ray14
# ----------------------------------------------------------------------------------------------

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
        _check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "chestxray14")
        self.images_dir = _require(self.root / "images", "a folder of ChestX-ray14 PNGs")
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
            for row in _read_csv(entry):
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
            return [row["Image Index"] for row in _read_csv(entry)]
        return sorted(p.name for p in self.images_dir.glob("*.png"))

    def _read_list(self, name: str) -> list[str]:
        path = _require(self.root / name, "the official ChestX-ray14 split list")
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


# ----------------------------------------------------------------------------------------------
# JSRT and SCR
# ----------------------------------------------------------------------------------------------

class JSRT(RealDataset):
    """JSRT: 247 raw ``.IMG`` radiographs; label = [nodule] from the name (JPCLN nodule / JPCNN none)."""

    name = "jsrt"
    label_names = ("nodule",)

    def __init__(self, root: str | Path, split: str = "all", size: int | None = 224, *,
                 on_error: str = "raise", targets: bool = True, invert: bool = True):
        _check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "jsrt")
        self.invert = invert
        images = _require(self.root / "images", "a folder of JSRT .IMG files")
        paths = sorted(p for p in images.iterdir() if p.suffix.upper() == ".IMG")
        records = [Record(p.stem, p, p.stem, np.array([p.stem.upper().startswith("JPCLN")], np.float32))
                   for p in paths]
        super().__init__(records, size, on_error, targets)

    def read_image(self, record: Record) -> np.ndarray:
        return read_jsrt_img(record.path, invert=self.invert)


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
        _check_split(split, self.splits, self.name)
        unknown = [s for s in structures if s not in SCR_STRUCTURES]
        if unknown:
            raise ValueError(f"scr: unknown structure {unknown[0]!r}; expected some of {', '.join(SCR_STRUCTURES)}")
        self.mask_names = tuple(structures)
        self.scr_root = dataset_dir(root, "scr")
        jsrt_root = dataset_dir(root, "jsrt") if (Path(root) / "jsrt").is_dir() else self.scr_root.parent / "jsrt"
        self.root = jsrt_root
        self.invert = invert
        images = _require(jsrt_root / "images", "the JSRT images beside the scr folder")
        folds = ("fold1", "fold2") if split == "all" else (split,)
        records = []
        discover = SCR_STRUCTURES[self.mask_names[0]] if self.mask_names else "heart"
        for fold in folds:
            first = _require(self.scr_root / fold / "masks" / discover, f"SCR {fold} masks")
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
        return np.stack([_resize_bool(m, height, width) for m in masks])


def _resize_bool(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    if mask.shape == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST), dtype=bool)


# ----------------------------------------------------------------------------------------------
# ChestX-Det
# ----------------------------------------------------------------------------------------------

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
        _check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "chestx_det")
        self.binary = binary
        self.mask_names = ("abnormal",) if binary else CHESTX_DET_CLASSES
        annotations = _require(self.root / f"ChestX_Det_{split}.json", "the ChestX-Det annotation file")
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


# ----------------------------------------------------------------------------------------------
# SIIM-ACR pneumothorax
# ----------------------------------------------------------------------------------------------

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
        _check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "siim_acr")
        rle_csv = _require(self.root / "train-rle.csv", "the SIIM-ACR run-length CSV")
        images = _require(self.root / "dicom-images-train", "the SIIM-ACR training DICOM folder")
        runs: dict[str, list[str]] = {}
        for row in _read_csv(rle_csv):
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


# ----------------------------------------------------------------------------------------------
# VinDr-CXR and VinDr-RibCXR
# ----------------------------------------------------------------------------------------------

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
        _check_split(split, self.splits, self.name)
        if aggregate not in ("majority", "any"):
            raise ValueError(f"vindr_cxr: aggregate must be 'majority' or 'any', got {aggregate!r}")
        self.root = dataset_dir(root, "vindr_cxr")
        self.label_names = tuple(labels)
        table = _require(self.root / "annotations" / f"image_labels_{split}.csv", "the VinDr-CXR label CSV")
        rows = _read_csv(table)
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
        _check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "vindr_ribcxr")
        folder = _require(self.root / split, f"the VinDr-RibCXR {split} folder")
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


# ----------------------------------------------------------------------------------------------
# Shenzhen, DRIVE, EyePACS
# ----------------------------------------------------------------------------------------------

class Shenzhen(RealDataset):
    """Shenzhen tuberculosis set: 662 PNGs, label [tb] from the name (``_0`` normal, ``_1`` TB).

    No official split: ``train`` / ``val`` / ``test`` are a seeded 70/10/20 split; ``all`` is all.
    """

    name = "shenzhen"
    splits = ("train", "val", "test", "all")
    label_names = ("tuberculosis",)

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 seed: int = 0, on_error: str = "raise", targets: bool = True):
        _check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "shenzhen")
        folder = _require(self.root / "CXR_png", "the Shenzhen CXR_png folder")
        paths = sorted(folder.glob("CHNCXR_*_[01].png"))
        if split != "all":
            paths = [paths[i] for i in group_split([p.stem for p in paths], SPLIT_FRACTIONS, seed)[split]]
        records = [Record(p.stem, p, p.stem.split("_")[1], np.array([p.stem.endswith("_1")], np.float32))
                   for p in paths]
        super().__init__(records, size, on_error, targets)


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
        _check_split(split, self.splits, self.name)
        if color not in ("grey", "rgb"):
            raise ValueError(f"drive: color must be 'grey' or 'rgb', got {color!r}")
        self.root = dataset_dir(root, "drive")
        self.color = color
        folder = _require(self.root / split / "images", f"the DRIVE {split}/images folder")
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


class EyePACS(RealDataset):
    """EyePACS (Kaggle diabetic retinopathy): fundus JPEGs, unlabelled here (pretraining only)."""

    name = "eyepacs"
    splits = ("train", "test")

    def __init__(self, root: str | Path, split: str = "train", size: int | None = 224, *,
                 color: str = "grey", on_error: str = "raise", targets: bool = True):
        _check_split(split, self.splits, self.name)
        self.root = dataset_dir(root, "eyepacs")
        self.color = color
        folder = _require(self.root / split, f"the EyePACS {split} folder")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg"))
        records = [Record(p.stem, p, p.stem.split("_")[0]) for p in paths]  # 10_left -> patient 10
        super().__init__(records, size, on_error, targets)

    def read_image(self, record: Record) -> np.ndarray:
        return read_rgb(record.path) if self.color == "rgb" else read_grey(record.path)


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------

DATASETS: dict[str, type[RealDataset]] = {
    "chestxray14": ChestXray14, "jsrt": JSRT, "scr": SCR, "chestx_det": ChestXDet, "siim_acr": SIIMACR,
    "vindr_cxr": VinDrCXR, "vindr_ribcxr": VinDrRibCXR, "shenzhen": Shenzhen, "drive": DRIVE, "eyepacs": EyePACS,
}


def open_dataset(name: str, root: str | Path, split: str, size: int | None = 224, **options) -> RealDataset:
    """Any real dataset by name, with images, labels and masks (``options`` go to its class)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name](root, split, size, **options)


def open_image_dataset(name: str, root: str | Path, split: str = "train", size: int | None = 224,
                       on_error: str = "raise") -> Dataset:
    """Unlabelled images for pretraining: items ``{"image", "index", "image_id", "patient_id"}``.

    When a complete cache for ``size`` exists (``python -m edenkit cache``), the images come from
    its memmap instead of being decoded, which is what keeps a GPU busy on ChestX-ray14.
    """
    from edenkit.data.cache import find_cache, open_cached_split  # cache builds on this module

    dataset = open_dataset(name, root, split, size, on_error=on_error, targets=False)
    cache = find_cache(root, name, size) if size is not None else None
    if cache is not None:
        return open_cached_split(cache, dataset)
    return dataset
