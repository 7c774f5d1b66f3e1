"""Pulmonary vessels: v1's one fixed branching rule, and v2's per-patient trees on the body raster.

Both grow forking trees from each hilum, all generations at once per step: thick trunks centrally,
fine branches at the periphery. v1 rasterizes them straight onto the image. v2 draws a per-patient
tree (number of trunks, fork angles, lengths, asymmetry, curvature, calibre, contrast) in body
coordinates (``edenkit.phantom.texture.BodyRaster``), so the vessels follow the body's pose and
deformation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from edenkit.phantom.geometry import LEFT, RIGHT

if TYPE_CHECKING:
    from edenkit.phantom.anatomy import Anatomy

def lung_markings_v1(anatomy: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Pulmonary vessels: a branching tree from each hilum, thick centrally, fine at the periphery."""
    frame, n = anatomy.frame, anatomy.frame.size
    hila = [anatomy.hilum(side) for side in (RIGHT, LEFT)]
    points, weights, generation = vessel_trees_v1(rng, hila, n_steps=max(6, int(0.07 * n)))
    xy = np.rint(frame.to_pixels(points)).astype(np.int64)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < n) & (xy[:, 1] >= 0) & (xy[:, 1] < n)
    flat, weights, trunk = xy[ok, 1] * n + xy[ok, 0], weights[ok], generation[ok] < 2
    thick = np.bincount(flat[trunk], weights=weights[trunk], minlength=n * n).astype(np.float32)
    thin = np.bincount(flat[~trunk], weights=weights[~trunk], minlength=n * n).astype(np.float32)
    # about one point per pixel along a vessel, blurred across a width that grows with the size
    sigma = max(0.5, 0.0035 * n)
    out = 2.0 * ndimage.gaussian_filter(thick.reshape(n, n), 2.0 * sigma, truncate=3.0)
    if sigma > 1.0:
        out += ndimage.gaussian_filter(thin.reshape(n, n), sigma, truncate=3.0)
    else:  # a pixel wide: the image's own blur in _expose is enough; keep the blurred line's height
        out += thin.reshape(n, n) / (math.sqrt(2 * math.pi) * sigma)
    return np.minimum(out * (n / 256.0) * 0.5, 1.5)


def vessel_trees_v1(rng: np.random.Generator, hila, n_steps: int, generations: int = 6, n_trunks: int = 6):
    """Forking trees grown from the hila (one per side), all generations at once per step.

    Returns canonical points along every segment (``n_steps`` per segment), their weights (vessel
    calibre, shrinking at each fork) and their generation (0 = trunk).
    """
    fan = np.linspace(-1.3, 1.2, n_trunks)  # from down to up, pointing away from the mediastinum
    angle = np.concatenate([math.pi + fan, -fan]) + rng.uniform(-0.15, 0.15, 2 * n_trunks)
    start = np.repeat(np.asarray(hila, dtype=np.float64), n_trunks, axis=0)
    start += 0.012 * np.stack([np.cos(angle), np.sin(angle)], 1)  # trunks do not share one pixel
    length = rng.uniform(0.05, 0.075, 2 * n_trunks)
    width = np.ones(2 * n_trunks)
    steps = np.linspace(0.0, 1.0, n_steps)[None, :, None]
    points, weights, generation = [], [], []
    for g in range(generations):
        end = start + np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None]
        points.append((start[:, None] + steps * (end - start)[:, None]).reshape(-1, 2))
        weights.append(np.repeat(width, n_steps))
        generation.append(np.full(len(width) * n_steps, g))
        fork = rng.uniform(0.2, 0.5, (len(angle), 2)) * np.array([1.0, -1.0])
        angle = (angle[:, None] + fork).reshape(-1)
        start = np.repeat(end, 2, axis=0)
        length = np.repeat(length * 0.8, 2) * rng.uniform(0.75, 1.2, len(angle))
        width = np.repeat(width * 0.62, 2)
    return np.concatenate(points), np.concatenate(weights), np.concatenate(generation)



def vessel_layer(rng: np.random.Generator, raster, hila, amount: float) -> tuple[np.ndarray, float]:
    """v2: a per-patient vessel tree drawn on ``raster``; returns (layer, contrast).

    ``amount`` = 0 gives v1's rule (six trunks a side, its fork angles, calibre and contrast), 1 the
    per-patient spread. The draws are the same for every ``amount``."""
    n_trunks = int(rng.integers(4, 9))
    fork_lo, fork_hi = rng.uniform(0.12, 0.3), rng.uniform(0.4, 0.7)
    length, decay = rng.uniform(0.045, 0.085), rng.uniform(0.72, 0.88)
    calibre, taper = rng.uniform(0.7, 1.3), rng.uniform(0.5, 0.66)
    asymmetry, bend = rng.uniform(0.0, 0.35), rng.uniform(0.0, 0.025)
    contrast = rng.uniform(0.3, 0.6)
    spread = rng.uniform(2.2, 2.8)
    stream = np.random.default_rng(rng.integers(2**63))
    if amount <= 0:
        n_trunks, fork_lo, fork_hi, length, decay, calibre, taper = 6, 0.2, 0.5, 0.0625, 0.8, 1.0, 0.62
        asymmetry, bend, contrast, spread = 0.0, 0.0, 0.40, 2.5
    else:
        mix = min(float(amount), 1.0)
        contrast = 0.40 + mix * (contrast - 0.40)
    n_steps = max(8, raster.size // 24)
    fan = np.linspace(-spread / 2 - 0.05, spread / 2, n_trunks)
    angle = np.concatenate([math.pi + fan, -fan]) + stream.uniform(-0.15, 0.15, 2 * n_trunks)
    start = np.repeat(np.asarray([hila[RIGHT], hila[LEFT]], dtype=np.float64), n_trunks, axis=0)
    start += 0.012 * np.stack([np.cos(angle), np.sin(angle)], 1)
    seg_length = length * stream.uniform(0.8, 1.2, 2 * n_trunks)
    width = np.ones(2 * n_trunks)
    t = np.linspace(0.0, 1.0, n_steps)[None, :, None]
    layers = np.zeros((2, raster.size, raster.size), np.float32)
    for g in range(6):
        direction = np.stack([np.cos(angle), np.sin(angle)], 1)
        end = start + direction * seg_length[:, None]
        normal = np.stack([-direction[:, 1], direction[:, 0]], 1)
        curve = stream.uniform(-bend, bend, len(angle))[:, None, None] * np.sin(np.pi * t)
        points = start[:, None] + t * (end - start)[:, None] + curve * normal[:, None]
        layers[int(g >= 2)] += raster.splat(points.reshape(-1, 2), np.repeat(width, n_steps))
        split = stream.uniform(-asymmetry, asymmetry, len(angle))
        fork = stream.uniform(fork_lo, fork_hi, (len(angle), 2)) * np.array([1.0, -1.0])
        angle = (angle[:, None] + fork).reshape(-1)
        start = np.repeat(end, 2, axis=0)
        seg_length = np.repeat(seg_length * decay, 2) * stream.uniform(0.75, 1.2, len(angle))
        width = (width[:, None] * taper * np.stack([1 + split, 1 - split], 1)).reshape(-1)
    # calibre: trunks about 0.007 canonical units across, branches half that
    sigma = max(0.5, 0.0035 * calibre / raster.texel)
    # points per texel along a trunk; a blurred line of weight w then peaks at w * density / (sqrt(2 pi) sigma)
    density = n_steps * raster.texel / length
    out = 2.0 * ndimage.gaussian_filter(layers[0], 2.0 * sigma, truncate=3.0)
    out += ndimage.gaussian_filter(layers[1], sigma, truncate=3.0)
    out *= math.sqrt(2 * math.pi) * sigma / density * 0.2  # a trunk's centre line about 0.4
    return np.minimum(out, 1.5), float(contrast)
