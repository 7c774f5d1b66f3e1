"""JSRT (Japanese Society of Radiological Technology): 247 raw radiographs; needs registration.

    python data_download/jsrt.py --data-root DATA --from All247images.zip

Result: DATA/jsrt/images/JPCLN001.IMG ... JPCNN093.IMG (2048 x 2048, 16-bit big-endian, 12 bits).
"""

from __future__ import annotations

from _common import arrange, check, main

from edenkit.data.download import ManualStepRequired

STEPS = """1. Register at http://db.jsrt.or.jp/eng.php (name, e-mail, affiliation); a password arrives by e-mail
   (each account allows a limited number of downloads).
2. Download the 247 images (All247images.zip; the .IMG files, no header).
3. Run: python {script} --data-root <DATA> --from /path/to/All247images.zip   (or the unpacked folder)
Expected afterwards: {target}/images/*.IMG"""
# the standard layout: folder -> file pattern to find it by when it has another name; single files
FOLDERS = {"images": "*.IMG"}
FILES = ()


def steps(args, root):
    target = root / "jsrt"
    if args.source:
        arrange(args.source, target, FOLDERS, FILES)
    if not all((target / part).exists() for part in [*FOLDERS, *FILES]):
        raise ManualStepRequired(STEPS.format(target=target, script=__file__))
    check("jsrt", root, ["all"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
