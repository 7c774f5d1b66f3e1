"""The canonical frame and its shape primitives: pixel grid <-> canonical coordinates, distances, depths.

Everything in the phantom lives in a *canonical* frame: ``u`` grows to the image's right, ``v``
downwards, both in [0, 1], with the midline at ``u = 0.5``. Side 0 is the patient's RIGHT, drawn on
the image's LEFT (small ``u``); side 1 is the patient's left. A :class:`Frame` maps the pixel grid of
one image to this frame through a small pose (rotation, shift, scale) and, in phantom v2, a smooth
deformation of the body (``edenkit.phantom.deformation``), so a shape is written once and rasterized
at any size, and masks and landmarks follow every deformation exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RIGHT, LEFT = 0, 1  # patient's sides


def side_sign(side: int) -> int:
    """-1 for the patient's right (image left), +1 for the patient's left."""
    return -1 if side == RIGHT else 1



class Frame:
    """The pixel grid of one square image and the pose that maps it to canonical coordinates."""

    def __init__(self, size: int, angle: float, shift: tuple[float, float], scale: float, deformation=None):
        self.size = size
        self.deformation = deformation  # an edenkit.phantom.deformation.Deformation, or None
        c, s = math.cos(angle), math.sin(angle)
        self.rot = np.array([[c, -s], [s, c]])
        self.scale = scale
        self.shift = np.asarray(shift, dtype=np.float64)
        p = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
        qx, qy = p[None, :] - float(shift[0]), p[:, None] - float(shift[1])
        # canonical = R^T (image - 0.5 - shift) / scale + 0.5
        self.u = ((c * qx + s * qy) / scale + 0.5).astype(np.float32)
        self.v = ((-s * qx + c * qy) / scale + 0.5).astype(np.float32)
        self.margin = 0.0  # canonical units by which a deformation can move a shape's pixel window
        if deformation is not None:
            self.u, self.v = deformation.warp(self.u, self.v)
            self.margin = deformation.max_displacement

    def to_pixels(self, uv) -> np.ndarray:
        """Canonical points [..., 2] -> pixel (x, y) [..., 2], pixel centres at integers."""
        uv = np.asarray(uv, dtype=np.float64)
        if self.deformation is not None:
            uv = self.deformation.unwarp(uv)  # the grid point that shows this body point
        q = (uv - 0.5) @ self.rot.T * self.scale + 0.5 + self.shift
        return q * self.size - 0.5

    def window(self, u0: float, v0: float, u1: float, v1: float) -> tuple[slice, slice]:
        """Rows and columns of the pixels that cover a canonical box (plus a margin)."""
        # plain Python: this runs for every rib of every image, on four points
        (r00, r01), (r10, r11) = self.rot.tolist()
        sx, sy = float(self.shift[0]), float(self.shift[1])
        xs, ys = [], []
        if self.margin:
            u0, v0, u1, v1 = u0 - self.margin, v0 - self.margin, u1 + self.margin, v1 + self.margin
        for u, v in ((u0, v0), (u1, v0), (u0, v1), (u1, v1)):
            du, dv = u - 0.5, v - 0.5
            xs.append(((r00 * du + r01 * dv) * self.scale + 0.5 + sx) * self.size - 0.5)
            ys.append(((r10 * du + r11 * dv) * self.scale + 0.5 + sy) * self.size - 0.5)
        n = self.size
        rows = slice(min(max(math.floor(min(ys)) - 2, 0), n), min(max(math.ceil(max(ys)) + 3, 0), n))
        cols = slice(min(max(math.floor(min(xs)) - 2, 0), n), min(max(math.ceil(max(xs)) + 3, 0), n))
        return rows, cols

    def stacked_windows(self, u: np.ndarray, v: np.ndarray, boxes):
        """Grids ``u, v`` cut to one window per canonical box, all of one shape, stacked [L, h, w];
        with the (rows, cols) slices that put each item back into the image."""
        windows = [self.window(*box) for box in boxes]
        h = max(rows.stop - rows.start for rows, _ in windows)
        w = max(cols.stop - cols.start for _, cols in windows)
        windows = [
            (
                slice(min(r.start, self.size - h), min(r.start, self.size - h) + h),
                slice(min(c.start, self.size - w), min(c.start, self.size - w) + w),
            )
            for r, c in windows
        ]
        return np.stack([u[win] for win in windows]), np.stack([v[win] for win in windows]), windows



# ----------------------------------------------------------------------------------------------------
# Shape primitives (all vectorized over u, v arrays)
# ----------------------------------------------------------------------------------------------------


def _rotate(du, dv, angle):
    if not angle:
        return du, dv
    c, s = math.cos(angle), math.sin(angle)
    return c * du + s * dv, -s * du + c * dv


def ellipse_distance(u, v, cu, cv, a, b, angle=0.0):
    """Approximate signed distance to an ellipse (negative inside): F / |grad F|, exact near the edge."""
    du, dv = _rotate(u - cu, v - cv, angle)
    f = (du / a) ** 2 + (dv / b) ** 2 - 1.0
    grad = 2.0 * np.sqrt((du / a**2) ** 2 + (dv / b**2) ** 2) + 1e-6
    return f / grad


def ellipse_depth(u, v, cu, cv, a, b, angle=0.0):
    """Path length through an ellipsoid seen face-on, 1 at its centre and 0 outside."""
    du, dv = _rotate(u - cu, v - cv, angle)
    return np.sqrt(np.maximum(1.0 - (du / a) ** 2 - (dv / b) ** 2, 0.0))


def curve_distance(u, v, us, vs, half_width):
    """Signed distance minus half width to a curve ``v = f(u)`` sampled at increasing ``us``."""
    f = np.interp(u, us, vs)
    slope = np.interp(u, us, np.gradient(vs, us))
    hw = np.interp(u, us, half_width)
    d = np.abs(v - f) / np.sqrt(1.0 + slope**2) - hw
    return np.where((u >= us[0]) & (u <= us[-1]), d, np.inf), hw


def clip01(x):
    """``np.clip(x, 0, 1)`` without its Python overhead (it runs thousands of times per image)."""
    return np.minimum(np.maximum(x, 0.0), 1.0)


def smoothstep(x):
    x = clip01(x)
    return x * x * (3.0 - 2.0 * x)


def bone_profile(d, half_width):
    """Grey profile across a tubular bone: a bright cortex at the edges over a lighter marrow."""
    x = clip01(-d / half_width)  # 0 at the edge, 1 on the centre line
    return smoothstep(x * 4.0) * (0.65 + 0.35 * (1.0 - x) ** 2)


def _column(x) -> np.ndarray:
    """Per-item parameters as [L, 1, 1] float32, to broadcast over stacked windows [L, h, w]."""
    return np.asarray(x, dtype=np.float32)[:, None, None]


@dataclass
class RibArcs:
    """Posterior ribs of one side (arrays, one entry per rib level); see ``Anatomy.rib_arcs``."""

    sign: int
    peak_u: np.ndarray
    center_v: np.ndarray
    a_lateral: np.ndarray
    a_medial: np.ndarray
    b_lateral: np.ndarray
    b_medial: np.ndarray
    thickness: np.ndarray
    medial_u: np.ndarray
    end_u: np.ndarray

