"""VinDr-RibCXR: 245 radiographs with 20 rib polygons each; data-use agreement.

    python data_download/vindr_ribcxr.py --data-root DATA --from VinDr_RibCXR.zip

Result: DATA/vindr_ribcxr/{train,val}/img/*.png and one rib annotation JSON per split folder.
"""

from __future__ import annotations

from _common import arrange, check, main

from edenkit.data.download import ManualStepRequired

STEPS = """1. Request the data at https://vindr.ai/datasets/ribcxr (accept the data use agreement; a download
   link arrives by e-mail).
2. Run: python {script} --data-root <DATA> --from /path/to/the/archive   (or the unpacked data/ folder)
Expected afterwards: {target}/train/img/*.png, {target}/train/*.json, {target}/val/..."""
# the standard layout: folder -> file pattern to find it by when it has another name; single files
FOLDERS = {"train": None, "val": None}
FILES = ()


def steps(args, root):
    target = root / "vindr_ribcxr"
    if args.source:
        arrange(args.source, target, FOLDERS, FILES)
    if not all((target / part).exists() for part in [*FOLDERS, *FILES]):
        raise ManualStepRequired(STEPS.format(target=target, script=__file__))
    check("vindr_ribcxr", root, ["train", "val"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
