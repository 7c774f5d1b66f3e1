"""JSRT (Japanese Society of Radiological Technology): 247 raw radiographs; needs registration.

    python data_download/jsrt.py --data-root DATA --from All247images.zip

Result: DATA/jsrt/images/JPCLN001.IMG ... JPCNN093.IMG (2048 x 2048, 16-bit big-endian, 12 bits).
"""

from __future__ import annotations

from _common import main, manual_steps

STEPS = """1. Register at http://db.jsrt.or.jp/eng.php (name, e-mail, affiliation); a password arrives by e-mail
   (each account allows a limited number of downloads).
2. Download the 247 images (All247images.zip; the .IMG files, no header).
3. Run: python {script} --data-root <DATA> --from /path/to/All247images.zip   (or the unpacked folder)
Expected afterwards: {target}/images/*.IMG"""
# the standard layout: folder -> file pattern to find it by when it has another name
FOLDERS = {"images": "*.IMG"}

steps = manual_steps("jsrt", STEPS, FOLDERS, splits=["all"], script=__file__)


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
