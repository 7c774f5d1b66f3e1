"""Devices on and in the patient (phantom v2): ECG electrodes and leads, lines, tubes, pacemaker, clips.

Real radiographs are full of them, and they are part of what makes one patient's film that patient's.
Each patient has their own probability of each device (drawn once per patient), and each visit draws
which are present and where, around the patient's usual places (electrodes go on the same spots of a
patient's chest). Everything is drawn in body coordinates on the body raster
(``edenkit.phantom.texture.BodyRaster``), as extra attenuation (metal is nearly opaque), so devices
move with the body. The detector's own marks (side marker, collimation) are in
``edenkit.phantom.exposure``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

# per device: the range a patient's probability is drawn from
PROBABILITY = {
    "ecg": (0.0, 0.9),
    "central_line": (0.0, 0.5),
    "et_tube": (0.0, 0.3),
    "ng_tube": (0.0, 0.35),
    "pacemaker": (-0.3, 0.4),
    "clips": (-0.2, 0.5),
    "sternal_wires": (-0.4, 0.35),
}
WIRE_SIGMA = 0.7  # texels: the blur that turns point samples into a smooth wire


def _curve(points, n: int) -> np.ndarray:
    """A Bezier curve through control points [k, 2], sampled at ``n`` points [n, 2]."""
    points = np.asarray(points, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    k = len(points) - 1
    return sum(math.comb(k, i) * t**i * (1 - t) ** (k - i) * points[i] for i in range(k + 1))


class _Canvas:
    """Wires (point samples, blurred once) and solid parts (analytic) on one body raster."""

    def __init__(self, raster):
        self.raster = raster
        self.wires = np.zeros((raster.size, raster.size), np.float32)
        self.solid = np.zeros_like(self.wires)

    def wire(self, control, value: float, offset: float = 0.0) -> None:
        length = float(np.linalg.norm(np.diff(np.asarray(control), axis=0), axis=1).sum()) * 1.3
        n = max(8, int(2.0 * length / self.raster.texel))  # two samples per texel
        points = _curve(control, n)
        if offset:  # a parallel curve (one wall of a tube)
            tangent = np.gradient(points, axis=0)
            normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
            points = points + offset * normal / (np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12)
        # two points per texel, blurred: the wire's centre line reaches about ``value``
        weight = value * math.sqrt(2 * math.pi) * WIRE_SIGMA / 2.0
        self.wires += self.raster.splat(points, np.full(len(points), weight))

    def blob(self, cu, cv, a, b, value, angle=0.0, power=2.0, ring=0.0) -> None:
        """A superellipse (``power`` 2 = ellipse, larger = rounded box), optionally only its rim."""
        r = max(a, b) * 1.2
        window, us, vs = self.raster.grid((cu - r, cv - r, cu + r, cv + r))
        c, s = math.cos(angle), math.sin(angle)
        x, y = c * (us - cu) + s * (vs - cv), -s * (us - cu) + c * (vs - cv)
        level = (np.abs(x / a) ** power + np.abs(y / b) ** power) ** (1.0 / power)
        edge = self.raster.texel / min(a, b)
        inside = np.clip((1.0 - level) / edge + 0.5, 0.0, 1.0)
        if ring:
            inside = inside * np.clip((level - (1.0 - ring)) / edge + 0.5, 0.0, 1.0)
        self.solid[window] += value * inside

    def layer(self) -> np.ndarray:
        return ndimage.gaussian_filter(self.wires, WIRE_SIGMA, truncate=3.0) + self.solid


def draw_probabilities(rng: np.random.Generator, amount: float) -> dict[str, float]:
    """A patient's probability of each device (0 where the draw falls below 0), times ``amount``."""
    return {k: amount * max(0.0, float(rng.uniform(*lo_hi))) for k, lo_hi in PROBABILITY.items()}


def device_layer(patient_rng, visit_rng, raster, anatomy, amount: float) -> tuple[np.ndarray, list[str]]:
    """Attenuation of this visit's devices on ``raster``, and their names.

    ``patient_rng`` draws the patient's probabilities and usual places, ``visit_rng`` which devices
    are present today and small moves; both draw the same numbers for every ``amount``."""
    p = anatomy.p
    probability = draw_probabilities(patient_rng, amount)
    # the patient's usual electrode spots (upper chest wall, both sides, and the lower left)
    spots = np.array([[0.5 - 0.3, p.clavicle_v + 0.03], [0.5 + 0.3, p.clavicle_v + 0.03],
                      [0.5 + 0.28, p.dome_v[1] - 0.05], [0.5 - 0.26, p.dome_v[0] - 0.04],
                      [0.5 + 0.12, p.dome_v[1] - 0.12]])
    spots = spots + patient_rng.uniform(-0.05, 0.05, spots.shape)
    pace_side = 1 if patient_rng.random() < 0.8 else 0
    present = {k: bool(visit_rng.random() < q) for k, q in probability.items()}
    jitter = visit_rng.uniform(-0.015, 0.015, spots.shape)
    n_electrodes = int(visit_rng.integers(3, 6))
    lead_ends = visit_rng.uniform(-1.0, 1.0, (len(spots), 2))
    shapes = visit_rng.uniform(-1.0, 1.0, 16)  # bends and sizes of the other devices
    canvas = _Canvas(raster)
    heart_u, heart_v = p.heart_center
    sign = 1 if pace_side else -1
    if present["ecg"]:
        for (u, v), (eu, ev) in zip(spots[:n_electrodes] + jitter[:n_electrodes], lead_ends):
            canvas.blob(u, v, 0.016, 0.016, 0.45)
            canvas.blob(u, v, 0.005, 0.005, 1.6)  # the metal snap
            side = 1.0 if u > 0.5 else -1.0
            end = (0.5 + side * (0.75 + 0.2 * abs(eu)), v - 0.3 + 0.25 * ev)  # off the film, to the monitor
            canvas.wire([(u, v), (u + side * 0.1 * (1 + eu), v + 0.1 * ev), end], 0.7)
    if present["central_line"]:
        side = -1 if shapes[0] < 0.4 else 1  # mostly the right subclavian or jugular vein
        start = (0.5 + side * (0.32 + 0.04 * shapes[1]), p.clavicle_v - 0.02)
        tip = (0.5 - 0.035, p.carina_v + 0.03 + 0.03 * shapes[2])
        canvas.wire([(start[0] + side * 0.1, start[1] - 0.12), start,
                     (0.5 + side * 0.06, p.clavicle_v + 0.01), tip], 0.75)
    if present["et_tube"]:
        tip = p.carina_v - 0.05 - 0.02 * abs(shapes[3])
        control = [(0.5 + 0.01 * shapes[4], -0.25), (0.5, 0.05), (0.5 + 0.004 * shapes[5], tip)]
        for offset in (-0.009, 0.009):
            canvas.wire(control, 0.3, offset)
        canvas.wire(control, 0.9, 0.006)  # the radio-opaque stripe
    if present["ng_tube"]:
        stomach = (0.5 + 0.14 + 0.03 * shapes[6], p.dome_v[1] + 0.08)
        canvas.wire([(0.5 + 0.02 * shapes[7], -0.25), (0.5 + 0.015, p.carina_v),
                     (0.5 + 0.03, p.dome_v[1] + 0.02), stomach], 0.65)
    if present["pacemaker"]:
        cu, cv = 0.5 + sign * (0.24 + 0.03 * shapes[8]), p.clavicle_v + 0.06 + 0.02 * shapes[9]
        canvas.blob(cu, cv, 0.05, 0.035, 2.5, angle=0.3 * shapes[10], power=4.0)
        canvas.blob(cu - sign * 0.03, cv - 0.02, 0.012, 0.01, 1.0)  # the header
        for k, target in enumerate(((heart_u + 0.06, heart_v + 0.05), (heart_u - 0.05, heart_v - 0.04))):
            bend = (0.5 + sign * 0.05 + 0.03 * shapes[11 + k], p.carina_v + 0.02)
            canvas.wire([(cu - sign * 0.03, cv - 0.02), bend, (0.5 - 0.03, heart_v - 0.08), target], 0.9)
    if present["clips"]:
        n_clips = 2 + int(abs(shapes[13]) * 4)
        centre = (0.5 + sign * 0.12, p.carina_v + 0.08)
        for k in range(n_clips):
            u, v = centre[0] + 0.05 * math.sin(3.1 * k + shapes[14]), centre[1] + 0.025 * k
            angle = 1.3 * k + shapes[15]
            du, dv = 0.008 * math.cos(angle), 0.008 * math.sin(angle)
            canvas.wire([(u - du, v - dv), (u + du, v + dv)], 1.8)
    if present["sternal_wires"]:
        for k in range(5):
            canvas.blob(0.5, p.carina_v - 0.06 + 0.05 * k, 0.012, 0.008, 1.8, ring=0.35)
    return canvas.layer(), [k for k, on in present.items() if on]
