"""DRIVE retinal vessel segmentation: 40 fundus images with vessel and FOV masks; registration.

    python data_download/drive.py --data-root DATA --from DRIVE.zip

Result: DATA/drive/{training,test}/images/*.tif, 1st_manual/*_manual1.gif, mask/*_mask.gif.
"""

from __future__ import annotations

from _common import main, manual_steps

STEPS = """1. Register at https://drive.grand-challenge.org and download the data (DRIVE.zip: training/, test/).
2. Run: python {script} --data-root <DATA> --from /path/to/DRIVE.zip   (or the unpacked folder)
Expected afterwards: {target}/training/images/*.tif and {target}/test/images/*.tif"""
# the standard layout: folder -> file pattern to find it by when it has another name
FOLDERS = {"training": None, "test": None}

steps = manual_steps("drive", STEPS, FOLDERS, splits=["training"], script=__file__)


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
