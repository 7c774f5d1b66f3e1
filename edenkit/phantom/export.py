"""Write phantoms to disk in the real datasets' layouts, so the real loaders run end to end on them.

Two layouts, each what ``edenkit.data.datasets`` (and ``data_download/README.md``) expects:

``export_chestxray14(out, n, size, seed)``::

    out/images/00000001_000.png ...      8-bit grey PNG, "<patient:08d>_<follow-up:03d>.png"
    out/Data_Entry_2017.csv              the real header; Finding Labels "|"-joined, or "No Finding"
    out/BBox_List_2017.csv               boxes of the focal findings and of the enlarged heart
    out/train_val_list.txt, test_list.txt   patient-disjoint
    out/phantom_export.json              what was written (size, seed, counts)

``export_jsrt_scr(out, n, seed, size=2048)``::

    out/jsrt/images/JPCLN001.IMG ...     raw, no header, uint16 big-endian, 12 bits used;
                                         JPCLN = with a nodule, JPCNN = without, as in JSRT
    out/scr/fold1/masks/<structure>/JPCLN001.gif   SCR's folder names ("heart", "left lung", ...),
    out/scr/fold2/masks/...                        masks at half the image size (SCR: 1024 for 2048)
    out/phantom_export.json

JSRT stores film density: the raw value grows with X-ray *transmission*, so the lungs are HIGH and
bone is LOW; readers display ``1 - value / 4095`` (checked against public JSRT readers, which do
``1.0 - np.fromfile(path, ">u2") / 4096``). The export writes ``round((1 - image) * 4095)``.
SCR has two folds of about half the images each; the export puts odd-numbered images in fold1 and
even-numbered ones in fold2.

Both writers build the whole folder next to ``out`` and move it into place at the end, so an
interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from edenkit.data.formats import read_jsrt_img, write_jsrt_img  # noqa: F401 (read_jsrt_img: the inverse, re-exported)
from edenkit.phantom.overlay import overlay
from edenkit.phantom.render import FINDINGS, PhantomConfig, PhantomSample, generate

# the phantom's findings under ChestX-ray14's official label names
CHESTXRAY14_NAMES = {
    "cardiomegaly": "Cardiomegaly",
    "effusion": "Effusion",
    "nodule": "Nodule",
    "pneumothorax": "Pneumothorax",
}
CHESTXRAY14_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
# SCR's folder names, in the phantom's STRUCTURES order
SCR_FOLDERS = {
    "right_lung": "right lung",
    "left_lung": "left lung",
    "heart": "heart",
    "right_clavicle": "right clavicle",
    "left_clavicle": "left clavicle",
}
JSRT_PIXEL_SPACING_MM = 0.175  # JSRT: 2048 px over 35.84 cm


@contextmanager
def _staged_folder(out_dir: str | Path, overwrite: bool) -> Iterator[Path]:
    """A scratch folder beside ``out_dir`` that replaces it only when the block succeeds."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: the export folder exists and is not empty (pass overwrite=True)")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield stage
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _config(size: int, config: PhantomConfig | None) -> PhantomConfig:
    return dataclasses.replace(config or PhantomConfig(), size=int(size))


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of a mask's bounding box, ChestX-ray14's BBox_List convention."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _patients(n: int, rng: np.random.Generator, max_follow_ups: int) -> list[tuple[int, int]]:
    """(patient number from 1, follow-up from 0) for ``n`` images; patients have 1..max images."""
    out: list[tuple[int, int]] = []
    patient = 0
    while len(out) < n:
        patient += 1
        for follow_up in range(int(rng.integers(1, max_follow_ups + 1))):
            out.append((patient, follow_up))
    return out[:n]


def export_chestxray14(
    out_dir: str | Path,
    n: int,
    size: int = 1024,
    seed: int = 0,
    *,
    config: PhantomConfig | None = None,
    test_fraction: float = 0.2,
    max_follow_ups: int = 3,
    overwrite: bool = False,
) -> Path:
    """Write ``n`` phantoms as a ChestX-ray14-like folder (see the module docstring); returns it.

    Images of one patient share the anatomy (``generate(..., patient_seed=...)``) and differ in pose,
    exposure and findings, like NIH follow-ups. The train/test lists split by patient.
    """
    if n < 1:
        raise ValueError(f"export_chestxray14: n must be >= 1, got {n}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"export_chestxray14: test_fraction must be in [0, 1), got {test_fraction}")
    config = _config(size, config)
    rng = np.random.default_rng([int(seed), 14])
    visits = _patients(n, rng, max_follow_ups)
    n_patients = visits[-1][0]
    demographics = {
        p: (int(rng.integers(18, 90)), "F" if rng.random() < 0.45 else "M") for p in range(1, n_patients + 1)
    }
    test_patients = set((rng.permutation(n_patients)[: round(test_fraction * n_patients)] + 1).tolist())
    pixel_spacing = 0.143 * 1024 / config.size  # NIH PNGs: ~0.143 mm at 1024 px
    with _staged_folder(out_dir, overwrite) as stage:
        (stage / "images").mkdir()
        entries, boxes, lists = [], [], {"train_val_list.txt": [], "test_list.txt": []}
        for index, (patient, follow_up) in enumerate(tqdm(visits, desc="chestxray14 export", disable=None)):
            name = f"{patient:08d}_{follow_up:03d}.png"
            sample = generate(_image_seed(seed, index), config, patient_seed=_patient_seed(seed, patient))
            Image.fromarray(_to_uint8(sample.image)).save(stage / "images" / name)
            labels = [CHESTXRAY14_NAMES[f] for f in FINDINGS if sample.findings[f]]
            age, sex = demographics[patient]
            entries.append(
                [
                    name,
                    "|".join(labels) or "No Finding",
                    follow_up,
                    patient,
                    age,
                    sex,
                    "PA",
                    config.size,
                    config.size,
                ]
                + [f"{pixel_spacing:.3f}", f"{pixel_spacing:.3f}"]
            )
            for finding, mask in _bbox_masks(sample):
                box = _bbox(mask)
                if box is not None:
                    boxes.append([name, CHESTXRAY14_NAMES[finding], *box])
            lists["test_list.txt" if patient in test_patients else "train_val_list.txt"].append(name)
        _write_csv(stage / "Data_Entry_2017.csv", CHESTXRAY14_HEADER, entries)
        _write_csv(stage / "BBox_List_2017.csv", BBOX_HEADER, boxes)
        for list_name, names in lists.items():
            (stage / list_name).write_text("".join(f"{name}\n" for name in names))
        _write_manifest(
            stage, "chestxray14", n=n, size=config.size, seed=seed, patients=n_patients, config=config
        )
    return Path(out_dir)


def _bbox_masks(sample: PhantomSample):
    """(finding, mask) pairs that get a box: the focal findings, and the heart when enlarged."""
    if sample.findings["cardiomegaly"]:
        yield "cardiomegaly", sample.masks["heart"]
    yield from sample.finding_masks.items()


def export_jsrt_scr(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    *,
    size: int = 2048,
    config: PhantomConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``n`` phantoms as JSRT ``.IMG`` files with SCR masks (see the module docstring)."""
    if n < 1:
        raise ValueError(f"export_jsrt_scr: n must be >= 1, got {n}")
    if size % 2:
        raise ValueError(f"export_jsrt_scr: size must be even (SCR masks are half size), got {size}")
    config = _config(size, config)
    counts = {"JPCLN": 0, "JPCNN": 0}
    with _staged_folder(out_dir, overwrite) as stage:
        images = stage / "jsrt" / "images"
        images.mkdir(parents=True)
        for index in tqdm(range(n), desc="jsrt/scr export", disable=None):
            sample = generate(_image_seed(seed, index), config)
            prefix = "JPCLN" if sample.findings["nodule"] else "JPCNN"
            counts[prefix] += 1
            name = f"{prefix}{counts[prefix]:03d}"
            write_jsrt_img(images / f"{name}.IMG", sample.image)
            fold = "fold1" if index % 2 == 0 else "fold2"
            for structure, folder in SCR_FOLDERS.items():
                target = stage / "scr" / fold / "masks" / folder
                target.mkdir(parents=True, exist_ok=True)
                half = Image.fromarray(sample.masks[structure].astype(np.uint8) * 255)
                half = half.resize((size // 2, size // 2), Image.Resampling.BOX)
                half.point(lambda value: 255 if value > 127 else 0).save(target / f"{name}.gif")
        _write_manifest(
            stage,
            "jsrt_scr",
            n=n,
            size=size,
            seed=seed,
            mask_size=size // 2,
            nodules=counts["JPCLN"],
            config=config,
        )
    return Path(out_dir)


def _image_seed(seed: int, index: int) -> int:
    return int(seed) * 1_000_003 + index


def _patient_seed(seed: int, patient: int) -> int:
    return 2**40 + int(seed) * 1_000_003 + patient  # apart from the image seeds


def _write_csv(path: Path, header: str, rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        f.write(header + "\n")
        csv.writer(f, lineterminator="\n").writerows(rows)


def _write_manifest(stage: Path, layout: str, *, config: PhantomConfig, **facts) -> None:
    manifest = {
        "layout": layout,
        "generator": "edenkit.phantom",
        **facts,
        "config": dataclasses.asdict(config),
    }
    (stage / "phantom_export.json").write_text(json.dumps(manifest, indent=2) + "\n")


def write_samples(
    out_dir: str | Path, n: int, size: int = 256, seed: int = 0, config: PhantomConfig | None = None
) -> Path:
    """``n`` phantoms as PNGs (``phantom_0000.png``), overlays (``phantom_0000_overlay.png``) and
    ``phantoms.json`` with every image's landmarks, findings and cardiothoracic ratio."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = _config(size, config)
    records = []
    for index in range(n):
        sample = generate(_image_seed(seed, index), config)
        stem = f"phantom_{index:04d}"
        Image.fromarray(_to_uint8(sample.image)).save(out / f"{stem}.png")
        Image.fromarray(overlay(sample)).save(out / f"{stem}_overlay.png")
        records.append(
            {
                "file": f"{stem}.png",
                "seed": _image_seed(seed, index),
                "patient_id": sample.patient_id,
                "findings": sample.findings,
                "landmarks": {k: [round(x, 2), round(y, 2)] for k, (x, y) in sample.landmarks.items()},
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in sample.info.items()},
            }
        )
    (out / "phantoms.json").write_text(
        json.dumps({"size": size, "seed": seed, "images": records}, indent=2) + "\n"
    )
    return out
