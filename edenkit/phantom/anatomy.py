"""The anatomy of one patient on one frame: distances, masks, centre lines and landmark points.

Shapes are analytic (ellipses, parabolas, curves ``v = f(u)``, in v2 a heart outline in polar form)
and evaluated with NumPy on the whole grid or on a pixel window around them, in canonical
coordinates (``edenkit.phantom.geometry``). ``edenkit.phantom.radiograph`` turns them into masks,
landmarks and grey values.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from edenkit.phantom import heart
from edenkit.phantom.geometry import (
    LEFT,
    RIGHT,
    Frame,
    RibArcs,
    _column,
    bone_profile,
    clip01,
    curve_distance,
    ellipse_depth,
    ellipse_distance,
    side_sign,
    smoothstep,
)
from edenkit.phantom.patient import Patient

# attenuation of a full lung's air, and v1's contrast of its vessel markings (soft-tissue units)
AIR, VESSELS = 0.72, 0.40

# ----------------------------------------------------------------------------------------------------
# The anatomy of one patient on one frame
# ----------------------------------------------------------------------------------------------------


class Anatomy:
    """Where each structure is, for one patient: distances, masks, centre lines and landmark points."""

    def __init__(self, patient: Patient, frame: Frame, n_rib_pairs: int):
        self.p, self.frame, self.n_rib_pairs = patient, frame, n_rib_pairs
        self.u, self.v = frame.u, frame.v

    # -- trunk ------------------------------------------------------------------------------------
    def body_depth(self):
        """Soft-tissue path length: a cylinder across the trunk under sloping shoulders, plus the neck."""
        p, u, v = self.p, self.u, self.v
        x = np.abs(u - 0.5)
        slope = np.clip((x - p.neck_half_width) / (p.body_half_width - p.neck_half_width), 0.0, None)
        top = p.shoulder_v + 0.14 * slope**1.3  # the trapezius slopes from the neck to the acromion
        half_width = p.body_half_width * (1.0 - 0.08 * ((v - 0.5) / 0.5) ** 2)  # narrower at the waist
        trunk = np.sqrt(np.clip(1.0 - (x / half_width) ** 2, 0.0, None)) * smoothstep((v - top) / 0.07)
        neck = 0.75 * np.sqrt(np.clip(1.0 - (x / p.neck_half_width) ** 2, 0.0, None))
        return np.maximum(trunk, neck)

    def side_u(self, side: int) -> float:
        """Canonical ``u`` of a lung's centre."""
        return 0.5 + side_sign(side) * self.p.lung_center_offset

    def dome(self, side: int, u):
        """Canonical ``v`` of one hemidiaphragm under each column: a parabola through its dome top."""
        p = self.p
        t = (u - self.dome_top_u(side)) / p.lung_half_width
        return p.dome_v[side] + p.dome_depth * t**2

    def dome_top_u(self, side: int) -> float:
        return self.side_u(side) - side_sign(side) * 0.02

    def hemidiaphragm_point(self, side: int) -> tuple[float, float]:
        """The top of a dome as seen on the film: where the dome is highest *outside* the heart
        shadow (a large heart hides the medial part of the left dome), just under the lung."""
        p = self.p
        u = self.dome_top_u(side)
        sign = side_sign(side)
        if p.heart_shape:
            heart_edge = self._heart_box[side]  # the outline's leftmost (right side) or rightmost point
        else:
            heart_u, _ = p.heart_center
            long_axis, short_axis = p.heart_axes
            heart_half_width = math.hypot(
                long_axis * math.cos(p.heart_angle), short_axis * math.sin(p.heart_angle)
            )
            heart_edge = heart_u + sign * heart_half_width
        if (heart_edge - u) * sign > -0.03:  # the heart reaches the dome top: step out of its shadow
            lateral_edge = self.side_u(side) + sign * 0.8 * p.lung_half_width
            u = heart_edge + sign * 0.03
            u = min(u, lateral_edge) if sign > 0 else max(u, lateral_edge)
        return u, float(self.dome(side, u)) + 0.004

    def diaphragm(self, u):
        """The diaphragm line under the whole chest (each side's dome, joined at the midline)."""
        return np.where(u < 0.5, self.dome(0, u), self.dome(1, u))

    def mediastinum_half_width(self, v):
        """Half-width of the upper mediastinum (trachea, great vessels), widening towards the hila."""
        p = self.p
        return p.mediastinum_half_width * (0.85 + 0.45 * smoothstep((v - p.carina_v + 0.05) / 0.15))

    def mediastinal_border(self, side: int, v):
        """Distance from the midline to the mediastinal border at height v. On the patient's left the
        aortic knob and then the main pulmonary artery bulge into the lung."""
        border = self.mediastinum_half_width(v)
        if side == LEFT:
            for cu, cv, r in (self.aortic_knob(), self.pulmonary_artery()):
                bulge = (cu - 0.5) + r * np.sqrt(np.clip(1.0 - ((v - cv) / r) ** 2, 0.0, None))
                border = np.maximum(border, bulge)
        return border

    @cached_property
    def _hemithorax_grid(self):
        return tuple(self.hemithorax_distance(side, self.u, self.v) for side in (RIGHT, LEFT))

    def hemithorax_distance(self, side: int, u=None, v=None):
        """Signed distance to one pleural cavity: the lung ellipse below the apex, above the dome,
        lateral to the mediastinum. Without ``u, v``: on the image grid (computed once)."""
        p = self.p
        if u is None:
            return self._hemithorax_grid[side]
        lung_h = p.lung_center_v - p.apex_v
        d_ellipse = ellipse_distance(u, v, self.side_u(side), p.lung_center_v, p.lung_half_width, lung_h)
        d_dome = v - self.dome(side, u)
        d_mediastinum = self.mediastinal_border(side, v) - side_sign(side) * (u - 0.5)
        return np.maximum(np.maximum(d_ellipse, d_dome), d_mediastinum)

    def lung_depth(self, side: int):
        """Air path length through one lung: deepest at its centre, thin at the edges."""
        p = self.p
        lung_h = p.lung_center_v - p.apex_v
        depth = ellipse_depth(
            self.u, self.v, self.side_u(side), p.lung_center_v, p.lung_half_width * 1.1, lung_h
        )
        # the air/diaphragm border is nearly tangent to the beam, hence sharp
        return depth * np.sqrt(smoothstep((self.dome(side, self.u) - self.v) / 0.025))

    # -- heart and great vessels ----------------------------------------------------------------
    def heart_distance(self, u=None, v=None):
        """Signed distance to the heart; below the diaphragm it is hidden in the abdomen, so cut there.
        Without ``u, v``: on the image grid (computed once)."""
        p = self.p
        if u is None:
            return self._heart_grid
        if p.heart_shape:
            d = heart.distance(u, v, p.heart_center, p.heart_axes, p.heart_angle, p.heart_shape)
        else:
            d = ellipse_distance(u, v, *p.heart_center, *p.heart_axes, angle=p.heart_angle)
        return np.maximum(d, v - self.diaphragm(u) - 0.01)

    @cached_property
    def _heart_box(self) -> tuple[float, float, float]:
        """(leftmost u, rightmost u, top v) of a v2 heart outline."""
        p = self.p
        points = heart.outline(p.heart_center, p.heart_axes, p.heart_angle, p.heart_shape)
        return float(points[:, 0].min()), float(points[:, 0].max()), float(points[:, 1].min())

    @cached_property
    def _heart_grid(self):
        return self.heart_distance(self.u, self.v)

    def heart_depth(self):
        p = self.p
        if p.heart_shape:
            return heart.depth(self.u, self.v, p.heart_center, p.heart_axes, p.heart_angle, p.heart_shape)
        return ellipse_depth(self.u, self.v, *p.heart_center, *p.heart_axes, angle=p.heart_angle)

    def aortic_knob(self) -> tuple[float, float, float]:
        """(u, v, radius) of the aortic arch seen end-on at the left upper mediastinal border."""
        p = self.p
        return 0.5 + p.mediastinum_half_width * 0.8, p.carina_v - 0.05, p.mediastinum_half_width * 0.6

    def pulmonary_artery(self) -> tuple[float, float, float]:
        """(u, v, radius) of the main pulmonary artery bulge, between the knob and the heart."""
        p = self.p
        _, knob_v, knob_r = self.aortic_knob()
        heart_top = self._heart_box[2] if p.heart_shape else p.heart_center[1] - p.heart_axes[1]
        v = min(0.5 * (knob_v + heart_top) + 0.02, knob_v + 2.6 * knob_r)
        return 0.5 + p.mediastinum_half_width * 1.2, v, p.mediastinum_half_width * 0.45

    def azygos_arch(self) -> tuple[float, float]:
        """The azygos vein arches over the right main bronchus into the superior vena cava: on the
        film an oval density at the right mediastinal border, just above the right tracheobronchial
        angle."""
        v = self.p.carina_v - 0.012
        return 0.5 - float(self.mediastinum_half_width(v)) + 0.008, v

    def hilum(self, side: int) -> tuple[float, float]:
        p = self.p
        u, v = 0.5 + side_sign(side) * (p.mediastinum_half_width + 0.04), p.carina_v + 0.07
        if p.hilum_shift:
            u, v = u + p.hilum_shift[2 * side], v + p.hilum_shift[2 * side + 1]
        return u, v

    def lung_masks(self):
        """Hard masks of (right lung, left lung) and the heart; lungs end where the heart begins."""
        heart = self.heart_distance() <= 0
        lungs = tuple((self.hemithorax_distance(side) <= 0) & ~heart for side in (RIGHT, LEFT))
        return lungs, heart

    # -- spine -----------------------------------------------------------------------------------
    def vertebra_v(self, level: int) -> float:
        """Canonical ``v`` of the centre of thoracic vertebra T(level), level = 1..12."""
        return self.p.t1_top_v + (level - 0.5) * self.p.vertebra_height

    def spinous_process_v(self, level: int) -> float:
        """Spinous processes point downwards, so each projects over the lower part of its vertebra."""
        return self.p.t1_top_v + (level - 0.25) * self.p.vertebra_height

    def spine(self):
        """(soft bone map, mask) of the vertebral column: bodies, end plates, pedicles, spinous processes."""
        p, u, v = self.p, self.u, self.v
        w, h = p.spine_half_width, p.vertebra_height
        x = np.abs(u - 0.5)
        k = (v - p.t1_top_v) / h
        frac = k - np.floor(k)  # position inside one vertebra, 0 = top end plate
        mask = (x <= w) & (v > p.t1_top_v - 3 * h)
        end_plates = smoothstep((0.5 - np.abs(frac - 0.5)) / 0.12)  # dark disc spaces between bodies
        body = smoothstep((w - x) / (0.2 * w)) * (0.2 + 0.8 * end_plates)
        cortex = np.exp(-(((x - 0.92 * w) / (0.1 * w)) ** 2))
        # pedicles: oval rings at both sides of the body ("owl eyes"); spinous process: a midline teardrop
        ring = np.sqrt(((x - 0.62 * w) / (0.2 * w)) ** 2 + ((frac - 0.35) / 0.17) ** 2)
        pedicles = np.exp(-(((ring - 1.0) / 0.3) ** 2))
        spinous = np.exp(-(((u - 0.5) / (0.16 * w)) ** 2) - ((frac - 0.7) / 0.2) ** 2)
        soft = (0.6 * body + 0.2 * cortex) * (v > p.t1_top_v - 3 * h) + 0.5 * spinous + 0.5 * pedicles
        return soft.astype(np.float32), mask

    # -- ribs ------------------------------------------------------------------------------------
    def rib_arcs(self, side: int, levels) -> RibArcs:
        """Posterior ribs ``levels`` (1 = top) of one side, each as two quarter ellipses sharing the
        rib's highest point: from its vertebra the rib rises laterally to the peak (medial quarter),
        then falls steeply to the chest wall (lateral quarter). Arrays with one entry per level."""
        p = self.p
        sign = side_sign(side)
        levels = np.asarray(levels)
        v_medial = p.t1_top_v + (levels - 0.5) * p.vertebra_height + np.asarray(p.rib_jitter)[levels - 1]
        drop = p.rib_drop * (0.8 + 0.04 * levels)  # lower ribs slope more steeply
        if p.rib_drop_scale:
            drop = drop * np.asarray(p.rib_drop_scale)[levels - 1]
        medial_u = np.full(len(levels), 0.5 + sign * p.spine_half_width * 0.7)
        lung_h = p.lung_center_v - p.apex_v
        t = np.clip((v_medial + drop - p.lung_center_v) / lung_h, -1.0, 1.0)
        wall = p.lung_half_width * np.sqrt(np.maximum(1.0 - t * t, 0.05)) + 0.025  # chest wall at the end
        end_u = self.side_u(side) + sign * wall
        peak_u = medial_u + 0.42 * (end_u - medial_u)
        medial_stretch = 1.15  # the medial quarter ellipse is this much wider than the rib's rise
        b_med = 0.45 * drop
        rise = b_med * (1.0 - math.sqrt(1.0 - 1.0 / medial_stretch**2))  # peak above the medial end
        return RibArcs(
            sign=sign,
            peak_u=peak_u,
            center_v=v_medial - rise + drop,
            a_lateral=np.abs(end_u - peak_u),
            a_medial=medial_stretch * np.abs(peak_u - medial_u),
            b_lateral=drop,
            b_medial=b_med,
            thickness=np.asarray(p.rib_thickness)[levels - 1],
            medial_u=medial_u,
            end_u=end_u,
        )

    def ribs(self, side: int):
        """(masks [L,h,w], soft bone profiles [L,h,w], windows) of the posterior ribs 1..L of one
        side, computed together on equal-sized pixel windows (one NumPy pass for all ribs)."""
        r = self.rib_arcs(side, np.arange(1, self.n_rib_pairs + 1))
        boxes = [
            (min(m, e) - t, cv - b - t, max(m, e) + t, cv + t)
            for m, e, cv, b, t in zip(r.medial_u, r.end_u, r.center_v, r.b_lateral, r.thickness)
        ]
        u, v, windows = self.frame.stacked_windows(self.u, self.v, boxes)
        peak_u, cv, a_lat, a_med, b_lat, b_med, thick, medial_u, end_u = (
            _column(x)
            for x in (
                r.peak_u,
                r.center_v,
                r.a_lateral,
                r.a_medial,
                r.b_lateral,
                r.b_medial,
                r.thickness,
                r.medial_u,
                r.end_u,
            )
        )
        sign = r.sign
        lateral = (u - peak_u) * sign >= 0
        d_lat = ellipse_distance(u, v, peak_u, cv, a_lat, b_lat)
        d_med = ellipse_distance(u, v, peak_u, cv - b_lat + b_med, a_med, b_med)
        d = np.abs(np.where(lateral, d_lat, d_med)) - thick / 2
        span = (v <= cv) & ((u - medial_u) * sign >= 0) & ((end_u - u) * sign >= 0)
        span &= lateral | (v <= cv - b_lat + b_med)
        soft = np.where(span, bone_profile(d, thick / 2), 0.0).astype(np.float32)
        return (d <= 0) & span, soft, windows

    def rib_point(self, side: int, level: int, fraction: float) -> tuple[float, float]:
        """A point on a rib's centre line, ``fraction`` of the way (by angle) from its peak to its end."""
        r = self.rib_arcs(side, [level])
        theta = fraction * math.pi / 2
        u = r.peak_u[0] + r.sign * r.a_lateral[0] * math.sin(theta)
        return float(u), float(r.center_v[0] - r.b_lateral[0] * math.cos(theta))

    def anterior_ribs(self, side: int):
        """(soft profiles [L,h,w], windows) of the faint anterior ribs continuing the posterior ones:
        from the chest wall each runs medially and down to its costal cartilage (invisible)."""
        r = self.rib_arcs(side, np.arange(1, self.n_rib_pairs + 1))
        sign = r.sign
        medial_u = self.side_u(side) - sign * 0.05
        drop, thick = 0.12, 1.15 * r.thickness
        # an ellipse centred above the medial end, whose lateral tip is the posterior rib's end
        boxes = [
            (min(e, medial_u) - t, cv - t, max(e, medial_u) + t, cv + drop + t)
            for e, cv, t in zip(r.end_u, r.center_v, thick)
        ]
        u, v, windows = self.frame.stacked_windows(self.u, self.v, boxes)
        a, cv, thick = _column(np.abs(r.end_u - medial_u)), _column(r.center_v), _column(thick)
        d = np.abs(ellipse_distance(u, v, medial_u, cv, a, drop)) - thick / 2
        span = (v >= cv) & ((u - medial_u) * sign >= 0)
        fade = clip01((u - medial_u) * sign / (0.4 * a))  # the costal cartilage is radiolucent
        return np.where(span, bone_profile(d, thick / 2) * fade, 0.0).astype(np.float32), windows

    # -- clavicles --------------------------------------------------------------------------------
    def clavicle_line(self, side: int):
        """Centre line of one clavicle: ``us`` increasing, ``vs``, half widths, and the position
        ``t`` along the bone (0 = medial end at the sternum, 1 = lateral end at the acromion)."""
        p = self.p
        t = np.linspace(0.0, 1.0, 33)
        us = 0.5 - 0.045 - 0.29 * t
        # a gentle S: convex forwards medially, concave laterally
        vs = p.clavicle_v - p.clavicle_rise * t + 0.012 * np.sin(2 * np.pi * t)
        hw = p.clavicle_thickness / 2 * (1.2 - 0.3 * t + 0.25 * np.exp(-(((t - 0.95) / 0.06) ** 2)))
        if side == LEFT:
            us = 1.0 - us
        order = np.argsort(us)
        return us[order], vs[order], hw[order], t[order]

    def clavicle(self, side: int):
        """(mask, soft bone profile, window) of one clavicle."""
        us, vs, hw, _ = self.clavicle_line(side)
        rows, cols = self.frame.window(us[0], vs.min() - hw.max(), us[-1], vs.max() + hw.max())
        u, v = self.u[rows, cols], self.v[rows, cols]
        d, half = curve_distance(u, v, us, vs, hw)
        soft = np.where(np.isfinite(d), bone_profile(d, half), 0.0)
        return d <= 0, soft.astype(np.float32), (rows, cols)

    def clavicle_point(self, side: int, t: float) -> tuple[float, float]:
        us, vs, _, ts = self.clavicle_line(side)
        order = np.argsort(ts)
        return float(np.interp(t, ts[order], us[order])), float(np.interp(t, ts[order], vs[order]))

    # -- landmarks --------------------------------------------------------------------------------
    def landmarks(self) -> dict[str, tuple[float, float]]:
        """The paper's ten landmarks in canonical units, each on or inside its structure."""
        return {
            "right_clavicle": self.clavicle_point(RIGHT, 0.3),
            # the azygos vein arches over the right main bronchus at the right tracheobronchial angle
            "azygos_arch": self.azygos_arch(),
            "right_rib6": self.rib_point(RIGHT, 6, 0.45),
            "spinous_process": (0.5, self.spinous_process_v(5)),
            "left_clavicle": self.clavicle_point(LEFT, 0.3),
            "pulmonary_artery": (self.pulmonary_artery()[0] - 0.006, self.pulmonary_artery()[1]),
            "left_rib5": self.rib_point(LEFT, 5, 0.45),
            "right_hemidiaphragm": self.hemidiaphragm_point(RIGHT),
            "left_hemidiaphragm": self.hemidiaphragm_point(LEFT),
            "end_of_thoracic_spine": (0.5, self.vertebra_v(12)),
        }
