"""NIH ChestX-ray14: the 12 image archives (automatic), the authors' pretraining lists, the label CSV.

    python data_download/chestxray14.py --data-root DATA

Result: DATA/chestxray14/images/*.png (112,120), Xray14_{train,val}_official.txt (the authors'
75,312 / 11,212 pretraining split), and, after the manual step it prints, Data_Entry_2017_v2020.csv,
train_val_list.txt and test_list.txt. About 42 GB; reruns resume and skip finished archives.
"""

from __future__ import annotations

from _common import check, fetch, main, unpack

from edenkit.data.download import ChecksumStore, ManualStepRequired, RemoteFile

# The links of NIH's own batch_download_zips.py (no checksums are published: the first download
# records SHA-256 digests in chestxray14/downloads/checksums.json and later runs check them).
ARCHIVES = [
    "vfk49d74nhbxq3nqjg0900w5nvkorp5c", "i28rlmbvmfjbl8p2n3ril0pptcmcu9d1", "f1t00wrtdk94satdfb9olcolqx20z2jp",
    "0aowwzs5lhjrceb3qp67ahp0rd1l1etg", "v5e3goj22zr6h8tzualxfsqlqaygfbsn", "asi7ikud9jwnkrnkj99jnpfkjdes7l6l",
    "jn1b4mw4n6lnh74ovmcjb8y48h8xj07n", "tvpxmn7qyrgl0w8wfh9kqfjskv6nmm1j", "upyy3ml7qdumlgk2rfcvlb9k6gvqq2pj",
    "l6nilvfa9cg3s28tqv1qc1olm3gnz54p", "hhq8fkdgvcari67vfhs7ppg2w6ni4jze", "ioqwiy20ihqwyr8pf4c24eazhh281pbu",
]
# The authors' train/val lists (same files in the Eden/Adam and DiRA repositories of the lab).
AUTHOR_LISTS = ["Xray14_train_official.txt", "Xray14_val_official.txt"]
LIST_MIRRORS = [
    "https://raw.githubusercontent.com/fhaghighi/DiRA/main/dataset/{}",
    "https://raw.githubusercontent.com/fhaghighi/DiRA/master/dataset/{}",
]
BOX_FOLDER = "https://nihcc.app.box.com/v/ChestXray-NIHCC"
METADATA = ["Data_Entry_2017_v2020.csv", "train_val_list.txt", "test_list.txt"]


def steps(args, root):
    target = root / "chestxray14"
    downloads = target / "downloads"
    checksums = ChecksumStore(downloads / "checksums.json")
    for n, key in enumerate(ARCHIVES, 1):
        name = f"images_{n:03d}.tar.gz"
        if (target / f".extracted-{name}").is_file():
            continue
        archive = fetch([RemoteFile(f"https://nihcc.box.com/shared/static/{key}.gz", name)], downloads, checksums)
        unpack(archive, target, args.keep_archives)
    for name in AUTHOR_LISTS:
        if not (target / name).is_file():
            fetch([RemoteFile(m.format(name), name) for m in LIST_MIRRORS], target, checksums)
    missing = [m for m in METADATA if not (target / m).is_file()]
    check("chestxray14", root, ["train", "val"])
    if missing:
        raise ManualStepRequired(
            f"Box offers no stable direct link for the small metadata files. Open {BOX_FOLDER} in a browser, "
            f"download {', '.join(missing)} and put them in {target}/ (Data_Entry_2017.csv works too). "
            "They give the official test split and the labels of every image; pretraining needs only the "
            "images and the two lists already fetched.")
    check("chestxray14", root, ["test"])


if __name__ == "__main__":
    raise SystemExit(main(steps, __doc__))
