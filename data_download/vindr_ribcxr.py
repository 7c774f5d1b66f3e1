"""VinDr-RibCXR: 245 radiographs with 20 rib polygons each; data-use agreement.

    python data_download/vindr_ribcxr.py --data-root DATA --from VinDr_RibCXR.zip

Result: DATA/vindr_ribcxr/{train,val}/img/*.png and one rib annotation JSON per split folder.
"""

from __future__ import annotations

from _common import main, manual_steps

STEPS = """1. Request the data at https://vindr.ai/datasets/ribcxr (accept the data use agreement; a download
   link arrives by e-mail).
2. Run: python {script} --data-root <DATA> --from /path/to/the/archive   (or the unpacked data/ folder)
Expected afterwards: {target}/train/img/*.png, {target}/train/*.json, {target}/val/..."""
# the standard layout: folder -> file pattern to find it by when it has another name
FOLDERS = {"train": None, "val": None}

steps = manual_steps("vindr_ribcxr", STEPS, FOLDERS, splits=["train", "val"], script=__file__)


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
