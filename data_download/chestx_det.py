"""ChestX-Det (Deepwise): 3,578 NIH images with 13 classes as polygons; automatic.

    python data_download/chestx_det.py --data-root DATA

Result: DATA/chestx_det/{train,test}/*.png and ChestX_Det_{train,test}.json.
"""

from __future__ import annotations

import shutil

from _common import check, fetch, main, unpack

from edenkit.data.download import ChecksumStore, RemoteFile

IMAGES = {"train": "http://resource.deepwise.com/ChestX-Det/train_data.zip",
          "test": "http://resource.deepwise.com/ChestX-Det/test_data.zip"}
ANNOTATION_MIRRORS = [
    "https://raw.githubusercontent.com/Deepwise-AILab/ChestX-Det-Dataset/main/{}",
    "https://raw.githubusercontent.com/Deepwise-AILab/ChestX-Det-Dataset/master/{}",
]


def steps(args, root):
    target = root / "chestx_det"
    downloads = target / "downloads"
    checksums = ChecksumStore(downloads / "checksums.json")
    for split, url in IMAGES.items():
        name = f"ChestX_Det_{split}.json"
        if not (target / name).is_file():
            fetch([RemoteFile(m.format(name), name) for m in ANNOTATION_MIRRORS], target, checksums)
        if (target / split).is_dir():
            continue
        staging = downloads / f"{split}_unpacked"
        unpack(fetch([RemoteFile(url, f"{split}_data.zip")], downloads, checksums), staging, args.keep_archives)
        pngs = sorted(staging.rglob("*.png"))  # the zip's inner folder name is not documented
        if not pngs:
            raise SystemExit(f"{staging}: no PNG images inside {split}_data.zip")
        shutil.move(str(pngs[0].parent), str(target / split))
        shutil.rmtree(staging)
    check("chestx_det", root, ["train", "test"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
