"""A procedural chest-radiograph phantom that knows its own anatomy.

No real chest X-ray can ship with the kit, so it draws its own. Each image is one "patient": a set of
anatomical parameters (body size, lung height, heart size, rib spacing, ...) drawn from a seeded NumPy
generator, turned into shapes in a *canonical* frame (``u`` to the image's right, ``v`` down, both in
[0, 1], midline at ``u = 0.5``), and rasterized through a small per-image pose (rotation, shift, scale).

The order of work is the order of a radiograph's physics, simplified:

1. shapes -> ground-truth masks (lungs, heart, clavicles, every posterior rib) and landmarks;
2. shapes -> an *attenuation* map: soft tissue thickness, minus the air in the lungs, plus heart,
   mediastinum, spine, ribs, clavicles, vessels, findings;
3. attenuation -> grey values (exposure, contrast, gamma), plus texture, noise and a soft blur.

Convention: left/right are the patient's, so the RIGHT lung is on the image's LEFT (small ``u``).
Landmarks are pixel ``(x, y)`` = (column, row). Images are float32 in [0, 1], bright = attenuating.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

LANDMARKS = (
    "right_clavicle",
    "azygos_arch",
    "right_rib6",
    "spinous_process",
    "left_clavicle",
    "pulmonary_artery",
    "left_rib5",
    "right_hemidiaphragm",
    "left_hemidiaphragm",
    "end_of_thoracic_spine",
)
FINDINGS = ("cardiomegaly", "effusion", "nodule", "pneumothorax")
STRUCTURES = ("right_lung", "left_lung", "heart", "right_clavicle", "left_clavicle")
FOCAL_FINDINGS = ("effusion", "nodule", "pneumothorax")  # findings that come with a mask


@dataclass
class PhantomConfig:
    """What the generator draws. Prevalences are independent per finding (multi-label)."""

    size: int = 256
    prevalence: dict[str, float] = field(
        default_factory=lambda: {"cardiomegaly": 0.1, "effusion": 0.1, "nodule": 0.1, "pneumothorax": 0.1}
    )
    n_rib_pairs: int = 10
    variation: float = 1.0  # scales every per-patient random spread; 0 gives the average patient
    noise: float = 1.0  # scales the quantum noise
    texture: float = 1.0  # scales vessel markings and smooth background texture
    extras: bool = True  # scapulae, breast shadows, humeral heads, anterior ribs (no masks)

    def __post_init__(self) -> None:
        if not 32 <= int(self.size) <= 2048:
            raise ValueError(f"PhantomConfig.size: expected 32..2048 pixels, got {self.size}")
        unknown = sorted(set(self.prevalence) - set(FINDINGS))
        if unknown:
            raise ValueError(f"PhantomConfig.prevalence: unknown finding {unknown[0]!r}; expected {FINDINGS}")
        for name, p in self.prevalence.items():
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"PhantomConfig.prevalence[{name!r}]: expected a probability, got {p}")
        if not 1 <= self.n_rib_pairs <= 12:
            raise ValueError(f"PhantomConfig.n_rib_pairs: expected 1..12, got {self.n_rib_pairs}")


@dataclass
class PhantomSample:
    image: np.ndarray  # float32 [H, W] in [0, 1]
    masks: dict[str, np.ndarray]  # bool [H, W]: STRUCTURES, then rib_right_1.., rib_left_1..
    landmarks: dict[str, tuple[float, float]]  # (x, y) pixels, keys = LANDMARKS
    findings: dict[str, bool]  # keys = FINDINGS
    finding_masks: dict[str, np.ndarray]  # bool [H, W] for the focal findings present
    patient_id: int
    extra_masks: dict[str, np.ndarray] = field(default_factory=dict)  # body, mediastinum, spine, trachea
    info: dict[str, float] = field(default_factory=dict)  # measured numbers, e.g. cardiothoracic_ratio


def rib_names(n_rib_pairs: int) -> tuple[str, ...]:
    """Mask keys of the posterior ribs, right side first, numbered from the top."""
    return tuple(f"rib_{side}_{i}" for side in ("right", "left") for i in range(1, n_rib_pairs + 1))


# ----------------------------------------------------------------------------------------------------
# Patient: every random number of one image, drawn once, in canonical units.
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Patient:
    """Per-image anatomy, pose, exposure and findings (canonical coordinates)."""

    # pose: canonical -> image
    angle: float
    shift: tuple[float, float]
    scale: float
    # body
    body_half_width: float
    body_half_height: float
    body_center_v: float
    neck_half_width: float
    # lungs (one ellipse per side, cut by the domes and the mediastinum)
    lung_center_offset: float  # |u - 0.5| of each lung ellipse centre
    lung_half_width: float
    lung_center_v: float
    apex_v: float
    dome_v: tuple[float, float]  # (right, left) dome tops
    dome_depth: float  # how far the costophrenic angle lies below the dome top
    mediastinum_half_width: float
    # heart
    heart_center: tuple[float, float]
    heart_axes: tuple[float, float]
    heart_angle: float
    ctr_target: float
    # spine and trachea
    spine_half_width: float
    t1_top_v: float
    vertebra_height: float
    carina_v: float
    trachea_half_width: float
    # ribs and clavicles
    rib_thickness: float
    rib_drop: float
    clavicle_v: float
    clavicle_rise: float
    clavicle_thickness: float
    # exposure
    exposure: float
    contrast: float
    gamma: float
    noise_std: float
    blur_px: float
    # findings
    findings: dict[str, bool]
    effusion_side: int  # 0 = right, 1 = left
    effusion_level: float
    nodule_side: int
    nodule_pos: tuple[float, float]  # fraction of the lung box
    nodule_radius: float
    pneumothorax_side: int
    pneumothorax_collapse: float
    # free random streams for textures
    texture_seed: int
    breast: float


def _draw_patient(
    rng: np.random.Generator, anatomy_rng: np.random.Generator, config: PhantomConfig
) -> _Patient:
    s = float(config.variation)

    def around(rng_, mean, spread):
        return float(mean + s * spread * rng_.uniform(-1.0, 1.0))

    a = anatomy_rng
    apex_v = around(a, 0.135, 0.025)
    dome_r = around(a, 0.70, 0.04)
    dome_l = dome_r + around(a, 0.025, 0.012)
    lung_half_width = around(a, 0.185, 0.015)
    lung_center_offset = around(a, 0.195, 0.012)
    findings = {name: bool(rng.random() < config.prevalence.get(name, 0.0)) for name in FINDINGS}
    # The cardiothoracic ratio decides the heart width: normal below 0.5, cardiomegaly clearly above.
    ctr = around(rng, 0.60, 0.05) if findings["cardiomegaly"] else around(a, 0.43, 0.04)
    thorax_width = 2 * (lung_center_offset + lung_half_width)
    heart_width = ctr * thorax_width
    heart_angle = math.radians(around(a, 30.0, 8.0))
    ratio = around(a, 0.78, 0.06)  # short / long axis
    # width of a rotated ellipse = 2 sqrt(A^2 cos^2 + B^2 sin^2); solve for the long axis A
    long_axis = (
        0.5 * heart_width / math.sqrt(math.cos(heart_angle) ** 2 + (ratio * math.sin(heart_angle)) ** 2)
    )
    heart_axes = (long_axis, ratio * long_axis)
    heart_height = 2 * math.sqrt(
        (long_axis * math.sin(heart_angle)) ** 2 + (ratio * long_axis * math.cos(heart_angle)) ** 2
    )
    heart_center = (0.5 + heart_width / 6.0 + s * a.uniform(-0.01, 0.01), dome_l - 0.3 * heart_height)
    t1_top_v = apex_v - around(a, 0.02, 0.01)
    vertebra_height = (dome_l + 0.07 - t1_top_v) / 12.0
    return _Patient(
        angle=math.radians(around(rng, 0.0, 3.0)),
        shift=(around(rng, 0.0, 0.025), around(rng, 0.0, 0.025)),
        scale=around(rng, 1.0, 0.05),
        body_half_width=around(a, 0.44, 0.04),
        body_half_height=around(a, 0.64, 0.04),
        body_center_v=0.66,
        neck_half_width=around(a, 0.085, 0.012),
        lung_center_offset=lung_center_offset,
        lung_half_width=lung_half_width,
        lung_center_v=around(a, 0.64, 0.02),
        apex_v=apex_v,
        dome_v=(dome_r, dome_l),
        dome_depth=around(a, 0.07, 0.015),
        mediastinum_half_width=around(a, 0.06, 0.008),
        heart_center=heart_center,
        heart_axes=heart_axes,
        heart_angle=heart_angle,
        ctr_target=ctr,
        spine_half_width=around(a, 0.034, 0.004),
        t1_top_v=t1_top_v,
        vertebra_height=vertebra_height,
        carina_v=around(a, 0.37, 0.02),
        trachea_half_width=around(a, 0.017, 0.003),
        rib_thickness=around(a, 0.021, 0.004),
        rib_drop=around(a, 0.15, 0.02),
        clavicle_v=apex_v + around(a, 0.05, 0.015),
        clavicle_rise=around(a, 0.07, 0.02),
        clavicle_thickness=around(a, 0.024, 0.004),
        exposure=around(rng, 1.0, 0.12),
        contrast=around(rng, 1.0, 0.12),
        gamma=around(rng, 1.0, 0.12),
        noise_std=float(config.noise) * around(rng, 0.022, 0.01),
        blur_px=around(rng, 0.8, 0.25),
        findings=findings,
        effusion_side=int(rng.integers(2)),
        effusion_level=around(rng, 0.55, 0.2),
        nodule_side=int(rng.integers(2)),
        nodule_pos=(float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.2, 0.75))),
        nodule_radius=around(rng, 0.022, 0.008),
        pneumothorax_side=int(rng.integers(2)),
        pneumothorax_collapse=around(rng, 0.8, 0.06),
        texture_seed=int(rng.integers(2**31)),
        breast=float(a.uniform(0.0, 1.0)) if config.extras else 0.0,
    )


# ----------------------------------------------------------------------------------------------------
# Geometry helpers in the canonical frame
# ----------------------------------------------------------------------------------------------------


class _Frame:
    """The pixel grid of one image and the pose that maps it to canonical coordinates."""

    def __init__(self, size: int, patient: _Patient):
        self.size = size
        c, s = math.cos(patient.angle), math.sin(patient.angle)
        self.rot = np.array([[c, -s], [s, c]])
        self.scale = patient.scale
        self.shift = np.array(patient.shift)
        p = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
        px, py = p[None, :], p[:, None]
        # canonical = R^-1 (p - shift) / scale + 0.5
        qx, qy = px - self.shift[0], py - self.shift[1]
        self.u = ((c * qx + s * qy) / self.scale + 0.5).astype(np.float32)
        self.v = ((-s * qx + c * qy) / self.scale + 0.5).astype(np.float32)

    def to_pixels(self, u: float, v: float) -> tuple[float, float]:
        """Canonical point -> pixel (x, y) (pixel centres at integers)."""
        q = self.rot @ (np.array([u, v]) - 0.5) * self.scale + 0.5 + self.shift
        return float(q[0] * self.size - 0.5), float(q[1] * self.size - 0.5)

    def points_to_pixels(self, uv: np.ndarray) -> np.ndarray:
        q = (uv - 0.5) @ self.rot.T * self.scale + 0.5 + self.shift
        return q * self.size - 0.5

    def window(self, u0: float, v0: float, u1: float, v1: float) -> tuple[slice, slice]:
        """Pixel rows/cols covering a canonical box (with a margin), for work on a sub-grid."""
        corners = self.points_to_pixels(np.array([[u0, v0], [u1, v0], [u0, v1], [u1, v1]]))
        lo = np.floor(corners.min(0)).astype(int) - 2
        hi = np.ceil(corners.max(0)).astype(int) + 3
        lo = np.clip(lo, 0, self.size)
        hi = np.clip(hi, 0, self.size)
        return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _ellipse_distance(u, v, cu, cv, a, b, angle=0.0):
    """Approximate signed distance to an ellipse (negative inside), first order in F / |grad F|."""
    du, dv = u - cu, v - cv
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        du, dv = c * du + s * dv, -s * du + c * dv
    f = (du / a) ** 2 + (dv / b) ** 2 - 1.0
    grad = 2.0 * np.sqrt((du / a**2) ** 2 + (dv / b**2) ** 2) + 1e-6
    return f / grad


def _ellipse_depth(u, v, cu, cv, a, b, angle=0.0):
    """Path length through an ellipsoid seen face-on, normalized to 1 at the centre."""
    du, dv = u - cu, v - cv
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        du, dv = c * du + s * dv, -s * du + c * dv
    return np.sqrt(np.clip(1.0 - (du / a) ** 2 - (dv / b) ** 2, 0.0, None))


def _curve_band(u, v, xs, ys, half_width):
    """Signed distance (minus half width) to a curve v = f(u) given by samples (xs increasing)."""
    f = np.interp(u, xs, ys)
    slope = np.interp(u, xs, np.gradient(ys, xs))
    inside_span = (u >= xs[0]) & (u <= xs[-1])
    hw = np.interp(u, xs, half_width) if np.ndim(half_width) else half_width
    d = np.abs(v - f) / np.sqrt(1.0 + slope**2) - hw
    return np.where(inside_span, d, np.inf)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ----------------------------------------------------------------------------------------------------
# The anatomy: shapes -> masks, depths (for the image) and landmarks
# ----------------------------------------------------------------------------------------------------


class _Anatomy:
    """Rasterizes one patient: hard masks for the ground truth, soft maps for the image."""

    def __init__(self, patient: _Patient, frame: _Frame, n_ribs: int):
        self.p, self.f, self.n_ribs = patient, frame, n_ribs
        self.u, self.v = frame.u, frame.v

    # -- basic shapes ----------------------------------------------------------------------------
    def side_u(self, side: int) -> float:
        """Canonical u of a lung centre: side 0 = patient's right = image left."""
        return 0.5 - self.p.lung_center_offset if side == 0 else 0.5 + self.p.lung_center_offset

    def dome(self, side: int, u):
        """Canonical v of the diaphragm under each column (a parabola through the dome top)."""
        p = self.p
        peak_u = self.side_u(side) + (0.02 if side == 0 else -0.02)
        t = (u - peak_u) / p.lung_half_width
        return p.dome_v[side] + p.dome_depth * t**2

    def mediastinum_edge(self, v):
        """Half-width of the upper mediastinum (trachea, great vessels) at height v."""
        p = self.p
        return p.mediastinum_half_width * (0.85 + 0.3 * _smoothstep((v - p.apex_v) / 0.3))

    def thorax(self, side: int, u=None, v=None):
        """Signed distance to a hemithorax (lung ellipse cut by the dome and mediastinum)."""
        p = self.p
        u = self.u if u is None else u
        v = self.v if v is None else v
        lung_h = p.lung_center_v - p.apex_v
        d_ellipse = _ellipse_distance(u, v, self.side_u(side), p.lung_center_v, p.lung_half_width, lung_h)
        d_dome = v - self.dome(side, u)
        d_med = (self.mediastinum_edge(v) - np.abs(u - 0.5)) if True else 0
        return np.maximum(np.maximum(d_ellipse, d_dome), d_med)

    def heart_distance(self, u=None, v=None):
        p = self.p
        u = self.u if u is None else u
        v = self.v if v is None else v
        d = _ellipse_distance(u, v, *p.heart_center, *p.heart_axes, angle=p.heart_angle)
        # the heart rests on the left dome; what lies below it is hidden in the abdomen
        return np.maximum(d, v - (max(p.dome_v) + 0.03))

    def aortic_knob(self):
        p = self.p
        return (0.5 + p.mediastinum_half_width * 0.9, p.carina_v - 0.055, p.mediastinum_half_width * 0.55)

    def pulmonary_artery(self):
        p = self.p
        hu, hv = p.heart_center
        # the main pulmonary artery bulges on the left mediastinal border, between knob and heart
        top_of_heart = hv - p.heart_axes[1] * 1.05
        return (
            0.5 + p.mediastinum_half_width * 1.15,
            0.5 * (top_of_heart + p.carina_v + 0.01),
            p.mediastinum_half_width * 0.45,
        )

    def lungs(self):
        """Hard lung masks (hemithorax minus heart, knob and pulmonary artery)."""
        u, v = self.u, self.v
        heart = self.heart_distance() <= 0
        ku, kv, kr = self.aortic_knob()
        au, av, ar = self.pulmonary_artery()
        bulges = ((u - ku) ** 2 + (v - kv) ** 2 <= kr**2) | ((u - au) ** 2 + (v - av) ** 2 <= ar**2)
        return [(self.thorax(side) <= 0) & ~heart & ~bulges for side in (0, 1)], heart

    # -- spine ---------------------------------------------------------------------------------------
    def vertebra_v(self, i: int) -> float:
        """Canonical v of the centre of thoracic vertebra T(i), i = 1..12."""
        return self.p.t1_top_v + (i - 0.5) * self.p.vertebra_height

    def spine_maps(self):
        """Bodies, pedicles and spinous processes of the whole column (soft map) and its mask."""
        p, u, v = self.p, self.u, self.v
        w, h = p.spine_half_width, p.vertebra_height
        column = np.abs(u - 0.5) <= w
        k = (v - p.t1_top_v) / h  # vertebra coordinate: integer parts are vertebrae
        frac = k - np.floor(k)
        # endplates: a dark disc space between bodies, bright cortical rims
        body = _smoothstep((0.5 - np.abs(frac - 0.5)) / 0.12)
        edge = np.exp(-(((np.abs(u - 0.5) - 0.9 * w) / (0.12 * w)) ** 2))
        spinous = np.exp(-(((u - 0.5) / (0.22 * w)) ** 2 + ((frac - 0.72) / 0.16) ** 2))
        pedicle = np.exp(-(((np.abs(u - 0.5) - 0.62 * w) / (0.18 * w)) ** 2 + ((frac - 0.35) / 0.14) ** 2))
        soft = _smoothstep((w * 1.05 - np.abs(u - 0.5)) / (0.15 * w)) * (0.75 + 0.25 * body)
        soft = soft * (v > p.t1_top_v - 3 * h) + 0.35 * edge * column + 0.5 * spinous + 0.35 * pedicle
        return soft.astype(np.float32), column & (v > p.t1_top_v - 3 * h)

    # -- ribs and clavicles -------------------------------------------------------------------------
    def rib_geometry(self, side: int, i: int):
        """Ellipse arc of posterior rib i: the medial end at vertebra T(i), the arc falls laterally."""
        p = self.p
        sign = -1 if side == 0 else 1
        v_med = self.vertebra_v(i)
        drop = p.rib_drop * (0.7 + 0.06 * i)
        peak_u = 0.5 + sign * (p.spine_half_width + 0.07)
        # lateral end at the chest wall, a little outside the lung's lateral edge at that height
        lung_h = p.lung_center_v - p.apex_v
        v_end = v_med + drop
        t = np.clip((v_end - p.lung_center_v) / lung_h, -1.0, 1.0)
        wall = p.lung_half_width * math.sqrt(max(1.0 - t**2, 0.05)) + 0.02
        end_u = self.side_u(side) + sign * wall
        a = abs(peak_u - end_u)
        b = drop
        thick = p.rib_thickness * (0.8 + 0.04 * i)
        cu, cv = peak_u, v_med - 0.012 + b
        return cu, cv, a, b, thick, sign

    def rib(self, side: int, i: int):
        """(mask, soft profile, window) of posterior rib i on one side."""
        cu, cv, a, b, thick, sign = self.rib_geometry(side, i)
        med_u = 0.5 + sign * self.p.spine_half_width * 0.6
        u0, u1 = sorted((med_u, cu + sign * a))
        rows, cols = self.f.window(u0 - thick, cv - b - thick, u1 + thick, cv + thick)
        u, v = self.u[rows, cols], self.v[rows, cols]
        # half ellipse on the lateral side (the rib runs from the spine out and down) plus the short
        # medial stretch between the peak and the spine
        d = np.abs(_ellipse_distance(u, v, cu, cv, a, b)) - thick / 2
        span = (v <= cv) & ((u - med_u) * sign >= 0) & ((u - (cu + sign * a)) * sign <= 0)
        mask = (d <= 0) & span
        # cortical bone: a bright rim and a lighter core
        x = np.clip(-d / (thick / 2), 0.0, 1.0)
        soft = np.where(span, _smoothstep(x * 3.0) * (0.7 + 0.3 * (1 - x) ** 2), 0.0)
        return mask, soft.astype(np.float32), (rows, cols)

    def rib_point(self, side: int, i: int, fraction: float) -> tuple[float, float]:
        """Canonical point on rib i's centre line, ``fraction`` of the way from peak to lateral end."""
        cu, cv, a, b, thick, sign = self.rib_geometry(side, i)
        theta = fraction * math.pi / 2
        return cu + sign * a * math.sin(theta), cv - b * math.cos(theta)

    def clavicle_curve(self, side: int):
        """Centre line (u samples increasing, v) and half widths of one clavicle."""
        p = self.p
        t = np.linspace(0.0, 1.0, 33)
        med_u, length = 0.5 - 0.05, 0.27
        us = med_u - t * length
        vs = p.clavicle_v - p.clavicle_rise * t + 0.015 * np.sin(2 * np.pi * t)
        hw = p.clavicle_thickness / 2 * (1.25 - 0.35 * t)
        if side == 1:
            us = 1.0 - us
        order = np.argsort(us)
        return us[order], vs[order], hw[order], t[order]

    def clavicle(self, side: int):
        us, vs, hw, _ = self.clavicle_curve(side)
        rows, cols = self.f.window(us[0], vs.min() - 0.03, us[-1], vs.max() + 0.03)
        u, v = self.u[rows, cols], self.v[rows, cols]
        d = _curve_band(u, v, us, vs, hw)
        mask = d <= 0
        x = np.clip(-d / np.interp(u, us, hw), 0.0, 1.0)
        soft = np.where(np.isfinite(d), _smoothstep(x * 3.0) * (0.75 + 0.25 * (1 - x) ** 2), 0.0)
        return mask, soft.astype(np.float32), (rows, cols)

    def clavicle_point(self, side: int, t_target: float) -> tuple[float, float]:
        us, vs, _, ts = self.clavicle_curve(side)
        order = np.argsort(ts)
        return float(np.interp(t_target, ts[order], us[order])), float(
            np.interp(t_target, ts[order], vs[order])
        )


# ----------------------------------------------------------------------------------------------------
# Texture
# ----------------------------------------------------------------------------------------------------


def _vessel_tree(rng: np.random.Generator, hilum: tuple[float, float], side: int, levels: int = 6):
    """Points (canonical) and weights of a branching vessel tree grown from a hilum, level by level."""
    sign = -1 if side == 0 else 1
    n0 = 7
    # trunks fan out from the hilum: up, out, down (away from the mediastinum)
    base = np.linspace(-1.25, 1.25, n0) + rng.uniform(-0.12, 0.12, n0)
    angle = np.where(sign < 0, math.pi - base, base)  # 0 = to image right
    start = np.tile(np.asarray(hilum, dtype=np.float64), (n0, 1))
    length = rng.uniform(0.05, 0.08, n0)
    width = np.full(n0, 1.0)
    pts, wts = [], []
    for _ in range(levels):
        end = start + np.stack([np.cos(angle), np.sin(angle)], 1) * length[:, None]
        t = np.linspace(0.0, 1.0, 12)[None, :, None]
        seg = start[:, None, :] + t * (end - start)[:, None, :]
        pts.append(seg.reshape(-1, 2))
        wts.append(np.repeat(width, 12))
        # each segment forks in two, narrower and shorter
        fork = rng.uniform(0.25, 0.55, (len(angle), 2)) * np.array([1.0, -1.0])
        angle = (angle[:, None] + fork).reshape(-1)
        start = np.repeat(end, 2, axis=0)
        length = np.repeat(length * 0.78, 2) * rng.uniform(0.8, 1.2, len(angle))
        width = np.repeat(width * 0.72, 2)
    return np.concatenate(pts), np.concatenate(wts)


def _splat(frame: _Frame, points_uv: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Accumulate weighted points into a pixel image (nearest pixel)."""
    xy = np.rint(frame.points_to_pixels(points_uv)).astype(np.int64)
    n = frame.size
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < n) & (xy[:, 1] >= 0) & (xy[:, 1] < n)
    flat = xy[ok, 1] * n + xy[ok, 0]
    return np.bincount(flat, weights=weights[ok], minlength=n * n).reshape(n, n).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, u, v, n_waves: int = 6, max_freq: float = 4.0):
    """Low-frequency texture: a few random plane waves in canonical coordinates."""
    out = np.zeros_like(u)
    for _ in range(n_waves):
        fu, fv = rng.uniform(-max_freq, max_freq, 2) * 2 * np.pi
        out += np.cos(fu * u + fv * v + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    return out / math.sqrt(n_waves)


# ----------------------------------------------------------------------------------------------------
# generate(): one image
# ----------------------------------------------------------------------------------------------------


def generate(
    seed: int,
    config: PhantomConfig | None = None,
    size: int | None = None,
    *,
    patient_seed: int | None = None,
) -> PhantomSample:
    """One phantom radiograph with its ground truth; the same arguments always give the same bytes.

    ``seed`` draws everything about this image. ``patient_seed`` (default: ``seed``) draws the anatomy
    alone, so several images with the same ``patient_seed`` are follow-ups of one patient: same body,
    new pose, exposure and findings. ``size`` overrides ``config.size``.
    """
    config = config or PhantomConfig()
    if size is not None:
        config = dataclasses.replace(config, size=int(size))
    n = int(config.size)
    patient_seed = seed if patient_seed is None else patient_seed
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, 1])
    anatomy_rng = np.random.default_rng([int(patient_seed) & 0xFFFFFFFF, int(patient_seed) >> 32, 2])
    p = _draw_patient(rng, anatomy_rng, config)
    frame = _Frame(n, p)
    anat = _Anatomy(p, frame, config.n_rib_pairs)
    u, v = frame.u, frame.v
    tex_rng = np.random.default_rng(p.texture_seed)

    # -- masks --------------------------------------------------------------------------------------
    (right_lung, left_lung), heart = anat.lungs()
    masks: dict[str, np.ndarray] = {"right_lung": right_lung, "left_lung": left_lung, "heart": heart}
    bone = np.zeros((n, n), np.float32)  # summed bone thickness (soft profiles)
    for side, name in ((0, "right_clavicle"), (1, "left_clavicle")):
        m, soft, (rows, cols) = anat.clavicle(side)
        full = np.zeros((n, n), bool)
        full[rows, cols] = m
        masks[name] = full
        bone[rows, cols] += 1.1 * soft
    for side, side_name in ((0, "right"), (1, "left")):
        for i in range(1, config.n_rib_pairs + 1):
            m, soft, (rows, cols) = anat.rib(side, i)
            full = np.zeros((n, n), bool)
            full[rows, cols] = m
            masks[f"rib_{side_name}_{i}"] = full
            bone[rows, cols] += soft
    spine_soft, spine_mask = anat.spine_maps()

    # -- attenuation --------------------------------------------------------------------------------
    body_r = ((u - 0.5) / p.body_half_width) ** 4 + ((v - p.body_center_v) / p.body_half_height) ** 4
    body = np.sqrt(np.clip(1.0 - body_r, 0.0, None))
    neck = _ellipse_depth(u, v, 0.5, 0.0, p.neck_half_width, 0.3) * 0.8
    body = np.maximum(body, neck)
    body_mask = body > 0

    lung_h = p.lung_center_v - p.apex_v
    air = np.zeros((n, n), np.float32)
    for side in (0, 1):
        depth = _ellipse_depth(u, v, anat.side_u(side), p.lung_center_v, p.lung_half_width, lung_h)
        # the lung thins towards the dome (it wraps over the diaphragm) and the mediastinum
        depth = depth * np.sqrt(_smoothstep((anat.dome(side, u) - v) / 0.03))
        air += np.where(anat.thorax(side) <= 0, depth, 0.0).astype(np.float32)
    # the heart lies in front of the lungs and displaces them: little air remains behind it
    air *= 1.0 - 0.85 * _smoothstep(-anat.heart_distance() / 0.015)
    heart_depth = _ellipse_depth(u, v, *p.heart_center, *p.heart_axes, angle=p.heart_angle)
    heart_depth = np.where(heart, np.sqrt(heart_depth), 0.0)
    med = _smoothstep((anat.mediastinum_edge(v) * 1.05 - np.abs(u - 0.5)) / 0.012) * (v > 0.0)
    ku, kv, kr = anat.aortic_knob()
    au, av, ar = anat.pulmonary_artery()
    bulges = np.maximum(_ellipse_depth(u, v, ku, kv, kr, kr), _ellipse_depth(u, v, au, av, ar, ar))
    trachea_d = _ellipse_depth(u, v, 0.5, p.carina_v - 0.5, p.trachea_half_width, 0.5)
    # main bronchi: two short oblique tubes from the carina
    bronchi = np.zeros_like(u)
    for sign in (-1, 1):
        bronchi = np.maximum(
            bronchi,
            _ellipse_depth(
                u,
                v,
                0.5 + sign * 0.035,
                p.carina_v + 0.03,
                0.045,
                p.trachea_half_width * 0.8,
                angle=sign * 0.7,
            ),
        )
    trachea = np.maximum(trachea_d, bronchi)

    # vessels: two trees, blurred into tubes, only visible in aerated lung
    vessels = np.zeros((n, n), np.float32)
    for side in (0, 1):
        hilum = (0.5 + (-1 if side == 0 else 1) * (p.mediastinum_half_width + 0.035), p.carina_v + 0.08)
        pts, wts = _vessel_tree(tex_rng, hilum, side)
        vessels += _splat(frame, pts, wts)
    vessels = ndimage.gaussian_filter(vessels, sigma=max(0.6, 0.004 * n), mode="constant")
    vessels *= 0.006 * n  # splat density grows with size; keep contrast size-independent
    vessels = np.clip(vessels, 0.0, 1.5)
    smooth = _smooth_noise(tex_rng, u, v)

    atten = (
        1.0 * body
        - 0.80 * air
        + 0.30 * heart_depth
        + 0.35 * med * (1.0 - 0.5 * (heart_depth > 0))
        + 0.30 * bulges
        - 0.15 * trachea
        + 0.12 * spine_soft * body_mask
        + 0.13 * bone
        + 0.30 * float(config.texture) * vessels * np.clip(air * 3.0, 0.0, 1.0)
        + 0.04 * float(config.texture) * smooth * body
    )
    if config.extras:
        atten += _extras(anat, p, u, v, body)

    # -- findings ------------------------------------------------------------------------------------
    finding_masks: dict[str, np.ndarray] = {}
    lungs = (right_lung, left_lung)
    if p.findings["effusion"]:
        side = p.effusion_side
        d_u = np.abs(u - anat.side_u(side)) / p.lung_half_width
        # a meniscus: fluid climbs higher laterally along the chest wall
        level = (
            p.dome_v[side]
            - 0.02
            - p.effusion_level * 0.08 * (1 + (d_u * (u - 0.5) * (1 if side else -1) > 0))
        )
        meniscus = level - 0.08 * np.clip(d_u, 0, 1) ** 2 * (
            (u - anat.side_u(side)) * (1 if side else -1) > 0
        )
        in_thorax = (anat.thorax(side) <= 0.0) & ~heart
        eff = in_thorax & (v >= meniscus)
        finding_masks["effusion"] = eff
        fade = _smoothstep((v - meniscus) / 0.03)
        atten += np.where(in_thorax, fade * 0.7 * air + 0.1 * fade, 0.0)
    if p.findings["nodule"]:
        side = p.nodule_side
        ys, xs = np.nonzero(lungs[side])
        cu = float(np.quantile(u[ys, xs], p.nodule_pos[0]))
        cv = float(np.quantile(v[ys, xs], p.nodule_pos[1]))
        r = p.nodule_radius
        nod = _ellipse_depth(u, v, cu, cv, r, r * 0.9)
        finding_masks["nodule"] = (nod > 0) & lungs[side]
        atten += 0.35 * np.sqrt(nod)
    if p.findings["pneumothorax"]:
        side = p.pneumothorax_side
        k = p.pneumothorax_collapse
        # the collapsed lung shrinks towards the hilum; the pleural air rim has no lung markings
        hu = 0.5 + (-1 if side == 0 else 1) * (p.mediastinum_half_width + 0.02)
        hv = p.carina_v + 0.1
        shrunk_u = hu + (u - hu) / k
        shrunk_v = hv + (v - hv) / k
        collapsed = anat.thorax(side, shrunk_u, shrunk_v) <= 0
        ptx = lungs[side] & ~collapsed & (v < p.dome_v[side] - 0.05)
        finding_masks["pneumothorax"] = ptx
        d_pl = np.abs(anat.thorax(side, shrunk_u, shrunk_v)) * k
        pleural_line = np.exp(-((d_pl / 0.004) ** 2)) * (v < p.dome_v[side] - 0.05) * lungs[side]
        atten += np.where(ptx, -0.12 - 0.22 * float(config.texture) * vessels * np.clip(air * 3, 0, 1), 0.0)
        atten += 0.18 * pleural_line

    # -- grey values ---------------------------------------------------------------------------------
    grey = 1.0 - np.exp(-1.6 * p.contrast * np.clip(atten, 0.0, None) / p.exposure)
    grey = grey ** (p.gamma * 1.15)
    grey = ndimage.gaussian_filter(grey.astype(np.float32), sigma=p.blur_px * n / 256.0)
    noise = np.random.default_rng(p.texture_seed + 1).standard_normal((n, n), dtype=np.float32)
    if n > 128:  # correlated like a detector's noise, at a roughly size-independent grain
        noise = ndimage.gaussian_filter(noise, sigma=0.5 * n / 256.0) * (1.0 + 0.6 * n / 256.0)
    grey = grey + p.noise_std * noise * (0.4 + 0.6 * np.sqrt(np.clip(1 - grey, 0, 1)))
    image = np.clip(grey, 0.0, 1.0).astype(np.float32)

    # -- landmarks ------------------------------------------------------------------------------------
    landmarks = _landmarks(anat, p, frame)
    extra_masks = {"body": body_mask, "spine": spine_mask, "trachea": trachea > 0, "mediastinum": med > 0.5}
    return PhantomSample(
        image=image,
        masks=masks,
        landmarks=landmarks,
        findings=dict(p.findings),
        finding_masks=finding_masks,
        patient_id=int(patient_seed),
        extra_masks=extra_masks,
        info={"cardiothoracic_ratio": cardiothoracic_ratio(masks)},
    )


def _extras(anat: _Anatomy, p: _Patient, u, v, body) -> np.ndarray:
    """Structures without masks that make the picture read as a chest: scapulae, humeral heads,
    breast shadows and faint anterior ribs."""
    out = np.zeros_like(u)
    for sign in (-1, 1):
        # scapula: a triangle-ish plate over the upper lateral chest wall
        su = 0.5 + sign * (p.lung_center_offset + p.lung_half_width * 0.95)
        out += 0.12 * _ellipse_depth(u, v, su, p.apex_v + 0.13, 0.06, 0.16, angle=sign * 0.25)
        # humeral head at the shoulder
        out += 0.35 * _ellipse_depth(
            u, v, 0.5 + sign * (p.body_half_width + 0.02), p.apex_v - 0.02, 0.07, 0.08
        )
        if p.breast > 0.5:
            bu = 0.5 + sign * (p.lung_center_offset + 0.03)
            out += 0.12 * (p.breast - 0.5) * 2 * _ellipse_depth(u, v, bu, p.dome_v[0] - 0.02, 0.2, 0.12)
    return out * (body > 0)


def _landmarks(anat: _Anatomy, p: _Patient, frame: _Frame) -> dict[str, tuple[float, float]]:
    """The paper's ten landmarks, placed on their structures in canonical units, then to pixels."""
    canonical = {
        "right_clavicle": anat.clavicle_point(0, 0.3),
        "azygos_arch": (0.5 - p.trachea_half_width - 0.012, p.carina_v - 0.015),
        "right_rib6": anat.rib_point(0, 6, 0.35),
        "spinous_process": (0.5, p.t1_top_v + (4 + 0.72) * p.vertebra_height),
        "left_clavicle": anat.clavicle_point(1, 0.3),
        "pulmonary_artery": anat.pulmonary_artery()[:2],
        "left_rib5": anat.rib_point(1, 5, 0.35),
        "right_hemidiaphragm": (anat.side_u(0) + 0.02, p.dome_v[0] + 0.004),
        "left_hemidiaphragm": (anat.side_u(1) - 0.02, p.dome_v[1] + 0.004),
        "end_of_thoracic_spine": (0.5, anat.vertebra_v(12)),
    }
    return {name: frame.to_pixels(*canonical[name]) for name in LANDMARKS}


def cardiothoracic_ratio(masks: dict[str, np.ndarray]) -> float:
    """Maximal heart width over maximal internal thoracic width (lateral lung edges), from masks."""
    heart_cols = np.nonzero(masks["heart"].any(0))[0]
    lung_cols = np.nonzero((masks["right_lung"] | masks["left_lung"]).any(0))[0]
    if len(heart_cols) == 0 or len(lung_cols) == 0:
        return float("nan")
    return float((heart_cols[-1] - heart_cols[0] + 1) / (lung_cols[-1] - lung_cols[0] + 1))


# ----------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------


class PhantomDataset(torch.utils.data.Dataset):
    """``n`` phantoms; item ``i`` is ``generate(seed * 1_000_003 + i)``, so it is the same in every
    worker process and every epoch.

    Items: ``{"image": [1,H,W], "masks": [S,H,W] (order = self.structures), "labels": [4] (FINDINGS),
    "landmarks": [10, 2] (x, y), "patient_id": int, "index": int}``.
    """

    def __init__(
        self, n: int, size: int = 256, seed: int = 0, config: PhantomConfig | None = None, structures=None
    ):
        if n < 0:
            raise ValueError(f"PhantomDataset: n must be >= 0, got {n}")
        self.n, self.seed = int(n), int(seed)
        self.config = dataclasses.replace(config or PhantomConfig(), size=int(size))
        known = STRUCTURES + rib_names(self.config.n_rib_pairs)
        self.structures = tuple(STRUCTURES if structures is None else structures)
        for name in self.structures:
            if name not in known:
                raise ValueError(f"PhantomDataset: unknown structure {name!r}; expected one of {known}")

    def __len__(self) -> int:
        return self.n

    def sample_seed(self, index: int) -> int:
        return self.seed * 1_000_003 + index

    def sample(self, index: int) -> PhantomSample:
        """The full ground truth of item ``index`` (numpy, all masks and finding masks)."""
        if not 0 <= index < self.n:
            raise IndexError(f"PhantomDataset index {index} out of range for length {self.n}")
        return generate(self.sample_seed(index), self.config)

    def __getitem__(self, index: int) -> dict:
        s = self.sample(index)
        masks = (
            np.stack([s.masks[name] for name in self.structures])
            if self.structures
            else np.zeros((0, self.config.size, self.config.size), bool)
        )
        return {
            "image": torch.from_numpy(s.image)[None],
            "masks": torch.from_numpy(masks.astype(np.float32)),
            "labels": torch.tensor([float(s.findings[f]) for f in FINDINGS]),
            "landmarks": torch.tensor([s.landmarks[k] for k in LANDMARKS], dtype=torch.float32),
            "patient_id": s.patient_id,
            "index": index,
        }
