"""The file decoders and codecs of the real datasets, each on a tiny file written in its real format."""

from __future__ import annotations

import numpy as np
import pytest
from file_writers import gradient, write_dicom, write_png
from PIL import Image

from edenkit.data import formats as F


def test_siim_rle_is_relative_and_column_major():
    mask = F.decode_siim_rle("1 2 5 1", height=4, width=3)
    expected = np.zeros((4, 3), bool)
    expected[1:3, 0] = True  # gap 1, run 2: rows 1-2 of column 0
    expected[0, 2] = True  # gap 5 from pixel 3 -> pixel 8 = column 2, row 0
    assert (mask == expected).all()
    assert not F.decode_siim_rle("-1", 4, 3).any() and not F.decode_siim_rle(" -1", 4, 3).any()
    rng = np.random.default_rng(0)
    random = rng.random((16, 12)) > 0.6
    assert (F.decode_siim_rle(F.encode_siim_rle(random), 16, 12) == random).all()
    with pytest.raises(ValueError, match="past the end"):
        F.decode_siim_rle("10 5", 3, 3)


def test_jsrt_raw_is_big_endian_and_inverted_so_lungs_are_dark(tmp_path):
    raw = np.full((64, 64), 1000, dtype=">u2")
    raw[16:48, 8:28] = 3500  # film density: the lung is HIGH in JSRT files
    path = tmp_path / "JPCLN001.IMG"
    raw.tofile(path)
    image = F.read_jsrt_img(path)
    assert image.shape == (64, 64) and image.dtype == np.float32
    assert image[30, 15] < image[5, 5]  # lung darker than the surround after inversion
    assert image[30, 15] == pytest.approx(1 - 3500 / 4095)
    assert F.read_jsrt_img(path, invert=False)[30, 15] == pytest.approx(3500 / 4095)
    (tmp_path / "bad.IMG").write_bytes(b"\0" * 30)
    with pytest.raises(F.DatasetError, match="bad.IMG"):
        F.read_jsrt_img(tmp_path / "bad.IMG")


def test_dicom_monochrome1_is_inverted_and_scaled(tmp_path):
    pixels = np.tile(np.arange(0, 4000, 250, dtype=np.uint16), (8, 1))  # 16 columns
    m2 = F.read_dicom(write_dicom(tmp_path / "a.dcm", pixels, "MONOCHROME2"))
    m1 = F.read_dicom(write_dicom(tmp_path / "b.dcm", pixels, "MONOCHROME1"))
    assert m2.min() == 0 and m2.max() == 1 and m2[0, 0] < m2[0, -1]
    assert np.allclose(m1, 1 - m2)


def test_read_grey_keeps_16_bit_and_drops_alpha(tmp_path):
    sixteen = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)
    path = tmp_path / "16.png"
    Image.fromarray(sixteen).save(path)
    assert F.read_grey(path)[3, 3] == pytest.approx(60000 / 65535, abs=1e-6)
    rgba = np.dstack([gradient(8, 8)] * 3 + [np.full((8, 8), 255, np.uint8)])
    assert F.read_grey(write_png(tmp_path / "rgba.png", rgba)).shape == (8, 8)


def test_polygons_fill_and_scale():
    square = [(2, 2), (6, 2), (6, 6), (2, 6)]
    mask = F.rasterize_polygons([square], 10, 10)
    assert mask[4, 4] and not mask[8, 8] and mask.sum() == 25
    half = F.rasterize_polygons([square], 5, 5, scale=(0.5, 0.5))
    assert half[2, 2] and not half[4, 4]


def test_jsrt_writer_and_reader_round_trip(tmp_path):
    image = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    path = tmp_path / "JPCNN001.IMG"
    F.write_jsrt_img(path, image)
    raw = np.fromfile(path, dtype=">u2")
    assert raw.size == 64 * 64 and raw.max() <= 4095 and raw[0] == 4095  # black is written HIGH (film density)
    assert np.abs(F.read_jsrt_img(path) - image).max() <= 0.5 / 4095 + 1e-6


def test_resizers_keep_range_and_binary_masks():
    image = F.resize_image(np.linspace(0, 1, 40 * 30, dtype=np.float32).reshape(40, 30), 16)
    assert image.shape == (1, 16, 16) and 0 <= image.min() and image.max() <= 1
    assert F.resize_image(np.zeros((3, 8, 8), np.float32), None).shape == (3, 8, 8)
    masks = np.zeros((2, 40, 30), bool)
    masks[0, 10:30, 5:20] = True
    small = F.resize_masks(masks, 16)
    assert small.shape == (2, 16, 16) and set(small.unique().tolist()) <= {0.0, 1.0} and not small[1].any()
    assert F.resize_mask_to(masks[0], 80, 60).shape == (80, 60) and F.resize_mask_to(masks[0], 80, 60).sum() == 4 * masks[0].sum()
