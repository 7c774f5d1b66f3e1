"""SIIM-ACR pneumothorax segmentation: DICOMs + run-length masks; needs a Kaggle account.

    python data_download/siim_acr.py --data-root DATA --from siim-data.zip

Result: DATA/siim_acr/dicom-images-train/**/<ImageId>.dcm and DATA/siim_acr/train-rle.csv.
"""

from __future__ import annotations

from _common import main, manual_steps

STEPS = """1. Make a Kaggle account, accept the rules of the SIIM-ACR Pneumothorax Segmentation competition
   (https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation), and create an API token
   (Account -> Create New API Token -> ~/.kaggle/kaggle.json, chmod 600).
2. The competition kept its images in Google Cloud; a copy with the original stage-1 layout
   (dicom-images-train/, train-rle.csv) is shared as a Kaggle dataset: search Kaggle datasets for
   "siim-acr-pneumothorax-segmentation-data" and fetch it with
   kaggle datasets download -d <owner>/siim-acr-pneumothorax-segmentation-data
3. Run: python {script} --data-root <DATA> --from /path/to/the/zip   (or the unpacked folder)
Expected afterwards: {target}/dicom-images-train/ and {target}/train-rle.csv"""
# the standard layout: folder -> file pattern to find it by when it has another name; single files
FOLDERS = {"dicom-images-train": "*.dcm"}
FILES = ("train-rle.csv",)

steps = manual_steps("siim_acr", STEPS, FOLDERS, FILES, splits=["all"], script=__file__)


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
