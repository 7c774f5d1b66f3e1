"""EyePACS (Kaggle Diabetic Retinopathy Detection): fundus JPEGs for pretraining; Kaggle account.

    python data_download/eyepacs.py --data-root DATA --from /path/to/unpacked/eyepacs

Result: DATA/eyepacs/train/*.jpeg (and test/*.jpeg if you want them for pretraining too).
"""

from __future__ import annotations

from _common import main, manual_steps

STEPS = """1. Make a Kaggle account, accept the rules of https://www.kaggle.com/c/diabetic-retinopathy-detection,
   create an API token (~/.kaggle/kaggle.json), then:
   kaggle competitions download -c diabetic-retinopathy-detection      (about 90 GB)
2. The images come as multi-part 7-Zip archives (train.zip.001 ...): unpack them with 7z
   (7z x train.zip.001), which gives train/*.jpeg.
3. Run: python {script} --data-root <DATA> --from /path/to/the/folder/holding/train
Expected afterwards: {target}/train/*.jpeg"""
# the standard layout: folder -> file pattern to find it by when it has another name
FOLDERS = {"train": "*.jpeg"}

steps = manual_steps("eyepacs", STEPS, FOLDERS, splits=["train"], script=__file__)


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
