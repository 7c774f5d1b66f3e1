"""SIIM-ACR pneumothorax segmentation: DICOMs + run-length masks; needs a Kaggle account.

    python data_download/siim_acr.py --data-root DATA --from siim-data.zip

Result: DATA/siim_acr/dicom-images-train/**/<ImageId>.dcm and DATA/siim_acr/train-rle.csv.
"""

from __future__ import annotations

from _common import arrange, check, main

from edenkit.data.download import ManualStepRequired

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


def steps(args, root):
    target = root / "siim_acr"
    if args.source:
        arrange(args.source, target, FOLDERS, FILES)
    if not all((target / part).exists() for part in [*FOLDERS, *FILES]):
        raise ManualStepRequired(STEPS.format(target=target, script=__file__))
    check("siim_acr", root, ["all"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
