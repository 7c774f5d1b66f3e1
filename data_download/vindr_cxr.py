"""VinDr-CXR: 18,000 DICOMs with radiologist labels; PhysioNet credentialed access.

    python data_download/vindr_cxr.py --data-root DATA --from physionet.org/files/vindr-cxr/1.0.0

Result: DATA/vindr_cxr/{train,test}/*.dicom and DATA/vindr_cxr/annotations/image_labels_{train,test}.csv.
"""

from __future__ import annotations

from _common import main, manual_steps

STEPS = """1. Become a credentialed PhysioNet user (https://physionet.org: account, CITI training, credentialing),
   then sign the data use agreement on https://physionet.org/content/vindr-cxr/1.0.0/
2. Download (about 200 GB; wget resumes with -c):
   wget -r -N -c -np --user <physionet-user> --ask-password https://physionet.org/files/vindr-cxr/1.0.0/
3. Run: python {script} --data-root <DATA> --from physionet.org/files/vindr-cxr/1.0.0
   (the folder is linked, not copied)
Expected afterwards: {target}/train, {target}/test, {target}/annotations"""
# the standard layout: folder -> file pattern to find it by when it has another name
FOLDERS = {"train": "*.dicom", "test": None, "annotations": "image_labels_train.csv"}

steps = manual_steps("vindr_cxr", STEPS, FOLDERS, splits=["train", "test"], script=__file__)


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
