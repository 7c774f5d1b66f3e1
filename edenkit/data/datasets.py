"""The paper's real datasets by name: :func:`open_dataset` and the :data:`DATASETS` registry.

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

This module is the public face of the loaders: the classes live in :mod:`edenkit.data.label_datasets`
and :mod:`edenkit.data.mask_datasets` on the base in :mod:`edenkit.data.dataset_base`; the file
decoders are in :mod:`edenkit.data.formats`, and :func:`edenkit.data.cache.open_image_dataset`
serves pretraining images from the cache when one exists.
"""

from __future__ import annotations

from pathlib import Path

from edenkit.data.dataset_base import (
    SPLIT_FRACTIONS,
    DatasetError,
    RealDataset,
    Record,
    dataset_dir,
    group_split,
)
from edenkit.data.label_datasets import (
    CHESTXRAY14_LABELS,
    CHESTXRAY14_VAL_FRACTION,
    JSRT,
    VINDR_CXR_LABELS,
    ChestXray14,
    EyePACS,
    Shenzhen,
    VinDrCXR,
    patient_of,
)
from edenkit.data.mask_datasets import (
    CHESTX_DET_CLASSES,
    DRIVE,
    DRIVE_MASKS,
    SCR,
    SCR_STRUCTURES,
    SIIMACR,
    VINDR_RIBS,
    ChestXDet,
    VinDrRibCXR,
)

__all__ = [
    "CHESTXRAY14_LABELS", "CHESTXRAY14_VAL_FRACTION", "CHESTX_DET_CLASSES", "DATASETS", "DRIVE", "DRIVE_MASKS",
    "JSRT", "SCR", "SCR_STRUCTURES", "SIIMACR", "SPLIT_FRACTIONS", "VINDR_CXR_LABELS", "VINDR_RIBS",
    "ChestXDet", "ChestXray14", "DatasetError", "EyePACS", "RealDataset", "Record", "Shenzhen", "VinDrCXR",
    "VinDrRibCXR", "dataset_dir", "group_split", "open_dataset", "patient_of",
]

DATASETS: dict[str, type[RealDataset]] = {
    "chestxray14": ChestXray14, "jsrt": JSRT, "scr": SCR, "chestx_det": ChestXDet, "siim_acr": SIIMACR,
    "vindr_cxr": VinDrCXR, "vindr_ribcxr": VinDrRibCXR, "shenzhen": Shenzhen, "drive": DRIVE, "eyepacs": EyePACS,
}


def open_dataset(name: str, root: str | Path, split: str, size: int | None = 224, **options) -> RealDataset:
    """Any real dataset by name, with images, labels and masks (``options`` go to its class)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name](root, split, size, **options)
