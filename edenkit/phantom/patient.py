"""Per-patient parameters of a phantom chest: every number that makes one patient, and how they are drawn.

``Patient.draw`` is phantom v1's draw (kept bit for bit); ``Patient.draw_v2`` draws the wider v2
population (pose, habitus, inspiration depth, rib spacing and slope, heart shape), each spread
scaled by a ``PhantomConfig`` switch. Units are canonical (``edenkit.phantom.geometry``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from edenkit.phantom.heart import draw_shape, fit


def rng_stream(seed: int, stream: int) -> np.random.Generator:
    """A NumPy generator for one of several independent streams of one (possibly 64-bit) seed."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"phantom seed: expected a non-negative integer, got {seed}")
    return np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32, stream])

@dataclass
class Patient:
    """Every number that makes one phantom patient, in canonical units.

    ``draw`` takes two generators: ``anatomy`` for what belongs to the person (body, organs, bones),
    ``visit`` for what changes between two radiographs of that person (pose, exposure, findings).
    """

    # pose (canonical -> image)
    angle: float
    shift: tuple[float, float]
    scale: float
    # body outline
    body_half_width: float
    neck_half_width: float
    shoulder_v: float
    # lungs: per side an ellipse cut by its diaphragm dome and by the mediastinum
    lung_center_offset: float
    lung_half_width: float
    lung_center_v: float
    apex_v: float
    dome_v: tuple[float, float]  # (right, left) dome tops
    dome_depth: float  # how far the costophrenic angles lie below the dome tops
    mediastinum_half_width: float
    # heart: a rotated ellipse sized from a cardiothoracic ratio
    heart_center: tuple[float, float]
    heart_axes: tuple[float, float]
    heart_angle: float
    # spine, airway
    spine_half_width: float
    t1_top_v: float
    vertebra_height: float
    carina_v: float
    trachea_half_width: float
    # bones
    rib_thickness: tuple[float, ...]  # per rib level
    rib_jitter: tuple[float, ...]  # per rib level, vertical offset
    rib_drop: float
    clavicle_v: float
    clavicle_rise: float
    clavicle_thickness: float
    breast: float  # 0 = none, 1 = marked breast shadows
    gastric_bubble: float  # 0 = none, 1 = a large air bubble under the left dome
    # acquisition
    exposure: float
    contrast: float
    gamma: float
    noise_std: float
    blur_px: float
    texture_seed: int
    # phantom v2 only (the defaults are v1's shapes)
    rib_drop_scale: tuple[float, ...] = ()  # per rib level, how much more steeply it slopes
    heart_shape: tuple[float, ...] = ()  # polar outline coefficients (edenkit.phantom.heart); () = ellipse
    hilum_shift: tuple[float, ...] = ()  # (du, dv) of the right, then the left hilum

    def __post_init__(self) -> None:
        # plain Python floats keep the float32 grids float32 (NumPy scalars would promote to float64)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                setattr(self, f.name, tuple(float(x) for x in value))
            elif not f.name.endswith("_seed"):
                setattr(self, f.name, float(value))

    @staticmethod
    def draw(anatomy: np.random.Generator, visit: np.random.Generator, ctr: float, variation: float = 1.0):
        """A random patient whose heart gives cardiothoracic ratio ``ctr`` (heart width / thorax width).

        ``variation`` scales every spread around the average patient (0 = the average patient).
        """

        def around(rng, mean, spread):
            return float(mean + variation * spread * rng.uniform(-1.0, 1.0))

        a, r = anatomy, visit
        apex_v = around(a, 0.13, 0.025)
        dome_r = around(a, 0.71, 0.04)
        dome_l = dome_r + around(a, 0.025, 0.012)  # the liver pushes the right dome higher
        lung_half_width = around(a, 0.19, 0.015)
        lung_center_offset = around(a, 0.20, 0.012)
        thorax_width = 2 * (lung_center_offset + lung_half_width)
        heart_width = ctr * thorax_width
        heart_angle = math.radians(around(a, 28.0, 8.0))
        ratio = around(a, 0.78, 0.06)  # short / long axis
        # width of a rotated ellipse = 2 sqrt(A^2 cos^2 + B^2 sin^2): solve for the long axis A
        long_axis = 0.5 * heart_width / math.hypot(math.cos(heart_angle), ratio * math.sin(heart_angle))
        heart_height = 2 * long_axis * math.hypot(math.sin(heart_angle), ratio * math.cos(heart_angle))
        # about a third of the heart lies right of the midline, two thirds left
        heart_center = (
            0.5 + heart_width / 6.0 + variation * a.uniform(-0.01, 0.01),
            dome_l - 0.36 * heart_height,
        )
        t1_top_v = apex_v - around(a, 0.025, 0.01)
        n_levels = 12
        return Patient(
            angle=math.radians(around(r, 0.0, 4.0)),
            shift=(around(r, 0.0, 0.035), around(r, 0.0, 0.035)),
            scale=around(r, 1.0, 0.06),
            body_half_width=around(a, 0.45, 0.035),
            neck_half_width=around(a, 0.1, 0.012),
            shoulder_v=around(a, 0.06, 0.02),
            lung_center_offset=lung_center_offset,
            lung_half_width=lung_half_width,
            lung_center_v=around(a, 0.62, 0.02),
            apex_v=apex_v,
            dome_v=(dome_r, dome_l),
            dome_depth=around(a, 0.075, 0.015),
            mediastinum_half_width=around(a, 0.058, 0.008),
            heart_center=heart_center,
            heart_axes=(long_axis, ratio * long_axis),
            heart_angle=heart_angle,
            spine_half_width=around(a, 0.04, 0.004),
            t1_top_v=t1_top_v,
            vertebra_height=(dome_l + 0.07 - t1_top_v) / n_levels,
            carina_v=around(a, 0.36, 0.02),
            trachea_half_width=around(a, 0.018, 0.003),
            rib_thickness=tuple(around(a, 0.021, 0.003) * (0.85 + 0.03 * i) for i in range(n_levels)),
            rib_jitter=tuple(0.004 * variation * a.standard_normal() for _ in range(n_levels)),
            rib_drop=around(a, 0.16, 0.025),
            clavicle_v=apex_v + around(a, 0.065, 0.015),
            clavicle_rise=around(a, 0.07, 0.02),
            clavicle_thickness=around(a, 0.026, 0.004),
            breast=float(np.clip(a.uniform(-0.6, 1.0), 0.0, 1.0)),
            gastric_bubble=float(np.clip(r.uniform(-0.3, 1.0), 0.0, 1.0)),
            exposure=around(r, 1.0, 0.1),
            contrast=around(r, 1.0, 0.1),
            gamma=around(r, 1.0, 0.1),
            noise_std=around(r, 0.017, 0.007),
            blur_px=around(r, 0.8, 0.25),
            texture_seed=int(r.integers(2**31)),
        )


    @staticmethod
    def draw_v2(streams, ctr: float, config) -> Patient:
        """A v2 patient: wider pose, habitus and inspiration spread, varied ribs and heart outline.

        ``streams`` holds independent generators ``anatomy, visit, ribs, heart`` (so that switching
        one factor off does not reshuffle the others); ``config`` is the ``PhantomConfig``, whose
        ``pose_spread``, ``rib_variation`` and ``heart_shape`` scale the new spreads (0 = v1's).
        """
        k, variation = float(config.pose_spread), float(config.variation)

        def around(rng, mean, spread_v1, spread_v2=None):
            spread = spread_v1 if spread_v2 is None else spread_v1 + k * (spread_v2 - spread_v1)
            return float(mean + variation * spread * rng.uniform(-1.0, 1.0))

        a, r = streams.anatomy, streams.visit
        apex_v = around(a, 0.13, 0.025, 0.035)
        dome_r = around(a, 0.71, 0.04, 0.065)  # inspiration depth
        dome_l = dome_r + around(a, 0.025, 0.012, 0.02)
        lung_half_width = around(a, 0.19, 0.015, 0.025)
        lung_center_offset = around(a, 0.20, 0.012, 0.02)
        thorax_width = 2 * (lung_center_offset + lung_half_width)
        heart_angle = math.radians(around(a, 28.0, 8.0, 12.0))
        ratio = around(a, 0.78, 0.06, 0.1)
        shape = draw_shape(streams.heart, float(config.heart_shape) * variation)
        center, axes = fit(
            ctr * thorax_width, ratio, heart_angle, shape, dome_l, variation * (0.01 + 0.015 * k) * a.uniform(-1.0, 1.0)
        )
        t1_top_v = apex_v - around(a, 0.025, 0.01)
        n_levels = 12
        vertebra_height = (dome_l + 0.07 - t1_top_v) / n_levels
        ribs, rv = streams.ribs, float(config.rib_variation) * variation
        # cumulative spacing jitter: each rib's gap to the one above varies, and the offsets add up
        gaps = np.clip(ribs.normal(0.0, 0.15, n_levels), -0.4, 0.4) * rv * vertebra_height
        jitter = np.cumsum(gaps) - gaps[0]
        thickness = around(a, 0.021, 0.003, 0.004) * (0.85 + 0.03 * np.arange(n_levels))
        thickness *= 1.0 + rv * np.clip(ribs.normal(0.0, 0.12, n_levels), -0.3, 0.3)
        if ribs.random() < 0.15 * rv:  # an anomaly: one broad (bifid-like) rib
            thickness[int(ribs.integers(1, 9))] *= 1.6
        drop_scale = 1.0 + rv * np.clip(ribs.normal(0.0, 0.08, n_levels), -0.2, 0.2)
        return Patient(
            angle=math.radians(around(r, 0.0, 4.0, 11.0)),
            shift=(around(r, 0.0, 0.035, 0.09), around(r, 0.0, 0.035, 0.09)),
            scale=around(r, 1.0, 0.06, 0.15),
            body_half_width=around(a, 0.45, 0.035, 0.06),
            neck_half_width=around(a, 0.1, 0.012, 0.02),
            shoulder_v=around(a, 0.06, 0.02, 0.035),
            lung_center_offset=lung_center_offset,
            lung_half_width=lung_half_width,
            lung_center_v=around(a, 0.62 + 0.5 * k * (dome_r - 0.71), 0.02),
            apex_v=apex_v,
            dome_v=(dome_r, dome_l),
            dome_depth=around(a, 0.075, 0.015, 0.025),
            mediastinum_half_width=around(a, 0.058, 0.008, 0.012),
            heart_center=center,
            heart_axes=axes,
            heart_angle=heart_angle,
            spine_half_width=around(a, 0.04, 0.004, 0.006),
            t1_top_v=t1_top_v,
            vertebra_height=vertebra_height,
            carina_v=around(a, 0.36, 0.02, 0.03),
            trachea_half_width=around(a, 0.018, 0.003),
            rib_thickness=tuple(thickness),
            rib_jitter=tuple(jitter),
            rib_drop=around(a, 0.16, 0.025, 0.035),
            clavicle_v=apex_v + around(a, 0.065, 0.015, 0.025),
            clavicle_rise=around(a, 0.07, 0.02, 0.03),
            clavicle_thickness=around(a, 0.026, 0.004, 0.006),
            breast=float(np.clip(a.uniform(-0.6, 1.0), 0.0, 1.0)),
            gastric_bubble=float(np.clip(r.uniform(-0.3, 1.0), 0.0, 1.0)),
            exposure=around(r, 1.0, 0.1, 0.12),
            contrast=around(r, 1.0, 0.1, 0.12),
            gamma=around(r, 1.0, 0.1, 0.12),
            noise_std=around(r, 0.017, 0.007, 0.012),
            blur_px=around(r, 0.8, 0.25),
            texture_seed=int(r.integers(2**31)),
            rib_drop_scale=tuple(drop_scale),
            heart_shape=shape,
            hilum_shift=tuple(variation * k * a.uniform(-0.012, 0.012, 4)),
        )
