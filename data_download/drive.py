"""DRIVE retinal vessel segmentation: 40 fundus images with vessel and FOV masks; registration.

    python data_download/drive.py --data-root DATA --from DRIVE.zip

Result: DATA/drive/{training,test}/images/*.tif, 1st_manual/*_manual1.gif, mask/*_mask.gif.
"""

from __future__ import annotations

from _common import arrange, check, main

from edenkit.data.download import ManualStepRequired

STEPS = """1. Register at https://drive.grand-challenge.org and download the data (DRIVE.zip: training/, test/).
2. Run: python {script} --data-root <DATA> --from /path/to/DRIVE.zip   (or the unpacked folder)
Expected afterwards: {target}/training/images/*.tif and {target}/test/images/*.tif"""
# the standard layout: folder -> file pattern to find it by when it has another name; single files
FOLDERS = {"training": None, "test": None}
FILES = ()


def steps(args, root):
    target = root / "drive"
    if args.source:
        arrange(args.source, target, FOLDERS, FILES)
    if not all((target / part).exists() for part in [*FOLDERS, *FILES]):
        raise ManualStepRequired(STEPS.format(target=target, script=__file__))
    check("drive", root, ["training"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
