"""Phantom v2's heart outline: a rotated ellipse with a per-patient polar modulation.

A real cardiac silhouette is not an ellipse: the left ventricle bulges at the apex, the right atrium
makes the right heart border, the left atrial appendage a small shoulder under the pulmonary artery.
The outline here is star-shaped around the heart's centre, ``R(theta) = R_ellipse(theta) * m(theta)``
in the heart's own rotated frame (theta = 0 points to the apex), with ``m`` = 1 + low harmonics +
three bumps (ventricle, atrium, appendage). Empty coefficients give v1's ellipse.
"""

from __future__ import annotations

import math

import numpy as np

# directions (radians, heart frame) of the bumps: apex (left ventricle), right atrium, left appendage
BUMPS = (0.0, 2.3, -0.95)
BUMP_WIDTH = 0.6
HARMONICS = (2, 3, 4)


def draw_shape(rng: np.random.Generator, amount: float) -> tuple[float, ...]:
    """Polar coefficients: (amplitude, phase) per harmonic, then the three bump heights.

    Always draws the same numbers (so the switch does not reshuffle other draws); ``amount`` = 0
    gives an empty tuple, i.e. v1's ellipse."""
    harmonics = rng.uniform(-0.03, 0.03, len(HARMONICS)), rng.uniform(0.0, 2 * math.pi, len(HARMONICS))
    bumps = rng.uniform((0.0, 0.0, 0.0), (0.08, 0.07, 0.05))
    if amount <= 0:
        return ()
    coeffs = [x for pair in zip(amount * harmonics[0], harmonics[1]) for x in pair]
    return tuple(coeffs + list(amount * bumps))


def modulation(theta, shape: tuple[float, ...]):
    """``m(theta)`` of the outline (1 for the plain ellipse)."""
    out = np.ones_like(theta)
    if not shape:
        return out
    for i, k in enumerate(HARMONICS):
        out = out + shape[2 * i] * np.cos(k * theta + shape[2 * i + 1])
    for centre, height in zip(BUMPS, shape[2 * len(HARMONICS) :]):
        wrapped = np.angle(np.exp(1j * (theta - centre)))
        out = out + height * np.exp(-((wrapped / BUMP_WIDTH) ** 2))
    return out


def _polar(u, v, center, axes, angle):
    c, s = math.cos(angle), math.sin(angle)
    du, dv = u - center[0], v - center[1]
    x, y = c * du + s * dv, -s * du + c * dv
    a, b = axes
    rho = np.sqrt(x * x + y * y)
    theta = np.arctan2(y, x)
    ellipse = a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
    return rho, theta, ellipse


def radius(u, v, center, axes, angle, shape):
    """(distance from the centre, outline radius in that direction) at canonical points."""
    rho, theta, ellipse = _polar(u, v, center, axes, angle)
    return rho, ellipse * modulation(theta, shape)


def distance(u, v, center, axes, angle, shape):
    """Approximately signed distance to the outline (negative inside), radial."""
    rho, outline = radius(u, v, center, axes, angle, shape)
    return rho - outline


def depth(u, v, center, axes, angle, shape):
    """Path length through the heart seen face-on: 1 at its centre, 0 outside."""
    rho, outline = radius(u, v, center, axes, angle, shape)
    return np.sqrt(np.maximum(1.0 - (rho / outline) ** 2, 0.0))


def outline(center, axes, angle, shape, n: int = 256) -> np.ndarray:
    """Points [n, 2] (u, v) on the outline."""
    theta = np.linspace(-math.pi, math.pi, n, endpoint=False)
    a, b = axes
    r = a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2) * modulation(theta, shape)
    x, y = r * np.cos(theta), r * np.sin(theta)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], -1)


def fit(width: float, ratio: float, angle: float, shape, dome_v: float, jitter_u: float):
    """Centre and axes of a heart of total ``width`` whose outline's image-left third lies right of
    the midline and whose bottom sits 0.14 of its height under the left dome (as v1's ellipse)."""
    points = outline((0.0, 0.0), (1.0, ratio), angle, shape)
    k = width / float(np.ptp(points[:, 0]))
    points = points * k
    height = float(np.ptp(points[:, 1]))
    center = (0.5 - width / 3.0 - float(points[:, 0].min()) + jitter_u, dome_v + 0.14 * height - float(points[:, 1].max()))
    return center, (k, ratio * k)
