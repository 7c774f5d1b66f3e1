"""Shenzhen tuberculosis set (NLM, open): 662 PNGs, automatic.

    python data_download/shenzhen.py --data-root DATA

Result: DATA/shenzhen/CXR_png/CHNCXR_0001_0.png ... (_0 normal, _1 tuberculosis).
"""

from __future__ import annotations

from _common import arrange, check, fetch, main

from edenkit.data.download import ChecksumStore, RemoteFile

MIRRORS = [
    "https://openi.nlm.nih.gov/imgs/collections/ChinaSet_AllFiles.zip",
    "http://openi.nlm.nih.gov/imgs/collections/ChinaSet_AllFiles.zip",
]


def steps(args, root):
    target = root / "shenzhen"
    if not (target / "CXR_png").is_dir():
        source = args.source
        if source is None:
            downloads = target / "downloads"
            source = fetch([RemoteFile(url, "ChinaSet_AllFiles.zip") for url in MIRRORS], downloads,
                           ChecksumStore(downloads / "checksums.json"))
        arrange(source, target, {"CXR_png": "CHNCXR_*.png"})
        if args.source is None and not args.keep_archives:
            source.unlink()
    check("shenzhen", root, ["all"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
