"""Attenuation -> displayed grey: v1's exposure, and v2's exposure physics and detector marks.

v1: an exposure curve with per-image exposure, contrast and gamma, a soft blur and detector noise.
v2 adds, each scaled by ``PhantomConfig.exposure_physics``: the heel effect (the beam is weaker on
the anode side, so one end of the film is lighter), the detector's unsharp masking (local contrast
enhancement that rings at strong edges), correlated noise (grain a few pixels wide); and, scaled by
``PhantomConfig.devices``, the detector's marks: collimation edges (the unexposed border the
radiographer's shutters leave, bright on a radiograph) and a lead side marker in a corner.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from edenkit.phantom.patient import Patient


def expose_v1(atten: np.ndarray, p: Patient, config, white: np.ndarray) -> np.ndarray:
    """Attenuation -> displayed grey: exposure curve, gamma, blur, detector noise (``white``: [n, n]
    standard normal float32, the image's own noise stream)."""
    n = config.size
    grey = 1.0 - np.exp(-1.3 * p.contrast * np.clip(atten, 0.0, None) / p.exposure)
    grey = (np.clip(grey, 0.0, 1.0) ** (1.25 * p.gamma)).astype(np.float32)
    sigma = p.blur_px * n / 256.0
    # quantum noise: stronger where fewer photons arrive (bright = attenuated)
    noise = white.copy()
    noise *= float(config.noise) * p.noise_std * (0.5 + 0.5 * np.sqrt(1.0 - grey))
    if n > 160:
        # large images: blur image and noise together, so the grain spans a few pixels like a
        # detector's; 2 sqrt(pi) sigma undoes the blur's damping of white noise
        return np.clip(
            ndimage.gaussian_filter(grey + 2.0 * math.sqrt(math.pi) * sigma * noise, sigma), 0.0, 1.0
        )
    return np.clip(ndimage.gaussian_filter(grey, sigma) + noise, 0.0, 1.0)



# a 5 x 7 bitmap font for the side markers
LETTERS = {
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
}


def draw_acquisition(rng: np.random.Generator, physics: float, marks: float) -> dict:
    """One visit's exposure physics and detector marks; the same draws for every switch value."""
    d = {
        "heel": physics * rng.uniform(0.0, 0.25),
        "heel_angle": rng.uniform(-0.4, 0.4) + (math.pi if rng.random() < 0.5 else 0.0),
        "unsharp": physics * rng.uniform(0.0, 0.8),
        "unsharp_sigma": rng.uniform(0.02, 0.06),
        "grain": 0.5 + physics * rng.uniform(0.0, 2.5),
        "lut": physics * rng.uniform(-0.15, 0.15),
    }
    margins = rng.uniform(0.0, 0.09, 4) * (rng.random(4) < 0.6)
    d["collimation"] = marks * margins if marks > 0 else np.zeros(4)
    d["collimation_grey"] = rng.uniform(0.8, 1.0)
    d["marker"] = bool(marks > 0 and rng.random() < 0.8 * min(1.0, marks))
    d["marker_letter"] = "R" if rng.random() < 0.7 else "L"
    d["marker_corner"] = (int(rng.integers(2)), rng.uniform(0.03, 0.2), rng.uniform(0.03, 0.12))
    d["marker_size"] = rng.uniform(0.035, 0.06)
    return d


def expose_v2(atten: np.ndarray, p: Patient, config, white: np.ndarray, acq: dict) -> np.ndarray:
    """v2: heel effect, exposure curve, unsharp masking, blur, correlated noise, detector marks."""
    n = config.size
    x = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
    ramp = math.cos(acq["heel_angle"]) * x[:, None] + math.sin(acq["heel_angle"]) * x[None, :]
    exposure = p.exposure * (1.0 - acq["heel"] * ramp)  # fewer photons on the anode side: lighter
    grey = 1.0 - np.exp(-1.3 * p.contrast * np.clip(atten, 0.0, None) / exposure)
    grey = np.clip(grey, 0.0, 1.0) ** (1.25 * p.gamma)
    if acq["lut"]:  # the detector's tone curve: a gentle S (or its inverse) around mid grey
        grey = np.clip(grey + acq["lut"] * grey * (1.0 - grey) * (2.0 * grey - 1.0) * 4.0, 0.0, 1.0)
    if acq["unsharp"]:
        # computed on a 4x coarser image: the mask is a blur of several percent of the image
        small = ndimage.zoom(grey, 0.25, order=1)
        smooth = ndimage.zoom(ndimage.gaussian_filter(small, acq["unsharp_sigma"] * n / 4), n / small.shape[0], order=1)
        grey = np.clip(grey + acq["unsharp"] * (grey - smooth[:n, :n]), 0.0, 1.0)
    grey = ndimage.gaussian_filter(grey.astype(np.float32), p.blur_px * n / 256.0)
    # correlated noise: white noise blurred over ``grain`` pixels, rescaled to its standard deviation
    grain = acq["grain"] * max(1.0, n / 256.0)
    noise = ndimage.gaussian_filter(white, grain) * (2.0 * math.sqrt(math.pi) * grain)
    noise *= float(config.noise) * p.noise_std * (0.5 + 0.5 * np.sqrt(1.0 - grey))
    image = np.clip(grey + noise, 0.0, 1.0)
    return _detector_marks(image, acq).astype(np.float32)


def _detector_marks(image: np.ndarray, acq: dict) -> np.ndarray:
    """Collimation borders (unexposed, bright) and a lead side marker, in image coordinates."""
    n = image.shape[0]
    top, bottom, left, right = (int(round(m * n)) for m in acq["collimation"])
    if top or bottom or left or right:
        field = np.zeros((n, n), bool)
        field[top : n - bottom, left : n - right] = True
        image = np.where(field, image, acq["collimation_grey"])
    if acq["marker"]:
        glyph = np.array([[c == "1" for c in row] for row in LETTERS[acq["marker_letter"]]], np.float32)
        cell = max(1, int(round(acq["marker_size"] * n / 7)))
        glyph = np.kron(glyph, np.ones((cell, cell), np.float32))
        plate = np.pad(glyph, cell) * 0.15 + 0.85 * np.pad(glyph, cell)  # a lead letter on a plastic plate
        plate = np.maximum(plate, 0.35)
        h, w = plate.shape
        corner, fx, fy = acq["marker_corner"]
        y0 = min(int(fy * n) + top, n - h)
        x0 = int(fx * n) + left if corner == 0 else n - right - int(fx * n) - w
        x0 = min(max(x0, 0), n - w)
        if h < n and w < n:
            region = image[y0 : y0 + h, x0 : x0 + w]
            image[y0 : y0 + h, x0 : x0 + w] = np.maximum(region, plate)
    return image
