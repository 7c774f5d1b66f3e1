"""Texture in body coordinates: v1's plane waves, and v2's per-patient multi-scale random fields.

Phantom v2 draws whatever belongs to the body (texture fields, vessel trees, devices on the skin) on a
:class:`BodyRaster`, a square raster over canonical coordinates, and samples it at each pixel's
(posed, deformed) canonical position. So a patient's texture moves with the body: two radiographs of
one patient show the same soft tissue, vessels and trabecular pattern, in a new pose.

The fields are Gaussian random fields with a power-law spectrum ``|f|^-slope`` inside a frequency
band; slope and amplitude are per patient. Three bands, for soft tissue (a few cycles across the
body), lung parenchyma (fine, faint: the interstitium seen through air, kept well below the vessels
so that the lungs do not look diseased) and trabecular bone (finest, inside bone only).
"""

from __future__ import annotations

import math

import numpy as np

LO, HI = -0.25, 1.25  # the raster covers this canonical square (a posed image may see past [0, 1])

# band (cycles per canonical unit, low and high), spectral slope range, amplitude range
BANDS = {
    "soft_tissue": ((1.0, 10.0), (2.5, 3.5), (0.1, 0.2)),
    "parenchyma": ((10.0, 45.0), (1.2, 2.2), (0.015, 0.035)),
    "bone": ((25.0, 90.0), (0.8, 1.6), (0.08, 0.2)),
}


def smooth_texture(rng: np.random.Generator, u, v, n_waves: int = 6, max_freq: float = 5.0) -> np.ndarray:
    """v1's low-frequency texture (overlapping soft tissue): a few random plane waves."""
    out = np.zeros_like(u)
    for _ in range(n_waves):
        fu, fv = (float(f) for f in rng.uniform(-max_freq, max_freq, 2) * 2 * np.pi)
        out += np.cos(fu * u + fv * v + float(rng.uniform(0, 2 * np.pi)))
    return out / math.sqrt(n_waves)


def raster_size(image_size: int) -> int:
    """Texels of the body raster: about 1.5 per image pixel across [0, 1], a power of two."""
    return int(min(1024, max(256, 2 ** math.ceil(math.log2(1.5 * image_size)))))


class BodyRaster:
    """A ``size`` x ``size`` raster over canonical ``[LO, HI]^2``, sampled bilinearly at pixels."""

    def __init__(self, size: int, u: np.ndarray, v: np.ndarray):
        self.size = size
        self.texel = (HI - LO) / size  # canonical units per texel
        # bilinear weights of every image pixel, computed once for all layers
        x = np.clip((u - LO) / self.texel - 0.5, 0.0, size - 1.001)
        y = np.clip((v - LO) / self.texel - 0.5, 0.0, size - 1.001)
        j, i = x.astype(np.int64), y.astype(np.int64)
        self._fx, self._fy = (x - j).astype(np.float32), (y - i).astype(np.float32)
        self._index = i * size + j

    def to_texels(self, points: np.ndarray) -> np.ndarray:
        """Canonical points [..., 2] (u, v) -> texel coordinates (column, row), centres at integers."""
        return (np.asarray(points) - LO) / self.texel - 0.5

    def sample(self, layer: np.ndarray) -> np.ndarray:
        """The layer [size, size] at every image pixel, float32."""
        flat = layer.reshape(-1)
        a, b = flat[self._index], flat[self._index + 1]
        c, d = flat[self._index + self.size], flat[self._index + self.size + 1]
        fx, fy = self._fx, self._fy
        return ((a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy).astype(np.float32)

    def splat(self, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Sum ``weights`` at the nearest texel of each canonical point: a [size, size] layer."""
        xy = np.rint(self.to_texels(points)).astype(np.int64)
        n = self.size
        ok = (xy[:, 0] >= 0) & (xy[:, 0] < n) & (xy[:, 1] >= 0) & (xy[:, 1] < n)
        flat = xy[ok, 1] * n + xy[ok, 0]
        return np.bincount(flat, weights=weights[ok], minlength=n * n).reshape(n, n).astype(np.float32)

    def grid(self, box) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
        """The texels covering a canonical box (u0, v0, u1, v1): (rows, cols), and their u, v."""
        u0, v0, u1, v1 = box
        lo = np.floor(self.to_texels(np.array([u0, v0]))).astype(int) - 1
        hi = np.ceil(self.to_texels(np.array([u1, v1]))).astype(int) + 2
        lo, hi = np.clip(lo, 0, self.size), np.clip(hi, 0, self.size)
        cols, rows = slice(lo[0], hi[0]), slice(lo[1], hi[1])
        us = LO + (np.arange(cols.start, cols.stop) + 0.5) * self.texel
        vs = LO + (np.arange(rows.start, rows.stop) + 0.5) * self.texel
        return (rows, cols), us[None, :], vs[:, None]


def random_fields(rng: np.random.Generator, size: int, amount: float) -> dict[str, np.ndarray]:
    """One zero-mean field per band of :data:`BANDS` on a ``size`` raster, each scaled by its
    per-patient amplitude (times ``amount``). The draws are the same for every ``amount``."""
    texel = (HI - LO) / size
    fy = np.fft.fftfreq(size, d=texel)[:, None]
    fx = np.fft.rfftfreq(size, d=texel)[None, :]
    f = np.sqrt(fx * fx + fy * fy).astype(np.float32)
    f[0, 0] = 1.0
    out = {}
    for name, ((f_lo, f_hi), slopes, amplitudes) in BANDS.items():
        slope, amplitude = rng.uniform(*slopes), rng.uniform(*amplitudes)
        noise = rng.standard_normal((2, size, size // 2 + 1), dtype=np.float32)
        # a power law inside the band, with soft (Gaussian) edges in log frequency
        band = np.exp(-0.5 * (np.log(f / np.sqrt(f_lo * f_hi)) / (0.5 * math.log(f_hi / f_lo))) ** 4)
        spectrum = (noise[0] + 1j * noise[1]) * (band * f ** (-slope / 2.0))
        spectrum[0, 0] = 0.0
        field = np.fft.irfft2(spectrum, s=(size, size)).astype(np.float32)
        field /= field.std() + 1e-12
        out[name] = (amount * amplitude) * field
    return out
