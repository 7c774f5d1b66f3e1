"""A smooth random deformation of the canonical body, which masks and landmarks follow exactly.

The field moves canonical points: a pixel that the pose maps to canonical ``q`` shows the body at
``q + D(q)``. Every shape is evaluated on the moved grid, so masks, grey values and texture follow the
deformation by construction. A landmark is a canonical point ``c``; the pixel that shows it solves
``q + D(q) = c``, which the fixed-point iteration ``q <- c - D(q)`` finds to float64 precision because
the field is a contraction (its largest gradient is kept below 0.3).

``D`` is a sum of a few random plane waves per component (0.8 to 2.5 cycles across the body), an analytic
field that costs a few cosines per pixel and has an exact bound on its displacement.
"""

from __future__ import annotations

import math

import numpy as np

MAX_GRADIENT = 0.3  # keeps q -> q + D(q) one-to-one and the inverse iteration fast


class Deformation:
    """``D(u, v)``: per component ``sum_k a_k cos(2 pi (f_k . (u, v)) + phase_k)``."""

    def __init__(self, rng: np.random.Generator, amplitude: float, n_waves: int = 4):
        # direction and frequency of each wave, for (du, dv) separately: [2, K, 2] cycles per unit
        freq = rng.uniform(0.8, 2.5, (2, n_waves))
        angle = rng.uniform(0.0, 2 * math.pi, (2, n_waves))
        self.freq = 2 * math.pi * np.stack([freq * np.cos(angle), freq * np.sin(angle)], -1)
        self.phase = rng.uniform(0.0, 2 * math.pi, (2, n_waves))
        weights = rng.uniform(0.5, 1.0, (2, n_waves))
        self.amp = amplitude * weights / weights.sum(1, keepdims=True)
        # bound the gradient: |dD/dq| <= sum_k |a_k| |f_k| per component
        gradient = float((np.abs(self.amp) * np.linalg.norm(self.freq, axis=-1)).sum(1).max())
        if gradient > MAX_GRADIENT:
            self.amp *= MAX_GRADIENT / gradient
        self.max_displacement = float(np.abs(self.amp).sum(1).max()) * math.sqrt(2)

    def displacement(self, u, v):
        """(du, dv) at canonical points ``u, v`` (arrays of one shape), in their dtype."""
        dtype = np.result_type(u, np.float32)
        out = []
        for c in range(2):
            d = np.zeros(np.shape(u), dtype)
            for (fu, fv), phase, amp in zip(self.freq[c], self.phase[c], self.amp[c]):
                d += float(amp) * np.cos(float(fu) * u + float(fv) * v + float(phase))
            out.append(d)
        return out[0], out[1]

    def warp(self, u, v):
        """The body point each grid point shows: ``(u, v) + D(u, v)``."""
        du, dv = self.displacement(u, v)
        return (u + du).astype(u.dtype), (v + dv).astype(v.dtype)

    def unwarp(self, points: np.ndarray, iterations: int = 60) -> np.ndarray:
        """Grid points ``q`` [..., 2] with ``q + D(q) = points`` (float64, to about 1e-12)."""
        target = np.asarray(points, dtype=np.float64)
        q = target.copy()
        for _ in range(iterations):
            du, dv = self.displacement(q[..., 0], q[..., 1])
            new = target - np.stack([du, dv], -1)
            if np.abs(new - q).max(initial=0.0) < 1e-13:
                return new
            q = new
        return q
