"""Real-dataset loaders, each on a tiny fixture written in the dataset's real on-disk format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from file_writers import gradient, write_dicom, write_png
from PIL import Image

from edenkit.data import datasets as D
from edenkit.data.formats import encode_siim_rle

# ---------------------------------------------------------------------------------- splits

def test_group_split_keeps_groups_whole_and_is_seeded():
    groups = [f"p{i // 3}" for i in range(60)]  # 20 patients, 3 images each
    parts = D.group_split(groups, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=3)
    assert sorted(sum(parts.values(), [])) == list(range(60))
    owners = {g: {name for name, idx in parts.items() if any(groups[i] == g for i in idx)} for g in set(groups)}
    assert all(len(o) == 1 for o in owners.values())
    assert abs(len(parts["train"]) - 42) <= 3 and abs(len(parts["test"]) - 12) <= 3
    assert parts == D.group_split(groups, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=3)
    assert parts != D.group_split(groups, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=4)


# ---------------------------------------------------------------------------------- ChestX-ray14

def make_chestxray14(root, official_lists=False):
    folder = root / "chestxray14"
    rows, train_val, test = [], [], []
    for patient in range(1, 13):
        for follow_up in range(patient % 3 + 1):
            name = f"{patient:08d}_{follow_up:03d}.png"
            write_png(folder / "images" / name, gradient())
            finding = "Cardiomegaly|Hernia" if patient == 2 else ("Effusion" if patient % 2 else "No Finding")
            rows.append(f"{name},{finding},{follow_up},{patient},50,M,PA,1024,1024,0.14,0.14")
            (test if patient > 9 else train_val).append(name)
    header = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position," \
             "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
    (folder / "Data_Entry_2017_v2020.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    (folder / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (folder / "test_list.txt").write_text("\n".join(test) + "\n")
    if official_lists:
        zeros = " ".join(["0"] * 14)
        (folder / "Xray14_train_official.txt").write_text(f"{train_val[0]} {zeros}\n")
        (folder / "Xray14_val_official.txt").write_text(f"{train_val[1]} {zeros}\n{train_val[2]} {zeros}\n")
    return folder


def test_chestxray14_items_labels_and_order(tmp_path):
    make_chestxray14(tmp_path)
    ds = D.ChestXray14(tmp_path, "train_val", size=16)
    item = next(ds[i] for i in range(len(ds)) if ds[i]["image_id"].startswith("00000002"))
    assert item["image"].shape == (1, 16, 16) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["image"][0, 8, 1] < item["image"][0, 8, 14]  # the ramp is not flipped
    expected = torch.zeros(14)
    expected[D.CHESTXRAY14_LABELS.index("Cardiomegaly")] = expected[13] = 1  # Hernia is last
    assert torch.equal(item["labels"], expected) and item["patient_id"] == "00000002"


def test_chestxray14_splits_are_patient_disjoint(tmp_path):
    folder = make_chestxray14(tmp_path)
    train = D.ChestXray14(folder, "train", size=8)
    val = D.ChestXray14(folder, "val", size=8)
    test = D.ChestXray14(folder, "test", size=8)
    train_patients = {r.patient_id for r in train.records}
    assert train_patients.isdisjoint(r.patient_id for r in val.records) and len(val) > 0
    assert {r.image_id for r in train.records} | {r.image_id for r in val.records} == \
        set((folder / "train_val_list.txt").read_text().split())
    assert all(int(r.patient_id) > 9 for r in test.records)
    assert [r.image_id for r in D.ChestXray14(folder, "val", size=8).records] == [r.image_id for r in val.records]
    with pytest.raises(ValueError, match="unknown split"):
        D.ChestXray14(folder, "validation")


def test_chestxray14_prefers_the_authors_lists(tmp_path):
    folder = make_chestxray14(tmp_path, official_lists=True)
    assert len(D.ChestXray14(folder, "train")) == 1 and len(D.ChestXray14(folder, "val")) == 2


def test_missing_and_corrupt_files_are_named_and_skipped_on_request(tmp_path, caplog):
    folder = make_chestxray14(tmp_path)
    missing = folder / "images" / "00000001_000.png"
    missing.unlink()
    with pytest.raises(D.DatasetError, match="00000001_000.png"):
        D.ChestXray14(folder, "train_val")
    skipping = D.ChestXray14(folder, "train_val", on_error="skip")
    assert ("missing" in dict(skipping.skipped).values()) and "00000001_000.png" in caplog.text

    write_png(missing, gradient())  # back in place; now a corrupt file
    corrupt = folder / "images" / "00000003_000.png"
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # truncated PNG
    strict = D.ChestXray14(folder, "train_val", on_error="raise", size=8)
    bad = next(i for i, r in enumerate(strict.records) if r.path == corrupt)
    with pytest.raises(D.DatasetError, match="00000003_000.png"):
        strict[bad]
    lenient = D.ChestXray14(folder, "train_val", on_error="skip", size=8)
    item = lenient[bad]
    assert item["image_id"] != "00000003_000.png" and item["index"] == bad
    assert any("00000003_000.png" in path for path, _ in lenient.skipped)


# ---------------------------------------------------------------------------------- JSRT / SCR

def make_jsrt_scr(root, side=64):
    names = ["JPCLN001", "JPCNN002", "JPCLN003", "JPCNN004"]
    for n, name in enumerate(names):
        raw = np.full((side, side), 800, dtype=">u2")
        raw[side // 4: 3 * side // 4, side // 8: side // 2 - 2] = 3600  # patient's right lung: image left
        (root / "jsrt" / "images").mkdir(parents=True, exist_ok=True)
        raw.tofile(root / "jsrt" / "images" / f"{name}.IMG")
        fold = "fold1" if n % 2 == 0 else "fold2"
        half = side // 2  # SCR masks are drawn at half resolution
        for structure, folder in D.SCR_STRUCTURES.items():
            mask = np.zeros((half, half), np.uint8)
            if structure == "right_lung":
                mask[half // 4: 3 * half // 4, half // 8: half // 2 - 1] = 255
            elif structure == "heart":
                mask[half // 2: 3 * half // 4, half // 3: 2 * half // 3] = 255
            path = root / "scr" / fold / "masks" / folder / f"{name}.gif"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(path)
    return root


def test_scr_masks_folds_and_orientation(tmp_path):
    make_jsrt_scr(tmp_path)
    fold1 = D.SCR(tmp_path, "fold1", size=32)
    assert [r.image_id for r in fold1.records] == ["JPCLN001", "JPCLN003"]
    assert len(D.SCR(tmp_path, "all", size=32)) == 4
    item = fold1[0]
    assert item["image"].shape == (1, 32, 32) and item["masks"].shape == (5, 32, 32)
    right_lung = item["masks"][0].bool()
    assert right_lung.any() and right_lung[:, :16].sum() > right_lung[:, 16:].sum()  # image's left side
    assert item["image"][0][right_lung].mean() < item["image"][0][~right_lung].mean()  # lung dark
    assert set(item["masks"].unique().tolist()) <= {0.0, 1.0}
    assert item["labels"].tolist() == [1.0]  # JPCLN: nodule
    heart_only = D.SCR(tmp_path, "fold2", size=32, structures=("heart",))[0]
    assert heart_only["masks"].shape == (1, 32, 32) and heart_only["labels"].tolist() == [0.0]
    assert D.SCR(tmp_path / "scr", "fold1", size=32)[0]["masks"].shape == (5, 32, 32)  # scr folder as root


def test_jsrt_images(tmp_path):
    make_jsrt_scr(tmp_path)
    ds = D.JSRT(tmp_path, size=16)
    assert len(ds) == 4 and ds[2]["labels"].tolist() == [0.0] and "masks" not in ds[0]


# ---------------------------------------------------------------------------------- ChestX-Det

def test_chestx_det_polygons_to_masks(tmp_path):
    folder = tmp_path / "chestx_det"
    write_png(folder / "train" / "100.png", gradient(64, 64))
    write_png(folder / "train" / "101.png", gradient(64, 64))
    square = [[8, 8], [24, 8], [24, 24], [8, 24]]
    other = [[40, 40], [56, 40], [56, 56]]
    entries = [{"file_name": "100.png", "syms": ["Nodule", "Effusion"], "boxes": [[8, 8, 24, 24], [40, 40, 56, 56]],
                "polygons": [square, other]},
               {"file_name": "101.png", "syms": [], "boxes": [], "polygons": []}]
    (folder / "ChestX_Det_train.json").write_text(json.dumps(entries))
    binary = D.ChestXDet(tmp_path, "train", size=32)
    item = binary[0]
    assert item["masks"].shape == (1, 32, 32) and item["masks"][0, 8, 8] == 1 and item["masks"][0, 22, 26] == 1
    assert item["labels"][D.CHESTX_DET_CLASSES.index("Nodule")] == 1 and item["labels"].sum() == 2
    assert binary[1]["masks"].sum() == 0
    per_class = D.ChestXDet(folder, "train", size=32, binary=False)[0]["masks"]
    assert per_class.shape == (13, 32, 32)
    assert per_class[D.CHESTX_DET_CLASSES.index("Nodule"), 8, 8] == 1
    assert per_class[D.CHESTX_DET_CLASSES.index("Effusion"), 8, 8] == 0
    entries[0]["syms"][0] = "Nodulus"
    (folder / "ChestX_Det_train.json").write_text(json.dumps(entries))
    with pytest.raises(D.DatasetError, match="Nodulus"):
        D.ChestXDet(folder, "train")


# ---------------------------------------------------------------------------------- SIIM-ACR

def test_siim_dicom_and_rle_masks(tmp_path):
    folder = tmp_path / "siim_acr"
    ids = [f"1.2.3.{i}" for i in range(10)]
    for i, image_id in enumerate(ids):
        write_dicom(folder / "dicom-images-train" / f"study{i}" / "series" / f"{image_id}.dcm",
                    gradient(16, 16))
    mask_a = np.zeros((16, 16), bool)
    mask_a[2:5, 3] = True
    mask_b = np.zeros((16, 16), bool)
    mask_b[10, 10:12] = True
    lines = ["ImageId, EncodedPixels"]  # the real header has a space before EncodedPixels
    lines += [f"{ids[0]}, {encode_siim_rle(mask_a)}", f"{ids[0]}, {encode_siim_rle(mask_b)}"]
    lines += [f"{image_id}, -1" for image_id in ids[1:]]
    (folder / "train-rle.csv").write_text("\n".join(lines) + "\n")
    everything = D.SIIMACR(tmp_path, "all", size=None)
    item = everything[0]
    assert item["image_id"] == ids[0] and item["labels"].tolist() == [1.0]
    assert torch.equal(item["masks"][0].bool(), torch.from_numpy(mask_a | mask_b))
    assert everything[1]["masks"].sum() == 0 and everything[1]["labels"].tolist() == [0.0]
    splits = [D.SIIMACR(folder, s, size=8) for s in ("train", "val", "test")]
    assert sorted(r.image_id for s in splits for r in s.records) == sorted(ids)


# ---------------------------------------------------------------------------------- VinDr-CXR / RibCXR

def test_vindr_cxr_labels_majority_and_monochrome1(tmp_path):
    folder = tmp_path / "vindr_cxr"
    for image_id in ("aaa", "bbb"):
        write_dicom(folder / "train" / f"{image_id}.dicom", gradient(16, 16).astype(np.uint16) * 16, "MONOCHROME1")
    header = "image_id,rad_id,Aortic enlargement,Pleural effusion,COPD,Lung tumor,Pneumonia,Tuberculosis," \
             "Other disease,No finding"
    rows = ["aaa,R1,0,1,0,1,0,0,0,0", "aaa,R2,0,1,0,0,0,0,0,0", "aaa,R3,0,0,0,0,0,0,0,0",
            "bbb,R1,0,0,0,0,0,0,0,1", "bbb,R2,0,0,0,0,0,0,0,1", "bbb,R4,0,0,0,0,0,0,1,0"]
    (folder / "annotations").mkdir()
    (folder / "annotations" / "image_labels_train.csv").write_text("\n".join([header, *rows]) + "\n")
    ds = D.VinDrCXR(tmp_path, "train", size=16)
    a, b = ds[0], ds[1]
    assert ds.label_names == D.VINDR_CXR_LABELS
    assert a["labels"].tolist() == [1, 0, 0, 0, 0, 0]  # effusion 2 of 3; tumour 1 of 3
    assert b["labels"].tolist() == [0, 0, 0, 0, 0, 1]  # "Other disease" matches "Other diseases"
    assert D.VinDrCXR(folder, "train", aggregate="any")[0]["labels"].tolist() == [1, 1, 0, 0, 0, 0]
    assert a["image"][0, 8, 1] > a["image"][0, 8, 14]  # MONOCHROME1: low stored values are white
    with pytest.raises(D.DatasetError, match="Hernia"):
        D.VinDrCXR(folder, "train", labels=("Hernia",))


def test_vindr_ribcxr_json_to_20_masks(tmp_path):
    folder = tmp_path / "vindr_ribcxr" / "val"
    table = {"img": {}, **{rib: {} for rib in D.VINDR_RIBS}}
    for k in range(2):
        name = f"VinDr_RibCXR_val_{k:03d}.png"
        write_png(folder / "img" / name, gradient(40, 40))
        table["img"][str(k)] = f"data/val/img/{name}"
        for r, rib in enumerate(D.VINDR_RIBS):
            y = 1 + r * 2 - (20 if rib.startswith("L") else 0)
            x0 = 2 if rib.startswith("R") else 22
            table[rib][str(k)] = [{"x": x0, "y": y}, {"x": x0 + 15, "y": y}, {"x": x0 + 15, "y": y + 1},
                                  {"x": x0, "y": y + 1}] if (k == 0 or rib != "L10") else "None"
    (folder / "Vindr_RibCXR_val_mask.json").write_text(json.dumps(table))
    ds = D.VinDrRibCXR(tmp_path, "val", size=None)
    item = ds[0]
    assert item["masks"].shape == (20, 40, 40)
    assert all(item["masks"][c].sum() > 0 for c in range(20))
    r1 = item["masks"][D.VINDR_RIBS.index("R1")]
    assert r1[1, 5] == 1 and r1[1, 30] == 0
    assert ds[1]["masks"][D.VINDR_RIBS.index("L10")].sum() == 0  # "None" -> empty mask


# ---------------------------------------------------------------------------------- Shenzhen, DRIVE, EyePACS

def test_shenzhen_labels_from_names_and_splits(tmp_path):
    folder = tmp_path / "shenzhen" / "CXR_png"
    for i in range(1, 21):
        write_png(folder / f"CHNCXR_{i:04d}_{i % 2}.png", gradient(24, 30))
    write_png(folder / "CHNCXR_0099_0_mask.png", gradient(4, 4))  # not an image of the set
    everything = D.Shenzhen(tmp_path, "all", size=16)
    assert len(everything) == 20
    assert everything[0]["labels"].tolist() == [1.0] and everything[1]["labels"].tolist() == [0.0]
    parts = [D.Shenzhen(tmp_path, s, size=16) for s in ("train", "val", "test")]
    ids = [r.image_id for p in parts for r in p.records]
    assert sorted(ids) == sorted(r.image_id for r in everything.records) and len(set(ids)) == 20
    assert len(parts[0]) == 14


def test_drive_vessel_and_fov_masks(tmp_path):
    root = tmp_path / "drive" / "training"
    rgb = np.dstack([gradient(30, 28)] * 3)
    write_png(root / "images" / "21_training.tif", rgb)
    vessel = np.zeros((30, 28), np.uint8)
    vessel[:, 14] = 255
    write_png(root / "1st_manual" / "21_manual1.gif", vessel)
    write_png(root / "mask" / "21_training_mask.gif", np.full((30, 28), 255, np.uint8))
    ds = D.DRIVE(tmp_path, "train", size=None)
    item = ds[0]
    assert item["image"].shape == (1, 30, 28) and item["masks"].shape == (2, 30, 28)
    assert item["masks"][0, :, 14].all() and item["masks"][0].sum() == 30 and item["masks"][1].all()
    assert D.DRIVE(tmp_path, "training", size=16, color="rgb")[0]["image"].shape == (3, 16, 16)


def test_eyepacs_unlabelled(tmp_path):
    folder = tmp_path / "eyepacs" / "train"
    folder.mkdir(parents=True)
    for name in ("10_left", "10_right", "13_left"):
        Image.fromarray(np.dstack([gradient(20, 20)] * 3)).save(folder / f"{name}.jpeg")
    ds = D.EyePACS(tmp_path, "train", size=8)
    assert len(ds) == 3 and ds[0]["patient_id"] == "10" and "labels" not in ds[0]


# ---------------------------------------------------------------------------------- entry points

def test_open_dataset_refuses_unknown_names_and_missing_folders(tmp_path):
    make_chestxray14(tmp_path)
    assert isinstance(D.open_dataset("chestxray14", tmp_path, "train", size=16), D.ChestXray14)
    with pytest.raises(ValueError, match="unknown dataset"):
        D.open_dataset("chestxray15", tmp_path, "train")
    with pytest.raises(D.DatasetError, match="images"):
        D.open_dataset("chestxray14", tmp_path / "nowhere", "train")


def test_viz_gallery_tree_and_rates(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from edenkit.viz import data as viz

    make_jsrt_scr(tmp_path)
    scr = D.SCR(tmp_path, "fold1", size=32)
    fig = viz.show_items(scr, [0, 1], title="SCR")
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "JPCLN001\nnodule"
    assert {t.get_text() for t in fig.legends[0].get_texts()} == set(D.SCR_STRUCTURES)
    assert fig.get_suptitle() == "SCR"
    tree = viz.folder_tree(tmp_path, depth=3, files_per_folder=1)
    assert "jsrt/" in tree and "JPCLN001.IMG" in tree and "... 3 more files" in tree
    bars = viz.read_rates({"decode": 40.0, "cache": 6000.0})
    assert bars.axes[0].get_xscale() == "log"


# ---------------------------------------------------------------------------------- phantom exports, end to end

def test_loaders_read_the_phantom_chestxray14_export(tmp_path):
    from edenkit.phantom import FINDINGS
    from edenkit.phantom.export import export_chestxray14

    export_chestxray14(tmp_path / "chestxray14", n=30, size=64, seed=1)
    every = D.ChestXray14(tmp_path, "all", size=None)
    assert len(every) == 30 and every[0]["image"].shape == (1, 64, 64)
    phantom_labels = {D.CHESTXRAY14_LABELS.index(f.capitalize()) for f in FINDINGS}
    positives = {int(i) for r in every.records for i in np.flatnonzero(r.labels)}
    assert positives and positives <= phantom_labels  # only the phantom's four findings, at METHOD.md's indices
    train, val, test = (D.ChestXray14(tmp_path, s, size=32) for s in ("train", "val", "test"))
    assert len(train) + len(val) + len(test) == 30 and len(val) > 0
    patients = [{r.patient_id for r in d.records} for d in (train, val, test)]
    assert not (patients[0] & patients[1]) and not (patients[0] & patients[2]) and not (patients[1] & patients[2])


def test_loaders_read_the_phantom_jsrt_scr_export(tmp_path):
    from edenkit.phantom.export import export_jsrt_scr

    export_jsrt_scr(tmp_path, n=4, seed=2, size=128)
    scr = D.SCR(tmp_path, "all", size=64)
    assert len(scr) == 4 and len(D.SCR(tmp_path, "fold1")) == 2
    item = scr[0]
    image, masks = item["image"][0], item["masks"].bool()
    lungs = masks[0] | masks[1]
    heart = masks[list(D.SCR_STRUCTURES).index("heart")]
    assert image[lungs].mean() < image[heart].mean()  # read the right way round: dark lungs, bright heart
    right_lung = masks[0]
    assert right_lung[:, :32].sum() > right_lung[:, 32:].sum()  # the patient's right is the image's left
    jsrt = D.JSRT(tmp_path, size=None)
    assert jsrt[0]["image"].shape == (1, 128, 128)
    assert sum(r.labels[0] for r in jsrt.records) == sum(r.image_id.startswith("JPCLN") for r in jsrt.records)
