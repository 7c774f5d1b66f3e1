"""One phantom radiograph from its anatomy: masks, attenuation and grey, for phantom v1 and v2.

v1 (``render_v1``) is the original phantom, kept bit for bit. v2 (``render_v2``) draws a patient
from the wider population, deforms the body smoothly, and adds per-patient texture fields, vessel
trees, devices and exposure physics, each scaled by its ``PhantomConfig`` switch (0 = off). The
steps, for both: shapes -> masks and landmarks; shapes -> attenuation (soft tissue, minus lung
air, plus heart, bones, vessels, findings); attenuation -> grey (``edenkit.phantom.exposure``).

Random streams: every factor draws from its own stream of the image seed (visit) or the patient
seed (anatomy), so switching one factor off changes nothing else.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from edenkit.phantom.anatomy import AIR, VESSELS, Anatomy
from edenkit.phantom.deformation import Deformation
from edenkit.phantom.devices import device_layer
from edenkit.phantom.exposure import draw_acquisition, expose_v1, expose_v2
from edenkit.phantom.findings import add_findings
from edenkit.phantom.geometry import LEFT, RIGHT, Frame, ellipse_depth, side_sign, smoothstep
from edenkit.phantom.patient import Patient, rng_stream
from edenkit.phantom.texture import BodyRaster, random_fields, raster_size, smooth_texture
from edenkit.phantom.vessels import lung_markings_v1, vessel_layer

DEFORMATION = 0.03  # v2's largest displacement of the body, canonical units (before the switch)
REGIONAL_TEXTURE = 2.5  # v2: extra gain of the soft-tissue texture outside the aerated lung (before the switch)


def draw_findings(rng: np.random.Generator, prevalence: dict[str, float], names) -> dict[str, bool]:
    """Independent findings (multi-label), one uniform draw per finding in ``names`` order."""
    return {name: bool(rng.random() < prevalence.get(name, 0.0)) for name in names}


def _heart_ratio(anatomy_rng, visit, findings, normal=(0.38, 0.48)) -> float:
    # the cardiothoracic ratio sets the heart width: normal below 0.5, cardiomegaly clearly above.
    # Both are drawn always, so that a finding never reshuffles the rest of the image.
    normal_ctr, enlarged_ctr = anatomy_rng.uniform(*normal), visit.uniform(0.55, 0.66)
    return enlarged_ctr if findings["cardiomegaly"] else normal_ctr


def render_v1(seed: int, patient_seed: int, config, finding_names):
    """v1: (image, masks, frame, anatomy, findings, finding masks, parts)."""
    visit, anatomy_rng = rng_stream(seed, 1), rng_stream(patient_seed, 2)
    findings = draw_findings(visit, config.prevalence, finding_names)
    ctr = _heart_ratio(anatomy_rng, visit, findings)
    p = Patient.draw(anatomy_rng, visit, ctr, config.variation)
    frame = Frame(config.size, p.angle, p.shift, p.scale)
    anatomy = Anatomy(p, frame, config.n_rib_pairs)
    masks, bone = masks_and_bones(anatomy, config)
    atten, parts = attenuation(anatomy, masks, bone, config)
    finding_masks = add_findings(anatomy, findings, masks, atten, parts, visit)
    white = rng_stream(p.texture_seed, 4).standard_normal((config.size, config.size), dtype=np.float32)
    image = expose_v1(atten, p, config, white)
    return image, masks, anatomy, findings, finding_masks, parts


def render_v2(seed: int, patient_seed: int, config, finding_names):
    """v2: as :func:`render_v1`, with the new factors; ``parts["devices"]`` names the devices drawn."""
    n = config.size
    visit, anatomy_rng = rng_stream(seed, 1), rng_stream(patient_seed, 2)
    findings = draw_findings(visit, config.prevalence, finding_names)
    # v2's outline and wider pose measure a little narrower than the drawn ratio: start at 0.40
    ctr = _heart_ratio(anatomy_rng, visit, findings, normal=(0.40, 0.48))
    streams = SimpleNamespace(
        anatomy=anatomy_rng, visit=visit, ribs=rng_stream(patient_seed, 11), heart=rng_stream(patient_seed, 12)
    )
    p = Patient.draw_v2(streams, ctr, config)
    amount = DEFORMATION * float(config.deformation) * float(config.variation)
    deformation = Deformation(rng_stream(patient_seed, 13), amount) if amount > 0 else None
    frame = Frame(n, p.angle, p.shift, p.scale, deformation)
    anatomy = Anatomy(p, frame, config.n_rib_pairs)
    masks, bone = masks_and_bones(anatomy, config)
    raster = BodyRaster(raster_size(n), frame.u, frame.v)
    hila = [anatomy.hilum(side) for side in (RIGHT, LEFT)]
    vessels, contrast = vessel_layer(rng_stream(patient_seed, 15), raster, hila, float(config.vessel_variation))
    fields = random_fields(rng_stream(patient_seed, 14), raster.size, float(config.body_texture))
    soft = raster.sample(fields["soft_tissue"]) if config.body_texture > 0 else np.zeros_like(frame.u)
    layers = {"vessels": raster.sample(vessels), "contrast": contrast, "soft": soft,
              "soft_gain": REGIONAL_TEXTURE * float(config.regional_texture)}
    atten, parts = attenuation(anatomy, masks, bone, config, layers)
    if config.body_texture > 0:
        texture = float(config.texture)
        atten += texture * raster.sample(fields["parenchyma"]) * parts["air"]
        atten += texture * raster.sample(fields["bone"]) * (0.16 * bone + 0.35 * parts["spine"] * (parts["body"] > 0))
    devices, names = device_layer(
        rng_stream(patient_seed, 16), rng_stream(seed, 17), raster, anatomy, float(config.devices)
    )
    if names:
        atten += raster.sample(devices)
    parts["devices"] = names
    finding_masks = add_findings(anatomy, findings, masks, atten, parts, visit)
    acquisition = draw_acquisition(rng_stream(seed, 18), float(config.exposure_physics), float(config.devices))
    white = rng_stream(seed, 19).standard_normal((n, n), dtype=np.float32)
    image = expose_v2(atten, p, config, white, acquisition)
    # the exposed field: pixels outside it are the collimator's unexposed (bright) border
    top, bottom, left, right = (int(round(m * n)) for m in acquisition["collimation"])
    exposed = np.zeros((n, n), bool)
    exposed[top : n - bottom, left : n - right] = True
    parts["extra_masks"]["exposed"] = exposed
    return image, masks, anatomy, findings, finding_masks, parts


def masks_and_bones(anatomy: Anatomy, config):
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



def attenuation(anatomy: Anatomy, masks, bone, config, layers: dict | None = None):
    """The attenuation map of the normal chest, and the parts the findings need.

    ``layers`` (v2) brings the body-raster layers sampled at the pixels: ``vessels`` and their
    ``contrast``, ``soft`` tissue texture; without it v1's markings and plane-wave texture are drawn."""
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
    if layers is None:  # v1: one visit-level stream draws the vessel tree, then the texture
        tex = rng_stream(p.texture_seed, 3)
        vessels = lung_markings_v1(anatomy, tex) * float(config.texture)
        contrast = VESSELS
    else:
        vessels, contrast = layers["vessels"] * float(config.texture), layers["contrast"]
    markings = contrast * vessels * np.clip(air * 2.5, 0.0, 1.0)  # vessels show only against aerated lung
    hila = sum(ellipse_depth(u, v, *anatomy.hilum(side), 0.035, 0.05) for side in (RIGHT, LEFT))
    if layers is None:
        soft = 0.035 * float(config.texture) * smooth_texture(tex, u, v)
    else:
        soft = float(config.texture) * regional_soft(layers["soft"], layers["soft_gain"], air, heart_inside, anatomy)

    atten = (
        body
        - AIR * air
        + 0.12 * anatomy.heart_depth() * heart_inside
        + 0.35 * spine * (body > 0)
        + 0.16 * bone
        - 0.12 * trachea
        + 0.10 * hila
        + markings
        + soft * body
    )
    if config.extras:
        atten += extras(anatomy, body)
    extra_masks = {
        "body": body > 0,
        "spine": spine_mask,
        "trachea": trachea > 0,
        "mediastinum": (np.abs(u - 0.5) <= anatomy.mediastinum_half_width(v))
        & (v < anatomy.diaphragm(u))
        & (body > 0),
    }
    parts = {"air": air, "markings": markings, "extra_masks": extra_masks, "body": body, "spine": spine}
    return atten.astype(np.float32), parts


def regional_soft(soft, gain: float, air, heart_inside, anatomy: Anatomy) -> np.ndarray:
    """v2: the soft-tissue texture, up to ``1 + gain`` times stronger where no aerated lung lies in front.

    Outside the lungs a patient's fat, muscle and bowel differ far more than the lung's overlapping
    chest wall does, and that is what tells one patient's diaphragm, spine or clavicle from another's
    (the landmark floors, criterion A3 of edenkit.phantom.criteria). Inside the aerated lung the texture stays as it was, so the lungs do not look
    diseased; in the mediastinum and the heart only the denser half is amplified (lucent holes there
    would read as free air), while below the diaphragm and in the chest wall both halves are (lucencies
    there read as bowel gas and fat)."""
    if gain <= 0:
        return soft
    u, v = anatomy.u, anatomy.v
    central = (np.abs(u - 0.5) <= anatomy.mediastinum_half_width(v)) & (v < anatomy.diaphragm(u))
    central |= heart_inside > 0.3
    extra = np.where((soft > 0) | ~central, soft, np.float32(0.2) * soft)
    return (soft + gain * extra * (1.0 - np.clip(air * 2.5, 0.0, 1.0))).astype(np.float32)


def extras(anatomy: Anatomy, body) -> np.ndarray:
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

