"""A procedural chest-radiograph phantom that knows its own anatomy: its public face.

No real chest X-ray can ship with the kit, so it draws its own. Each image is one "patient" whose
anatomy (``edenkit.phantom.patient``, ``edenkit.phantom.anatomy``) is drawn from a seeded NumPy
generator and rasterized at any size from 64 to 1024 px (``edenkit.phantom.radiograph``). The image
follows a radiograph's physics, simplified:

1. shapes -> ground truth: masks (lungs, heart, clavicles, every posterior rib), the paper's ten
   landmarks, multi-label findings with masks for the focal ones;
2. shapes -> an attenuation map: soft-tissue thickness, minus the air in the lungs, plus heart and
   great vessels, bones (with a bright cortex), pulmonary vessels, findings;
3. attenuation -> grey (exposure, contrast, gamma), then a soft blur and detector noise.

Two versions (``PhantomConfig.version``). v1 is the original phantom, reproducible bit for bit: its
patients differ mainly in global pose and shape. v2 makes every patient an individual
at every scale: a smooth deformation of the body that masks and landmarks follow exactly, per-patient
texture fields, vessel trees, rib spacing and heart outline, devices, exposure physics and a wider
spread of pose, habitus and inspiration. Each v2 factor has its own switch in ``PhantomConfig``.
v1 stays the default until v2 meets every criterion of ``edenkit.phantom.criteria`` (it does not yet:
patient identity through the paper's augmentation, A2, misses).

Left/right are the patient's: the RIGHT lung is on the image's LEFT. Landmarks are pixel ``(x, y)``.
Images are float32 in [0, 1], bright = attenuating, as radiographs are displayed.

``python -m edenkit phantom generate|export|bench`` writes PNGs with overlays, exports the real
datasets' on-disk layouts (``edenkit.phantom.export``) or prints the generation rate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from edenkit.phantom import radiograph
from edenkit.phantom.patient import rng_stream as _rng  # noqa: F401  (the streams, re-exported for tests)

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


# v2's switches in PhantomConfig, in the order of the ablation
V2_FACTORS = (
    "deformation", "body_texture", "vessel_variation", "rib_variation", "heart_shape", "devices",
    "exposure_physics", "pose_spread", "regional_texture",
)


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
    version: int = 1  # 1 = the original phantom, bit for bit (the default); 2 = individuals at every scale
    # v2's factors, each 0 (off) .. 1 (default): ``version=2`` with all of them 0 is v1's population
    # drawn through v2's streams, which is what the ablation in notebook 01 starts from
    deformation: float = 1.0  # a smooth random deformation of the body (masks and landmarks follow)
    body_texture: float = 1.0  # per-patient texture fields: soft tissue, lung parenchyma, bone
    vessel_variation: float = 1.0  # per-patient vessel trees: topology, calibre, contrast
    rib_variation: float = 1.0  # cumulative rib spacing jitter, thickness and slope, anomalies
    heart_shape: float = 1.0  # a non-elliptic heart outline (ventricle, atrium, appendage bumps)
    devices: float = 1.0  # ECG leads, lines, tubes, pacemaker, clips; side markers, collimation
    exposure_physics: float = 1.0  # heel effect, unsharp masking, correlated noise, tone curve
    pose_spread: float = 1.0  # wider pose, habitus and inspiration-depth spread
    # stronger soft-tissue texture outside the aerated lung (abdomen, chest wall, mediastinum; acts on
    # body_texture's soft-tissue field, so it shows only with body_texture on)
    regional_texture: float = 1.0

    def __post_init__(self) -> None:
        if not 32 <= int(self.size) <= 2048:
            raise ValueError(f"PhantomConfig.size: expected 32..2048 pixels, got {self.size}")
        unknown = sorted(set(self.prevalence) - set(FINDINGS))
        if unknown:
            raise ValueError(f"PhantomConfig.prevalence: unknown finding {unknown[0]!r}; expected {FINDINGS}")
        for name, p in self.prevalence.items():
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"PhantomConfig.prevalence[{name!r}]: expected a probability, got {p}")
        if self.version not in (1, 2):
            raise ValueError(f"PhantomConfig.version: expected 1 or 2, got {self.version}")
        for name in V2_FACTORS:
            if not 0.0 <= float(getattr(self, name)) <= 2.0:
                raise ValueError(f"PhantomConfig.{name}: expected 0 (off) .. 1 (default) .. 2, got {getattr(self, name)}")
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
    extra_masks: dict[str, np.ndarray] = field(default_factory=dict)  # body, mediastinum, spine, trachea; v2: exposed
    info: dict = field(default_factory=dict)  # the measured cardiothoracic ratio; v2: the devices drawn




def draw_findings(rng: np.random.Generator, prevalence: dict[str, float]) -> dict[str, bool]:
    """Independent findings (multi-label), one uniform draw per finding in FINDINGS order."""
    return radiograph.draw_findings(rng, prevalence, FINDINGS)


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
    render = radiograph.render_v1 if config.version == 1 else radiograph.render_v2
    image, masks, anatomy, findings, finding_masks, parts = render(seed, patient_seed, config, FINDINGS)
    frame = anatomy.frame
    landmarks = {name: tuple(map(float, frame.to_pixels(uv))) for name, uv in anatomy.landmarks().items()}
    info = {"cardiothoracic_ratio": cardiothoracic_ratio(masks)}
    if "devices" in parts:
        info["devices"] = parts["devices"]
    return PhantomSample(
        image=image,
        masks=masks,
        landmarks={name: landmarks[name] for name in LANDMARKS},
        findings=findings,
        finding_masks=finding_masks,
        patient_id=int(patient_seed),
        extra_masks=parts["extra_masks"],
        info=info,
    )


def cardiothoracic_ratio(masks: dict[str, np.ndarray]) -> float:
    """Maximal heart width over maximal internal thoracic width (outer lung edges), from masks."""
    heart_cols = np.nonzero(masks["heart"].any(0))[0]
    lung_cols = np.nonzero((masks["right_lung"] | masks["left_lung"]).any(0))[0]
    if len(heart_cols) == 0 or len(lung_cols) == 0:
        return float("nan")
    return float((heart_cols[-1] - heart_cols[0] + 1) / (lung_cols[-1] - lung_cols[0] + 1))
