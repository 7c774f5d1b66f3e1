"""SCR (Segmentation in Chest Radiographs): lung, heart and clavicle masks for JSRT; free for research.

    python data_download/scr.py --data-root DATA --from scratch.zip

Result: DATA/scr/fold1/masks/<structure>/JPCLN001.gif, DATA/scr/fold2/... (needs DATA/jsrt too).
"""

from __future__ import annotations

from _common import arrange, check, main

from edenkit.data.download import ManualStepRequired

STEPS = """1. Read the terms at https://www.isi.uu.nl/Research/Databases/SCR/ (research and education only,
   no redistribution; cite the SCR and JSRT papers) and download the masks archive from its download page.
2. Get the JSRT images as well: python data_download/jsrt.py (the masks have no images of their own).
3. Run: python {script} --data-root <DATA> --from /path/to/the/scr/archive   (or the unpacked folder)
Expected afterwards: {target}/fold1/masks/heart/*.gif and {target}/fold2/masks/..."""
# the standard layout: folder -> file pattern to find it by when it has another name; single files
FOLDERS = {"fold1": None, "fold2": None}
FILES = ()


def steps(args, root):
    target = root / "scr"
    if args.source:
        arrange(args.source, target, FOLDERS, FILES)
    if not all((target / part).exists() for part in [*FOLDERS, *FILES]):
        raise ManualStepRequired(STEPS.format(target=target, script=__file__))
    check("scr", root, ["fold1", "fold2"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
