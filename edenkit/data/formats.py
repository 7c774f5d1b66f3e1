"""The real datasets' file formats: decoders, codecs and resizers, plain NumPy in and out.

One function per format (PNG/JPEG/TIFF/GIF, JSRT ``.IMG``, DICOM, SIIM run-lengths, polygon
annotations), so a loader is a list of files plus the decoder its dataset needs. The two resizers
turn a decoded image or mask stack into the tensors every loader returns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pydicom
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageDraw
from torchvision.transforms import InterpolationMode

try:
    from pydicom.pixels import apply_voi_lut  # pydicom >= 3
except ImportError:  # pragma: no cover - pydicom 2.x
    from pydicom.pixel_data_handlers.util import apply_voi_lut

# JSRT stores 12 bits in 16-bit words: 0 .. 4095.
JSRT_MAX = 4095


class DatasetError(RuntimeError):
    """A dataset folder, index file or image that cannot be read as expected."""


def read_grey(path: str | Path) -> np.ndarray:
    """PNG / JPEG / TIFF / GIF -> float32 [H, W] in [0, 1]; 16-bit files keep their precision."""
    with Image.open(path) as im:
        if im.mode.startswith("I;16") or im.mode == "I":
            return np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def read_rgb(path: str | Path) -> np.ndarray:
    """Colour image -> float32 [3, H, W] in [0, 1] (fundus photographs)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0


def read_mask(path: str | Path) -> np.ndarray:
    """Binary mask image (GIF/PNG, 0 = background) -> bool [H, W]."""
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def read_jsrt_img(path: str | Path, invert: bool = True) -> np.ndarray:
    """A JSRT ``.IMG``: no header, 16-bit big-endian, 12 bits used, square (2048 x 2048).

    JSRT stores film density, so the lungs have HIGH values; ``invert=True`` maps them dark, as a
    radiograph is displayed (and as ChestX-ray14 stores them). The side is inferred from the size.
    """
    raw = np.fromfile(path, dtype=">u2")
    side = math.isqrt(raw.size)
    if raw.size == 0 or side * side != raw.size:
        raise DatasetError(f"{path}: {raw.size * 2} bytes is not a square 16-bit image (JSRT: 2048 x 2048 x 2)")
    image = np.clip(raw.reshape(side, side).astype(np.float32), 0, JSRT_MAX) / float(JSRT_MAX)
    return 1.0 - image if invert else image


def write_jsrt_img(path: str | Path, image: np.ndarray) -> None:
    """A float image in [0, 1] (bright = attenuating) as a JSRT ``.IMG``: big-endian uint16,
    12 bits, transmission-like (lungs high); :func:`read_jsrt_img` reads it back."""
    raw = np.round((1.0 - np.clip(image, 0.0, 1.0)) * float(JSRT_MAX)).astype(">u2")
    raw.tofile(path)


def read_dicom(path: str | Path) -> np.ndarray:
    """DICOM -> float32 [H, W] in [0, 1]: VOI LUT / window applied, min-max scaled, MONOCHROME1 inverted."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    if pixels.ndim == 3:  # colour or multi-frame: grey from the first frame / the channel mean
        pixels = pixels.mean(axis=-1) if pixels.shape[-1] in (3, 4) else pixels[0]
    else:
        pixels = apply_voi_lut(pixels, ds)
    pixels = pixels.astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    image = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    if getattr(ds, "PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        image = 1.0 - image  # MONOCHROME1: the lowest value is white
    return image


def decode_siim_rle(rle: str, height: int, width: int) -> np.ndarray:
    """SIIM-ACR run-length string -> bool [H, W]; ``"-1"`` (or empty) is an empty mask.

    SIIM's variant is *relative*: pairs ``(gap, length)`` where each gap counts from the end of
    the previous run, over the pixels in column-major order (down the first column, then the next).
    """
    mask = np.zeros(height * width, dtype=bool)
    text = str(rle).strip()
    if text in ("", "-1"):
        return mask.reshape(height, width)
    numbers = np.asarray(text.split(), dtype=np.int64)
    if numbers.size % 2:
        raise ValueError(f"run-length string has an odd number of values ({numbers.size})")
    position = 0
    for gap, length in zip(numbers[0::2], numbers[1::2]):
        position += gap
        if position + length > mask.size:
            raise ValueError(f"run-length runs past the end of a {height} x {width} mask")
        mask[position:position + length] = True
        position += length
    return mask.reshape(width, height).T


def encode_siim_rle(mask: np.ndarray) -> str:
    """bool [H, W] -> SIIM relative run-length string (``"-1"`` when empty); inverse of the decoder."""
    flat = np.concatenate([[0], np.asarray(mask, dtype=np.int8).T.ravel(), [0]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if starts.size == 0:
        return "-1"
    gaps = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{g} {n}" for g, n in zip(gaps, ends - starts))


def rasterize_polygons(polygons: Iterable[Sequence[Sequence[float]]], height: int, width: int,
                       scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Fill polygons of ``(x, y)`` pixel points into a bool [H, W] mask (points scaled by ``(sx, sy)``)."""
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    sx, sy = scale
    for polygon in polygons:
        points = [(float(x) * sx, float(y) * sy) for x, y in polygon]
        if len(points) >= 3:
            draw.polygon(points, fill=1, outline=1)
        elif points:  # a degenerate annotation still marks its pixels
            draw.line(points, fill=1)
    return np.array(canvas, dtype=bool)


def resize_image(image: np.ndarray, size: int | None) -> torch.Tensor:
    """float [H, W] or [C, H, W] -> tensor [C, size, size] (bilinear, antialiased); ``None`` keeps the size."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    if tensor.ndim == 2:
        tensor = tensor[None]
    if size is not None and tuple(tensor.shape[-2:]) != (size, size):
        tensor = TF.resize(tensor, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return tensor.clamp_(0.0, 1.0)


def resize_masks(masks: np.ndarray, size: int | None) -> torch.Tensor:
    """bool [S, H, W] -> float [S, size, size] (nearest neighbour, so masks stay binary)."""
    tensor = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8))
    if size is not None and tuple(tensor.shape[-2:]) != (size, size):
        tensor = TF.resize(tensor, [size, size], interpolation=InterpolationMode.NEAREST)
    return tensor.float()


def resize_mask_to(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool [h, w] -> bool [height, width] by nearest neighbour (SCR draws masks at half resolution)."""
    if mask.shape == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST), dtype=bool)
