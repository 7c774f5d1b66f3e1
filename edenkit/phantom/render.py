"""A procedural chest-radiograph phantom that knows its own anatomy.

No real chest X-ray can ship with the kit, so it draws its own. Each image is one "patient" whose
anatomy (``edenkit.phantom.anatomy``) is drawn from a seeded NumPy generator and rasterized at any
size from 64 to 1024 px. The image follows a radiograph's physics, simplified:

1. shapes -> ground truth: masks (lungs, heart, clavicles, every posterior rib), the paper's ten
   landmarks, multi-label findings with masks for the focal ones;
2. shapes -> an attenuation map: soft-tissue thickness, minus the air in the lungs, plus heart and
   great vessels, bones (with a bright cortex), pulmonary vessels, findings;
3. attenuation -> grey (exposure, contrast, gamma), then a soft blur and detector noise.

Left/right are the patient's: the RIGHT lung is on the image's LEFT. Landmarks are pixel ``(x, y)``.
Images are float32 in [0, 1], bright = attenuating, as radiographs are displayed.

``python -m edenkit phantom generate|export|bench`` writes PNGs with overlays, exports the real
datasets' on-disk layouts (``edenkit.phantom.export``) or prints the generation rate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from edenkit.phantom.anatomy import (
    LEFT,
    RIGHT,
    Anatomy,
    Frame,
    Patient,
    ellipse_depth,
    side_sign,
    smoothstep,
)

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
FOCAL_FINDINGS = ("effusion", "nodule", "pneumothorax")  # the findings that come with a mask
STRUCTURES = ("right_lung", "left_lung", "heart", "right_clavicle", "left_clavicle")


def rib_names(n_rib_pairs: int = 10) -> tuple[str, ...]:
    """Mask keys of the posterior ribs, the patient's right side first, numbered from the top."""
    return tuple(f"rib_{side}_{i}" for side in ("right", "left") for i in range(1, n_rib_pairs + 1))


@dataclass
class PhantomConfig:
    """What the generator draws. Finding prevalences are independent (multi-label)."""

    size: int = 256
    prevalence: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FINDINGS, 0.1))
    n_rib_pairs: int = 10
    variation: float = 1.0  # scales every per-patient spread; 0 gives the average patient
    noise: float = 1.0  # scales the detector noise
    texture: float = 1.0  # scales the lung markings and the smooth background texture
    extras: bool = True  # scapulae, humeral heads, breast shadows, anterior ribs (no masks)

    def __post_init__(self) -> None:
        if not 32 <= int(self.size) <= 2048:
            raise ValueError(f"PhantomConfig.size: expected 32..2048 pixels, got {self.size}")
        unknown = sorted(set(self.prevalence) - set(FINDINGS))
        if unknown:
            raise ValueError(f"PhantomConfig.prevalence: unknown finding {unknown[0]!r}; expected {FINDINGS}")
        for name, p in self.prevalence.items():
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"PhantomConfig.prevalence[{name!r}]: expected a probability, got {p}")
        if not 6 <= self.n_rib_pairs <= 12:
            # rib 6 carries a landmark, and the thoracic spine has twelve levels
            raise ValueError(f"PhantomConfig.n_rib_pairs: expected 6..12, got {self.n_rib_pairs}")


@dataclass
class PhantomSample:
    """One phantom radiograph and everything the phantom knows about it."""

    image: np.ndarray  # float32 [H, W] in [0, 1]
    masks: dict[str, np.ndarray]  # bool [H, W]: STRUCTURES, then rib_right_1.., rib_left_1..
    landmarks: dict[str, tuple[float, float]]  # (x, y) pixels, keys = LANDMARKS
    findings: dict[str, bool]  # keys = FINDINGS
    finding_masks: dict[str, np.ndarray]  # bool [H, W] for the focal findings present
    patient_id: int
    extra_masks: dict[str, np.ndarray] = field(default_factory=dict)  # body, mediastinum, spine, trachea
    info: dict[str, float] = field(default_factory=dict)  # e.g. the measured cardiothoracic ratio


# ----------------------------------------------------------------------------------------------------
# generate(): one image
# ----------------------------------------------------------------------------------------------------


# attenuation of a full lung's air, and the contrast of its vessel markings (soft-tissue units)
AIR, VESSELS = 0.72, 0.40


def _rng(seed: int, stream: int) -> np.random.Generator:
    """A NumPy generator for one of several independent streams of one (possibly 64-bit) seed."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"phantom seed: expected a non-negative integer, got {seed}")
    return np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32, stream])


def draw_findings(rng: np.random.Generator, prevalence: dict[str, float]) -> dict[str, bool]:
    """Independent findings (multi-label), one uniform draw per finding in FINDINGS order."""
    return {name: bool(rng.random() < prevalence.get(name, 0.0)) for name in FINDINGS}


def generate(
    seed: int,
    config: PhantomConfig | None = None,
    size: int | None = None,
    *,
    patient_seed: int | None = None,
) -> PhantomSample:
    """One phantom radiograph with its ground truth; the same arguments always give the same bytes.

    ``seed`` draws everything about this image. ``patient_seed`` (default ``seed``) draws the anatomy
    alone: images that share it are follow-ups of one patient (same body, new pose, exposure and
    findings). ``size`` overrides ``config.size``.
    """
    config = config or PhantomConfig()
    if size is not None:
        config = dataclasses.replace(config, size=int(size))
    patient_seed = seed if patient_seed is None else patient_seed
    visit, anatomy_rng = _rng(seed, 1), _rng(patient_seed, 2)
    findings = draw_findings(visit, config.prevalence)
    # the cardiothoracic ratio sets the heart width: normal below 0.5, cardiomegaly clearly above.
    # Both are drawn always, so that a finding never reshuffles the rest of the image.
    normal_ctr, enlarged_ctr = anatomy_rng.uniform(0.38, 0.48), visit.uniform(0.55, 0.66)
    ctr = enlarged_ctr if findings["cardiomegaly"] else normal_ctr
    p = Patient.draw(anatomy_rng, visit, ctr, config.variation)
    frame = Frame(config.size, p.angle, p.shift, p.scale)
    anatomy = Anatomy(p, frame, config.n_rib_pairs)
    masks, bone = _masks_and_bones(anatomy, config)
    atten, parts = _attenuation(anatomy, masks, bone, config)
    finding_masks = _add_findings(anatomy, findings, masks, atten, parts, visit, config)
    image = _expose(atten, p, config)
    landmarks = {name: tuple(map(float, frame.to_pixels(uv))) for name, uv in anatomy.landmarks().items()}
    return PhantomSample(
        image=image,
        masks=masks,
        landmarks={name: landmarks[name] for name in LANDMARKS},
        findings=findings,
        finding_masks=finding_masks,
        patient_id=int(patient_seed),
        extra_masks=parts["extra_masks"],
        info={"cardiothoracic_ratio": cardiothoracic_ratio(masks)},
    )


def _masks_and_bones(anatomy: Anatomy, config: PhantomConfig):
    """Ground-truth masks, and the summed bone profile of the clavicles and ribs."""
    n = config.size
    (right_lung, left_lung), heart = anatomy.lung_masks()
    masks = {"right_lung": right_lung, "left_lung": left_lung, "heart": heart}
    bone = np.zeros((n, n), np.float32)
    for side, name in ((RIGHT, "right_clavicle"), (LEFT, "left_clavicle")):
        mask, soft, window = anatomy.clavicle(side)
        masks[name] = _paste(mask, window, n)
        bone[window] += 2.2 * soft
    for side, side_name in ((RIGHT, "right"), (LEFT, "left")):
        rib_masks, softs, windows = anatomy.ribs(side)
        for level, (mask, soft, window) in enumerate(zip(rib_masks, softs, windows), start=1):
            masks[f"rib_{side_name}_{level}"] = _paste(mask, window, n)
            bone[window] += soft
        if config.extras:
            softs, windows = anatomy.anterior_ribs(side)
            for soft, window in zip(softs, windows):
                bone[window] += 0.45 * soft
    return masks, bone


def _paste(window_mask: np.ndarray, window, n: int) -> np.ndarray:
    full = np.zeros((n, n), bool)
    full[window] = window_mask
    return full


def _attenuation(anatomy: Anatomy, masks, bone, config: PhantomConfig):
    """The attenuation map of the normal chest, and the parts the findings need."""
    p, u, v = anatomy.p, anatomy.u, anatomy.v
    n = config.size
    edge = 1.5 / (n * p.scale)  # soft edges about a pixel wide, in canonical units
    body = anatomy.body_depth()
    heart_inside = smoothstep(-anatomy.heart_distance() / edge)
    air = np.zeros_like(u)
    for side in (RIGHT, LEFT):
        inside = smoothstep(-anatomy.hemithorax_distance(side) / edge)
        air += inside * anatomy.lung_depth(side)
    air *= 1.0 - heart_inside  # the heart displaces the lungs
    spine, spine_mask = anatomy.spine()
    trachea = ellipse_depth(u, v, 0.5, p.carina_v - 0.5, p.trachea_half_width, 0.5)
    for sign in (-1, 1):  # the main bronchi leave the carina obliquely
        bronchus = ellipse_depth(
            u, v, 0.5 + sign * 0.035, p.carina_v + 0.028, 0.045, 0.8 * p.trachea_half_width, sign * 0.65
        )
        trachea = np.maximum(trachea, bronchus)
    tex = _rng(p.texture_seed, 3)
    vessels = _lung_markings(anatomy, tex) * float(config.texture)
    markings = VESSELS * vessels * np.clip(air * 2.5, 0.0, 1.0)  # vessels show only against aerated lung
    hila = sum(ellipse_depth(u, v, *anatomy.hilum(side), 0.035, 0.05) for side in (RIGHT, LEFT))

    atten = (
        body
        - AIR * air
        + 0.12 * anatomy.heart_depth() * heart_inside
        + 0.35 * spine * (body > 0)
        + 0.16 * bone
        - 0.12 * trachea
        + 0.10 * hila
        + markings
        + 0.035 * float(config.texture) * _smooth_texture(tex, u, v) * body
    )
    if config.extras:
        atten += _extras(anatomy, body)
    extra_masks = {
        "body": body > 0,
        "spine": spine_mask,
        "trachea": trachea > 0,
        "mediastinum": (np.abs(u - 0.5) <= anatomy.mediastinum_half_width(v))
        & (v < anatomy.diaphragm(u))
        & (body > 0),
    }
    return atten.astype(np.float32), {"air": air, "markings": markings, "extra_masks": extra_masks}


def _extras(anatomy: Anatomy, body) -> np.ndarray:
    """Bones and soft tissue without masks that make the picture read as a chest."""
    p, u, v = anatomy.p, anatomy.u, anatomy.v
    out = np.zeros_like(u)
    for side in (RIGHT, LEFT):
        sign = side_sign(side)
        # scapula: a thin plate over the upper lateral chest wall
        su = 0.5 + sign * (p.lung_center_offset + p.lung_half_width * 0.95)
        out += 0.08 * ellipse_depth(u, v, su, p.apex_v + 0.15, 0.06, 0.15, sign * 0.3)
        # humeral head at the shoulder
        out += 0.3 * ellipse_depth(
            u, v, 0.5 + sign * (p.body_half_width - 0.04), p.clavicle_v - 0.03, 0.06, 0.07
        )
        # breast shadow over the lower lung field
        if p.breast > 0:
            bu = 0.5 + sign * (p.lung_center_offset + 0.04)
            out += 0.22 * p.breast * ellipse_depth(u, v, bu, p.dome_v[side] - 0.03, 0.2, 0.13) ** 0.5
    if p.gastric_bubble > 0:  # air in the stomach's fundus, under the left dome
        gu, gv = anatomy.dome_top_u(LEFT) + 0.03, p.dome_v[LEFT] + 0.06
        out -= 0.35 * ellipse_depth(u, v, gu, gv, 0.06 * p.gastric_bubble, 0.035 * p.gastric_bubble)
    return out * (body > 0)


def _lung_markings(anatomy: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """Pulmonary vessels: a branching tree from each hilum, thick centrally, fine at the periphery."""
    frame, n = anatomy.frame, anatomy.frame.size
    hila = [anatomy.hilum(side) for side in (RIGHT, LEFT)]
    points, weights, generation = _vessel_trees(rng, hila, n_steps=max(6, int(0.07 * n)))
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


def _vessel_trees(rng: np.random.Generator, hila, n_steps: int, generations: int = 6, n_trunks: int = 6):
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


def _smooth_texture(rng: np.random.Generator, u, v, n_waves: int = 6, max_freq: float = 5.0) -> np.ndarray:
    """Low-frequency texture (overlapping soft tissue): a few random plane waves."""
    out = np.zeros_like(u)
    for _ in range(n_waves):
        fu, fv = (float(f) for f in rng.uniform(-max_freq, max_freq, 2) * 2 * np.pi)
        out += np.cos(fu * u + fv * v + float(rng.uniform(0, 2 * np.pi)))
    return out / math.sqrt(n_waves)


def _add_findings(anatomy: Anatomy, findings, masks, atten, parts, rng, config: PhantomConfig):
    """Draw the present findings into ``atten`` (in place) and return their masks."""
    p, u, v = anatomy.p, anatomy.u, anatomy.v
    lungs = (masks["right_lung"], masks["left_lung"])
    out: dict[str, np.ndarray] = {}
    # the random draws happen whether or not a finding is present, so a finding does not reshuffle the others
    eff_side, eff_height = int(rng.integers(2)), float(rng.uniform(0.06, 0.2))
    nod_side, nod_radius, nod_candidates = (
        int(rng.integers(2)),
        float(rng.uniform(0.014, 0.03)),
        rng.random((32, 2)),
    )
    ptx_side, ptx_collapse = int(rng.integers(2)), float(rng.uniform(0.72, 0.88))

    if findings["effusion"]:
        side, sign = eff_side, side_sign(eff_side)
        lateral = np.clip((u - anatomy.side_u(side)) * sign / p.lung_half_width, 0.0, 1.0)
        # a meniscus: the fluid climbs along the chest wall, so the costophrenic angle is blunted
        meniscus = p.dome_v[side] + p.dome_depth * 0.5 - eff_height - 0.12 * lateral**2
        cavity = anatomy.hemithorax_distance(side) <= 0
        out["effusion"] = cavity & ~masks["heart"] & (v >= meniscus)
        fade = smoothstep((v - meniscus) / 0.025) * cavity
        # fluid replaces air and hides the lung markings behind it
        atten += fade * (AIR * parts["air"] + 0.06 * (1 - masks["heart"]) - parts["markings"])
    if findings["nodule"]:
        side = nod_side
        lung = lungs[side]
        ys, xs = np.nonzero(lung)
        u0, u1, v0, v1 = u[ys, xs].min(), u[ys, xs].max(), v[ys, xs].min(), v[ys, xs].max()
        cand_u = u0 + (u1 - u0) * nod_candidates[:, 0]
        cand_v = v0 + (v1 - v0) * (0.15 + 0.7 * nod_candidates[:, 1])
        depth_inside = -np.maximum(
            anatomy.hemithorax_distance(side, cand_u, cand_v), -anatomy.heart_distance(cand_u, cand_v)
        )
        ok = np.nonzero(depth_inside > 2.0 * nod_radius)[0]
        k = ok[0] if len(ok) else int(np.argmax(depth_inside))
        blob = ellipse_depth(u, v, float(cand_u[k]), float(cand_v[k]), nod_radius, nod_radius * 0.9)
        out["nodule"] = (blob > 0) & lung
        atten += 0.32 * np.sqrt(blob)
    if findings["pneumothorax"]:
        side, k = ptx_side, ptx_collapse
        hu, hv = anatomy.hilum(side)
        # the collapsed lung is the normal lung shrunk towards its hilum; pleural air lies around it
        d_collapsed = anatomy.hemithorax_distance(side, hu + (u - hu) / k, hv + (v - hv) / k) * k
        above_base = v < p.dome_v[side] - 0.04
        if "effusion" in out:
            above_base &= ~out["effusion"]  # the air rises above the fluid
        # the air collects at the apex and along the lateral chest wall (the patient stands)
        lateral = ((u - hu) * side_sign(side) > 0.5 * p.lung_half_width) & (v < 0.5 * (hv + p.dome_v[side]))
        rim = lungs[side] & (d_collapsed > 0) & above_base & ((v < hv) | lateral)
        out["pneumothorax"] = rim
        pleural_line = np.exp(-((d_collapsed / 0.0035) ** 2)) * (
            lungs[side] & above_base & ((v < hv) | lateral)
        )
        atten -= rim * (0.08 + parts["markings"])  # more air, no lung markings
        atten += 0.12 * pleural_line
    return out


def _expose(atten: np.ndarray, p: Patient, config: PhantomConfig) -> np.ndarray:
    """Attenuation -> displayed grey: exposure curve, gamma, blur, detector noise."""
    n = config.size
    grey = 1.0 - np.exp(-1.3 * p.contrast * np.clip(atten, 0.0, None) / p.exposure)
    grey = (np.clip(grey, 0.0, 1.0) ** (1.25 * p.gamma)).astype(np.float32)
    sigma = p.blur_px * n / 256.0
    # quantum noise: stronger where fewer photons arrive (bright = attenuated)
    noise = _rng(p.texture_seed, 4).standard_normal((n, n), dtype=np.float32)
    noise *= float(config.noise) * p.noise_std * (0.5 + 0.5 * np.sqrt(1.0 - grey))
    if n > 160:
        # large images: blur image and noise together, so the grain spans a few pixels like a
        # detector's; 2 sqrt(pi) sigma undoes the blur's damping of white noise
        return np.clip(
            ndimage.gaussian_filter(grey + 2.0 * math.sqrt(math.pi) * sigma * noise, sigma), 0.0, 1.0
        )
    return np.clip(ndimage.gaussian_filter(grey, sigma) + noise, 0.0, 1.0)


def cardiothoracic_ratio(masks: dict[str, np.ndarray]) -> float:
    """Maximal heart width over maximal internal thoracic width (outer lung edges), from masks."""
    heart_cols = np.nonzero(masks["heart"].any(0))[0]
    lung_cols = np.nonzero((masks["right_lung"] | masks["left_lung"]).any(0))[0]
    if len(heart_cols) == 0 or len(lung_cols) == 0:
        return float("nan")
    return float((heart_cols[-1] - heart_cols[0] + 1) / (lung_cols[-1] - lung_cols[0] + 1))
