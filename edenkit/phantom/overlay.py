"""The phantom's ground truth drawn over its image: tinted masks, outlines and landmark dots (uint8 RGB)."""

from __future__ import annotations

import numpy as np

from edenkit.phantom.render import STRUCTURES, PhantomSample

STRUCTURE_COLOURS = {
    "right_lung": (64, 160, 255),
    "left_lung": (64, 220, 160),
    "heart": (255, 80, 80),
    "right_clavicle": (255, 200, 40),
    "left_clavicle": (255, 140, 0),
    "ribs": (200, 120, 255),
    "effusion": (0, 255, 255),
    "nodule": (255, 0, 255),
    "pneumothorax": (255, 255, 0),
}


def overlay(
    sample: PhantomSample, alpha: float = 0.35, ribs: bool = True, landmarks: bool = True
) -> np.ndarray:
    """uint8 RGB [H, W, 3]: the image with tinted masks, mask outlines and landmark dots."""
    grey = np.clip(sample.image, 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    layers = [(sample.masks[name], STRUCTURE_COLOURS[name]) for name in STRUCTURES]
    if ribs:
        layers += [
            (mask, STRUCTURE_COLOURS["ribs"])
            for name, mask in sample.masks.items()
            if name.startswith("rib_")
        ]
    layers += [(mask, STRUCTURE_COLOURS[name]) for name, mask in sample.finding_masks.items()]
    for mask, colour in layers:
        colour = np.asarray(colour, np.float32) / 255.0
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * colour
        rgb[_outline(mask)] = colour
    if landmarks:
        n = grey.shape[0]
        radius = max(1, n // 128)
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        disc = xx**2 + yy**2 <= radius**2
        for x, y in sample.landmarks.values():
            cx, cy = int(round(x)), int(round(y))
            ys, xs = cy + yy[disc], cx + xx[disc]
            ok = (ys >= 0) & (ys < n) & (xs >= 0) & (xs < n)
            rgb[ys[ok], xs[ok]] = (1.0, 0.1, 0.1)
    return np.round(rgb * 255).astype(np.uint8)


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner
