"""The phantom: determinism, ground truth that agrees with the image, findings, dataset, exports, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from edenkit.phantom import (
    FINDINGS,
    LANDMARKS,
    STRUCTURES,
    PhantomConfig,
    PhantomDataset,
    cardiothoracic_ratio,
    draw_findings,
    generate,
    rib_names,
)
from edenkit.phantom.export import export_chestxray14, export_jsrt_scr, read_jsrt_img
from edenkit.phantom.overlay import overlay
from edenkit.phantom.render import _rng

ALL = dict.fromkeys(FINDINGS, 1.0)
NONE = dict.fromkeys(FINDINGS, 0.0)


@pytest.fixture(scope="module")
def samples():
    """A few 256 px patients, with and without findings."""
    return [generate(seed, PhantomConfig(prevalence=dict.fromkeys(FINDINGS, 0.3))) for seed in range(10)]


# -- determinism and format --------------------------------------------------------------------------


def test_same_seed_same_bytes_and_different_seeds_differ():
    a, b, c = generate(7, size=96), generate(7, size=96), generate(8, size=96)
    assert a.image.tobytes() == b.image.tobytes()
    assert all(a.masks[k].tobytes() == b.masks[k].tobytes() for k in a.masks)
    assert a.landmarks == b.landmarks and a.findings == b.findings
    assert a.image.tobytes() != c.image.tobytes()


@pytest.mark.parametrize("size", [64, 128, 256])
def test_image_and_masks_format(size):
    s = generate(3, size=size)
    assert s.image.shape == (size, size) and s.image.dtype == np.float32
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert list(s.masks) == list(STRUCTURES) + list(rib_names(10))
    for name, mask in s.masks.items():
        assert mask.shape == (size, size) and mask.dtype == bool
        assert mask.sum() > 0, f"{name} is empty at {size} px"
    assert list(s.landmarks) == list(LANDMARKS) and list(s.findings) == list(FINDINGS)


def test_follow_ups_share_the_patient_not_the_visit():
    a = generate(1, size=64, patient_seed=99)
    b = generate(2, size=64, patient_seed=99)
    assert a.patient_id == b.patient_id == 99
    assert a.image.tobytes() != b.image.tobytes()


def test_bad_config_names_the_key():
    with pytest.raises(ValueError, match="prevalence.*'fracture'"):
        PhantomConfig(prevalence={"fracture": 0.1})
    with pytest.raises(ValueError, match="size"):
        PhantomConfig(size=8)
    with pytest.raises(ValueError, match=r"prevalence\['nodule'\]"):
        PhantomConfig(prevalence={"nodule": 1.5})


# -- the ground truth agrees with the image ---------------------------------------------------------


def test_anatomy_is_where_a_radiograph_has_it(samples):
    for s in samples:
        right, left = s.masks["right_lung"], s.masks["left_lung"]
        # the patient's right lung and clavicle are on the image's left
        assert _centroid(right)[0] < _centroid(left)[0]
        assert _centroid(s.masks["right_clavicle"])[0] < _centroid(s.masks["left_clavicle"])[0]
        assert not (right & left).any() and not ((right | left) & s.masks["heart"]).any()
        # heart sits low and mostly on the patient's left; clavicles above the lungs' centres
        assert _centroid(s.masks["heart"])[1] > _centroid(right)[1]
        assert _centroid(s.masks["heart"])[0] > s.image.shape[1] * 0.45
        # ribs are numbered from the top
        tops = [_centroid(s.masks[f"rib_right_{i}"])[1] for i in range(1, 11)]
        assert tops == sorted(tops)


def test_intensities_follow_the_masks(samples):
    for s in samples:
        img = s.image
        lungs = s.masks["right_lung"] | s.masks["left_lung"]
        ribs = np.any([m for k, m in s.masks.items() if k.startswith("rib_")], axis=0)
        focal = np.any([np.zeros_like(lungs), *s.finding_masks.values()], axis=0)
        clear_lung = lungs & ~focal
        assert img[s.masks["heart"]].mean() > img[clear_lung].mean() + 0.25
        assert img[clear_lung & ribs].mean() > img[clear_lung & ~ribs].mean() + 0.02
        body = s.extra_masks["body"]
        # outside the body is dark where it was exposed (v2's collimation border is bright, as on film)
        exposed = s.extra_masks.get("exposed", np.ones_like(body))
        assert img[~body & exposed].mean() < 0.1 < img[clear_lung].mean()
        for side in ("right", "left"):
            clavicle = s.masks[f"{side}_clavicle"]
            around = ndimage.binary_dilation(clavicle, iterations=4) & ~ndimage.binary_dilation(clavicle)
            assert img[clavicle & exposed].mean() > img[around & exposed].mean()


def test_small_patches_have_structure_not_flat_colour():
    s = generate(0, size=256)
    lungs = s.masks["right_lung"]
    ys, xs = np.nonzero(ndimage.binary_erosion(lungs, iterations=12))
    y, x = int(np.median(ys)), int(np.median(xs))
    assert s.image[y - 8 : y + 8, x - 8 : x + 8].std() > 0.02


@pytest.mark.parametrize("size", [64, 256])
def test_landmarks_lie_on_their_structures(size):
    tolerance = 1  # pixel, for rounding a sub-pixel landmark
    for seed in range(8):
        s = generate(seed, size=size)
        for name, (x, y) in s.landmarks.items():
            assert 0 <= x < size and 0 <= y < size, f"{name} outside the image"
        on = {
            "right_clavicle": s.masks["right_clavicle"],
            "left_clavicle": s.masks["left_clavicle"],
            "right_rib6": s.masks["rib_right_6"],
            "left_rib5": s.masks["rib_left_5"],
            "spinous_process": s.extra_masks["spine"],
            "end_of_thoracic_spine": s.extra_masks["spine"],
        }
        for name, mask in on.items():
            assert _near(mask, s.landmarks[name], tolerance), f"seed {seed}: {name} is not on its structure"
        lungs = s.masks["right_lung"] | s.masks["left_lung"]
        # hemidiaphragms: on the dome, i.e. lung just above and no lung just below
        for name, lung in (
            ("right_hemidiaphragm", s.masks["right_lung"]),
            ("left_hemidiaphragm", s.masks["left_lung"]),
        ):
            x, y = map(round, s.landmarks[name])
            assert lung[max(y - 3 * tolerance - 1, 0) : y, x].any(), f"seed {seed}: no lung above {name}"
            assert not lung[y + 1 : y + 4, x].any(), f"seed {seed}: lung below {name}"
        # azygos arch and pulmonary artery: in the mediastinum, at the border of the right / left lung
        # (which side: of the spine's line, since v2's pose rotates the body off the image's midline)
        top, end = np.asarray(s.landmarks["spinous_process"]), np.asarray(s.landmarks["end_of_thoracic_spine"])
        for name, side, lung in (
            ("azygos_arch", -1, s.masks["right_lung"]),
            ("pulmonary_artery", 1, s.masks["left_lung"]),
        ):
            x, y = s.landmarks[name]
            axis = end - top
            assert side * (axis[1] * (x - top[0]) - axis[0] * (y - top[1])) > 0, f"seed {seed}: {name} on the wrong side"
            assert not _near(lungs, (x, y), 0) and _near(lung, (x, y), max(2, round(0.045 * size))), name
        # the spine landmarks: spinous process above the end of the thoracic spine, which is near the domes
        assert s.landmarks["spinous_process"][1] < s.landmarks["end_of_thoracic_spine"][1]
        assert s.landmarks["end_of_thoracic_spine"][1] > s.landmarks["right_hemidiaphragm"][1]


# -- findings --------------------------------------------------------------------------------------------


def test_prevalence_matches_the_requested_rate():
    rates = {"cardiomegaly": 0.1, "effusion": 0.5, "nodule": 0.3, "pneumothorax": 0.0}
    config = PhantomConfig(size=64, prevalence=rates)
    # generate() draws its findings first, with draw_findings on the image's own stream ...
    for seed in range(12):
        assert generate(seed, config).findings == draw_findings(_rng(seed, 1), rates)
    # ... so the rate can be checked on many images without drawing them
    n = 4000
    found = np.array([[draw_findings(_rng(seed, 1), rates)[f] for f in FINDINGS] for seed in range(n)])
    for j, finding in enumerate(FINDINGS):
        p = rates[finding]
        tolerance = 4 * np.sqrt(p * (1 - p) / n) + 1e-9
        assert abs(found[:, j].mean() - p) <= tolerance, f"{finding}: {found[:, j].mean():.3f} vs {p}"
    # findings are independent: the co-occurrence rate is the product of the rates
    both = (found[:, 1] & found[:, 2]).mean()
    assert abs(both - 0.15) <= 4 * np.sqrt(0.15 * 0.85 / n)


def test_findings_look_like_findings():
    for seed in range(6):
        sick = generate(seed, PhantomConfig(prevalence=ALL))
        well = generate(seed, PhantomConfig(prevalence=NONE))
        assert all(sick.findings.values()) and not any(well.findings.values())
        assert set(sick.finding_masks) == {"effusion", "nodule", "pneumothorax"} and not well.finding_masks
        assert sick.info["cardiothoracic_ratio"] > 0.5 > well.info["cardiothoracic_ratio"]
        img = sick.image
        lungs = sick.masks["right_lung"] | sick.masks["left_lung"]
        nodule, effusion, ptx = (sick.finding_masks[k] for k in ("nodule", "effusion", "pneumothorax"))
        assert nodule.sum() > 0 and (nodule & ~lungs).sum() == 0
        ring = ndimage.binary_dilation(nodule, iterations=3) & ~nodule & lungs
        assert img[nodule].mean() > img[ring].mean() + 0.03, f"seed {seed}: the nodule is not brighter"
        # pleural fluid is denser than the aerated lung of that side; the pneumothorax rim darker
        assert effusion.sum() > 0 and img[effusion].mean() > img[lungs & ~effusion].mean()
        side = sick.masks["right_lung"] if (ptx & sick.masks["right_lung"]).any() else sick.masks["left_lung"]
        assert ptx.sum() > 0 and (ptx & ~side).sum() == 0
        same_place = well.image[ptx]
        assert img[ptx].mean() < same_place.mean(), f"seed {seed}: the pneumothorax is not darker"


@pytest.mark.parametrize("finding", FINDINGS)
def test_each_finding_alone_changes_only_its_region(finding):
    """Same seed with and without one finding: same patient, pose and exposure; the image changes
    (beyond the noise) only around the finding."""
    prevalence = {**NONE, finding: 1.0}
    # v2's pacemaker leads end in the heart and so follow an enlarged one, far from it: devices off here
    sick, well = (
        generate(4, PhantomConfig(size=128, prevalence=prevalence, devices=0.0)),
        generate(4, PhantomConfig(size=128, prevalence=NONE, devices=0.0)),
    )
    assert [f for f in FINDINGS if sick.findings[f]] == [finding]
    moved = (
        ("heart", "right_lung", "left_lung") if finding == "cardiomegaly" else ()
    )  # a big heart displaces lung
    assert all(np.array_equal(sick.masks[k], well.masks[k]) for k in sick.masks if k not in moved)
    changed = np.abs(sick.image - well.image) > 0.05
    region = sick.masks["heart"] if finding == "cardiomegaly" else sick.finding_masks[finding]
    assert region.dtype == bool and region.shape == (128, 128) and region.any()
    near = ndimage.binary_dilation(region | well.masks["heart"], iterations=4)
    assert changed.any() and (changed & ~near).mean() < 0.002


def test_cardiothoracic_ratio_from_masks():
    masks = {k: np.zeros((10, 20), bool) for k in ("heart", "right_lung", "left_lung")}
    masks["right_lung"][2:8, 2:8] = True
    masks["left_lung"][2:8, 12:18] = True
    masks["heart"][5:9, 7:15] = True
    assert cardiothoracic_ratio(masks) == pytest.approx(8 / 16)


# -- dataset ---------------------------------------------------------------------------------------------


def test_dataset_items_and_determinism_across_workers():
    ds = PhantomDataset(6, size=64, seed=3, structures=("heart", "rib_left_5"))
    item = ds[2]
    assert item["image"].shape == (1, 64, 64) and item["image"].dtype == torch.float32
    assert item["masks"].shape == (2, 64, 64) and item["labels"].shape == (len(FINDINGS),)
    assert item["landmarks"].shape == (len(LANDMARKS), 2) and item["index"] == 2
    expected = generate(3 * 1_000_003 + 2, size=64)
    assert torch.equal(item["image"][0], torch.from_numpy(expected.image))
    assert torch.equal(item["masks"][1].bool(), torch.from_numpy(expected.masks["rib_left_5"]))
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    batched = torch.cat([b["image"] for b in loader])
    assert torch.equal(batched, torch.stack([ds[i]["image"] for i in range(6)]))


def test_dataset_rejects_unknown_structures_and_indices():
    with pytest.raises(ValueError, match="rib_left_13"):
        PhantomDataset(2, size=64, structures=("rib_left_13",))
    with pytest.raises(IndexError):
        PhantomDataset(2, size=64)[2]


# -- exports: write, then read back (with plain readers and with the kit's real loaders) ----------------


def test_chestxray14_export_round_trip(tmp_path):
    out = export_chestxray14(tmp_path / "cxr14", n=8, size=64, seed=1)
    with open(out / "Data_Entry_2017.csv", newline="") as f:
        header = f.readline().strip()
        rows = list(csv.reader(f))
    assert header.startswith("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender")
    assert header.endswith("OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
    assert len(rows) == 8 and all(len(r) == 11 for r in rows)
    names = {"Cardiomegaly", "Effusion", "Nodule", "Pneumothorax", "No Finding"}
    for row in rows:
        name, labels, follow_up, patient = row[0], row[1], int(row[2]), int(row[3])
        assert name == f"{patient:08d}_{follow_up:03d}.png"
        assert set(labels.split("|")) <= names
        png = np.asarray(Image.open(out / "images" / name))
        assert png.dtype == np.uint8 and png.shape == (64, 64)
    manifest = json.loads((out / "phantom_export.json").read_text())
    assert manifest["size"] == 64 and manifest["n"] == 8
    train = (out / "train_val_list.txt").read_text().split()
    test = (out / "test_list.txt").read_text().split()
    assert sorted(train + test) == sorted(r[0] for r in rows)
    assert train and test and not {n.split("_")[0] for n in train} & {n.split("_")[0] for n in test}


def test_chestxray14_export_pixels_and_labels_match_the_generator(tmp_path):
    from edenkit.phantom import export as phantom_export

    out = export_chestxray14(tmp_path / "c", n=3, size=64, seed=2, config=PhantomConfig(prevalence=ALL))
    rows = list(csv.reader((out / "Data_Entry_2017.csv").read_text().splitlines()))[1:]
    config = PhantomConfig(size=64, prevalence=ALL)
    sample = generate(
        phantom_export._image_seed(2, 0), config, patient_seed=phantom_export._patient_seed(2, 1)
    )
    png = np.asarray(Image.open(out / "images" / rows[0][0]), dtype=np.float32) / 255
    assert np.abs(png - sample.image).max() <= 0.5 / 255 + 1e-6
    assert rows[0][1] == "Cardiomegaly|Effusion|Nodule|Pneumothorax"
    header, *boxes = (out / "BBox_List_2017.csv").read_text().splitlines()
    assert header == "Image Index,Finding Label,Bbox [x,y,w,h],,,"
    boxes = [row.split(",") for row in boxes]
    assert {b[1] for b in boxes} == {"Cardiomegaly", "Effusion", "Nodule", "Pneumothorax"}
    nodule = next(b for b in boxes if b[0] == rows[0][0] and b[1] == "Nodule")
    x, y, w, h = map(int, nodule[2:])
    assert sample.finding_masks["nodule"][y : y + h, x : x + w].sum() == sample.finding_masks["nodule"].sum()


def test_export_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "x"
    export_chestxray14(target, n=1, size=64)
    with pytest.raises(FileExistsError, match=str(target)):
        export_chestxray14(target, n=1, size=64)
    from edenkit.phantom import export as phantom_export

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(phantom_export, "write_jsrt_img", broken)
    with pytest.raises(RuntimeError):
        export_jsrt_scr(tmp_path / "j", n=2, size=64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_jsrt_scr_export_round_trip(tmp_path):
    config = PhantomConfig(prevalence={"nodule": 0.5})
    out = export_jsrt_scr(tmp_path / "jsrt_scr", n=4, seed=5, size=64, config=config)
    imgs = sorted((out / "jsrt" / "images").glob("*.IMG"))
    assert len(imgs) == 4 and all(p.stat().st_size == 64 * 64 * 2 for p in imgs)
    raw = np.fromfile(imgs[0], dtype=">u2")
    assert raw.max() <= 4095
    from edenkit.phantom import export as phantom_export

    # the files are written in generation order, named by nodule status: find image 0 by name
    first = generate(phantom_export._image_seed(5, 0), PhantomConfig(size=64, prevalence={"nodule": 0.5}))
    name = "JPCLN001" if first.findings["nodule"] else "JPCNN001"
    decoded = read_jsrt_img(out / "jsrt" / "images" / f"{name}.IMG")
    assert np.abs(decoded - first.image).max() <= 0.5 / 4095 + 1e-6
    # lungs are HIGH in the raw file (film density), as in JSRT
    raw = np.fromfile(out / "jsrt" / "images" / f"{name}.IMG", dtype=">u2").reshape(64, 64)
    assert raw[first.masks["right_lung"]].mean() > raw[first.masks["heart"]].mean()
    for folder in ("heart", "left lung", "right lung", "left clavicle", "right clavicle"):
        gif = out / "scr" / "fold1" / "masks" / folder / f"{name}.gif"
        mask = np.asarray(Image.open(gif).convert("L")) > 127
        assert mask.shape == (32, 32) and mask.any()
    heart = (
        np.asarray(Image.open(out / "scr" / "fold1" / "masks" / "heart" / f"{name}.gif").convert("L")) > 127
    )
    small = first.masks["heart"].reshape(32, 2, 32, 2).mean(axis=(1, 3)) > 0.5
    assert (heart == small).mean() > 0.97
    assert len(list((out / "scr" / "fold2" / "masks" / "heart").glob("*.gif"))) == 2


def test_real_loaders_read_the_exports(tmp_path):
    datasets = pytest.importorskip("edenkit.data.datasets")
    cxr = export_chestxray14(
        tmp_path / "chestxray14", n=6, size=64, seed=0, config=PhantomConfig(prevalence=ALL)
    )
    ds = datasets.ChestXray14(cxr, split="all", size=64)
    item = ds[0]
    assert item["image"].shape == (1, 64, 64)
    labels = dict(zip(datasets.CHESTXRAY14_LABELS, item["labels"].tolist()))
    assert labels["Cardiomegaly"] == labels["Nodule"] == 1.0 and labels["Mass"] == 0.0
    export_jsrt_scr(tmp_path / "root", n=4, seed=0, size=64)
    scr = datasets.SCR(tmp_path / "root", split="fold1", size=64)
    item = scr[0]
    assert item["masks"].shape == (5, 64, 64)
    lungs, heart = item["masks"][:2].amax(0) > 0.5, item["masks"][2] > 0.5
    assert item["image"][0][heart].mean() > item["image"][0][lungs].mean() + 0.2


# -- overlays and the CLI --------------------------------------------------------------------------------


def test_overlay_draws_masks_and_landmarks():
    s = generate(0, size=128)
    rgb = overlay(s)
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8
    x, y = map(round, s.landmarks["spinous_process"])
    assert tuple(rgb[y, x]) != (rgb[y, x, 0],) * 3  # coloured, not grey


def test_cli_generate_and_bench(tmp_path, capsys):
    from edenkit.cli import main

    assert (
        main(
            [
                "phantom",
                "generate",
                "--n",
                "2",
                "--size",
                "64",
                "--out",
                str(tmp_path / "g"),
                "--prevalence",
                "nodule=1",
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "g" / "phantoms.json").read_text())["images"][1]
    assert record["findings"]["nodule"] is True and set(record["landmarks"]) == set(LANDMARKS)
    assert (tmp_path / "g" / "phantom_0001_overlay.png").is_file()
    assert main(["phantom", "bench", "--n", "2", "--sizes", "64", "--json", str(tmp_path / "b.json")]) == 0
    assert "images/s" in capsys.readouterr().out
    assert json.loads((tmp_path / "b.json").read_text())["images_per_second"]["64"]["cpu"] > 0
    assert main(["phantom", "generate", "--n", "1", "--out", str(tmp_path / "h"), "--prevalence", "fracture=1"]) == 2
    assert "fracture" in capsys.readouterr().err  # one line naming the bad value (the CLI's error boundary)


# -- helpers ---------------------------------------------------------------------------------------------


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def _near(mask, xy, tolerance):
    x, y = round(xy[0]), round(xy[1])
    h, w = mask.shape
    window = mask[
        max(y - tolerance, 0) : min(y + tolerance + 1, h), max(x - tolerance, 0) : min(x + tolerance + 1, w)
    ]
    return bool(window.any())
