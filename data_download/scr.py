"""SCR (Segmentation in Chest Radiographs): lung, heart and clavicle masks for JSRT; free for research.

    python data_download/scr.py --data-root DATA --from scratch.zip

Result: DATA/scr/fold1/masks/<structure>/JPCLN001.gif, DATA/scr/fold2/... (needs DATA/jsrt too).
"""

from __future__ import annotations

from _common import main, manual_steps

STEPS = """1. Read the terms at https://www.isi.uu.nl/Research/Databases/SCR/ (research and education only,
   no redistribution; cite the SCR and JSRT papers) and download the masks archive from its download page.
2. Get the JSRT images as well: python data_download/jsrt.py (the masks have no images of their own).
3. Run: python {script} --data-root <DATA> --from /path/to/the/scr/archive   (or the unpacked folder)
Expected afterwards: {target}/fold1/masks/heart/*.gif and {target}/fold2/masks/..."""
# the standard layout: folder -> file pattern to find it by when it has another name
FOLDERS = {"fold1": None, "fold2": None}

steps = manual_steps("scr", STEPS, FOLDERS, splits=["fold1", "fold2"], script=__file__)


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
