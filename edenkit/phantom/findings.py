"""Findings drawn into a phantom's attenuation map: pleural effusion, nodule, pneumothorax.

Cardiomegaly is a heart size (``generate`` draws the cardiothoracic ratio); the focal findings here
come with masks. Every random draw happens whether or not a finding is present, so turning one on
does not reshuffle the rest of the image.
"""

from __future__ import annotations

import numpy as np

from edenkit.phantom.anatomy import AIR, Anatomy
from edenkit.phantom.geometry import ellipse_depth, side_sign, smoothstep


def add_findings(anatomy: Anatomy, findings, masks, atten, parts, rng) -> dict[str, np.ndarray]:
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

