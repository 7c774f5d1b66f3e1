"""The uint8 memmap cache: same pixels as the decoding loader, resumable, never valid half-built."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from edenkit.cli import main as cli_main
from edenkit.data import cache as C
from edenkit.data import datasets as D


def make_chestxray14(root, patients=10):
    folder = root / "chestxray14"
    (folder / "images").mkdir(parents=True)
    names = []
    rng = np.random.default_rng(0)
    for patient in range(1, patients + 1):
        for follow_up in range(patient % 2 + 1):
            name = f"{patient:08d}_{follow_up:03d}.png"
            Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(folder / "images" / name)
            names.append(name)
    header = "Image Index,Finding Labels,Follow-up #,Patient ID"
    rows = [f"{n},No Finding,0,{int(n[:8])}" for n in names]
    (folder / "Data_Entry_2017_v2020.csv").write_text("\n".join([header, *rows]) + "\n")
    (folder / "train_val_list.txt").write_text("\n".join(names[:-3]) + "\n")
    (folder / "test_list.txt").write_text("\n".join(names[-3:]) + "\n")
    return folder


def test_cache_holds_the_loader_pixels_and_serves_splits(tmp_path):
    make_chestxray14(tmp_path)
    info = C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=4, progress=False)
    assert (info.path / "COMPLETE").is_file() and info.path == tmp_path / "chestxray14" / "cache" / "16"
    images = np.load(info.images_file, mmap_mode="r")
    assert images.shape == (15, 16, 16) and images.dtype == np.uint8

    cached = C.open_image_dataset("chestxray14", tmp_path, "train", size=16)
    decoded = D.open_dataset("chestxray14", tmp_path, "train", size=16, targets=False)
    assert isinstance(cached, C.CachedImages) and len(cached) == len(decoded)
    for i in range(len(cached)):
        a, b = cached[i], decoded[i]
        assert a["image_id"] == b["image_id"] and a["patient_id"] == b["patient_id"]
        assert (a["image"] - b["image"]).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding only
    smaller = C.open_image_dataset("chestxray14", tmp_path, "train", size=8)  # served from the 16 px cache
    decoded_small = D.open_dataset("chestxray14", tmp_path, "train", size=8, targets=False)
    assert isinstance(smaller, C.CachedImages) and smaller[0]["image"].shape == (1, 8, 8)
    assert (smaller[0]["image"] - decoded_small[0]["image"]).abs().mean() < 0.05
    assert not isinstance(C.open_image_dataset("chestxray14", tmp_path, "train", size=20), C.CachedImages)


def test_open_image_dataset_without_cache_returns_images_only(tmp_path):
    make_chestxray14(tmp_path)
    ds = C.open_image_dataset("chestxray14", tmp_path, "train", size=16)
    assert not isinstance(ds, C.CachedImages)
    item = ds[0]
    assert set(item) == {"image", "index", "image_id", "patient_id"} and item["image"].shape == (1, 16, 16)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 1, 16, 16)


def test_an_interrupted_build_is_not_used_and_resumes(tmp_path, monkeypatch):
    make_chestxray14(tmp_path)
    real, calls = C._build_chunk, []

    def crash_on_third(task):
        calls.append(task[0])
        if len(calls) == 3:
            raise KeyboardInterrupt  # a kill in the middle of the build
        return real(task)

    monkeypatch.setattr(C, "_build_chunk", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=4, progress=False)
    path = C.cache_dir(tmp_path, "chestxray14", 16)
    assert (path / "images.npy").is_file() and not (path / "COMPLETE").exists()
    assert C.find_cache(tmp_path, "chestxray14", 16) is None
    with pytest.raises(C.CacheError, match="unfinished"):
        C.open_cache(path)
    assert not isinstance(C.open_image_dataset("chestxray14", tmp_path, "train", size=16), C.CachedImages)

    calls.clear()
    monkeypatch.setattr(C, "_build_chunk", lambda task: calls.append(task[0]) or real(task))
    C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=4, progress=False)
    assert calls == [2, 3]  # the two finished chunks were kept
    C.verify_cache(path)


def test_verify_detects_changed_bytes_and_foreign_images(tmp_path):
    make_chestxray14(tmp_path)
    info = C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=8, progress=False)
    images = np.load(info.images_file, mmap_mode="r+")
    images[9, 0, 0] ^= 0xFF
    images.flush()
    with pytest.raises(C.CacheError, match="rows 8..14"):
        C.verify_cache(info.path)
    (tmp_path / "chestxray14" / "images" / "00000011_000.png").write_bytes(
        (tmp_path / "chestxray14" / "images" / "00000001_000.png").read_bytes())
    csv = tmp_path / "chestxray14" / "Data_Entry_2017_v2020.csv"
    csv.write_text(csv.read_text() + "00000011_000.png,No Finding,0,11\n")
    with pytest.raises(C.CacheError, match="other images"):
        C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=8, progress=False)
    rebuilt = C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=8, progress=False, force=True)
    assert len(rebuilt.image_ids) == 16


def test_unreadable_images_are_left_out_when_skipping(tmp_path):
    folder = make_chestxray14(tmp_path)
    bad = folder / "images" / "00000002_000.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(D.DatasetError, match="00000002_000.png"):
        C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=4, progress=False)
    info = C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=4, progress=False,
                         on_error="skip", force=True)
    assert [info.image_ids[r] for r in info.failed_rows] == ["00000002_000.png"]
    cached = C.open_image_dataset("chestxray14", tmp_path, "train_val", size=16)
    assert "00000002_000.png" not in [cached[i]["image_id"] for i in range(len(cached))]


@pytest.mark.slow  # two spawned workers import torch: ~15 s on 2 cores
def test_cli_builds_in_parallel(tmp_path, capsys):
    make_chestxray14(tmp_path, patients=12)
    code = cli_main(["cache", "--dataset", "chestxray14", "--data-root", str(tmp_path), "--size", "12",
                     "--workers", "2", "--chunk-size", "5", "--verify"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["images"] == 18 and result["verified"] and result["failed"] == 0
    cached = C.open_image_dataset("chestxray14", tmp_path, "test", size=12)
    decoded = D.open_dataset("chestxray14", tmp_path, "test", size=12, targets=False)
    assert all((cached[i]["image"] - decoded[i]["image"]).abs().max() <= 0.5 / 255 + 1e-6 for i in range(3))


def test_on_error_skip_skips_missing_files_and_names_them(tmp_path, capsys):
    folder = make_chestxray14(tmp_path)
    (folder / "images" / "00000002_000.png").unlink()
    (folder / "images" / "00000003_001.png").write_bytes(b"not a png")
    with pytest.raises(D.DatasetError, match="missing.*00000002_000.png"):
        C.build_cache("chestxray14", tmp_path, 16, workers=1, chunk_size=4, progress=False)
    code = cli_main(["cache", "--dataset", "chestxray14", "--data-root", str(tmp_path), "--size", "16",
                     "--workers", "1", "--chunk-size", "4", "--on-error", "skip", "--force"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["images"] == 14 and result["missing"] == 1 and result["failed"] == 1
    assert result["skipped"] == 2
    assert result["skipped_files"] == [str(folder / "images" / "00000002_000.png"), "00000003_001.png"]
    info = C.find_cache(tmp_path, "chestxray14", 16)  # a rerun reads the same summary from COMPLETE
    assert info.missing == [str(folder / "images" / "00000002_000.png")]
    cached = C.open_image_dataset("chestxray14", tmp_path, "train_val", size=16, on_error="skip")
    ids = [cached[i]["image_id"] for i in range(len(cached))]
    assert "00000002_000.png" not in ids and "00000003_001.png" not in ids and len(ids) == 10
