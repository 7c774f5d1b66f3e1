"""Locality: the same anatomical structure in different patients should embed close together.

Patches are cut around the 10 landmarks of the paper (phantom ground truth, or a landmark file for real
images) and embedded with an encoder. The paper embeds a patch around each landmark and shows a t-SNE
map coloured by landmark; it does not publish the patch size nor any number. The kit keeps the t-SNE
map and adds, computed by :mod:`edenkit.analysis.identification` for every encoder and for every
reference of :mod:`edenkit.analysis.baselines` (floors: raw pixels, a 4 x 4 thumbnail, random init;
ceiling: a small supervised CNN) on the same patches:

- kNN landmark identification with patients held out (GroupKFold), dense references;
- few-reference identification: nearest centroid with 1, 3 and 10 reference patients;
- the silhouette of the landmark clusters.

The paper embeds "a patch around each landmark" and does not publish its size. Patch size and jitter
(the random shift of each patch centre, uniform up to ``jitter`` pixels per axis) decide how much a
position prior alone answers, so both are parameters, and the defaults (:data:`DEFAULT_PATCH_FRACTION`,
:data:`DEFAULT_JITTER_FRACTION` of the image side) come from the sensitivity sweep
:func:`patch_sensitivity`. Measured on 24 phantoms of 128 px (seed 0, k = 5, input 64 px, 1 thread;
nearest centroid with 3 reference patients over 3 trials; ceiling: the small CNN, 200 steps):

=====  ======  ==========  ===========  ===========  ============  =========
patch  jitter  raw kNN     thumb kNN    random kNN   ceiling kNN   thumb c-3
=====  ======  ==========  ===========  ===========  ============  =========
16     0       0.983       0.979        0.979        0.983         0.949
16     4       0.858       0.892        0.812        0.858         0.624
16     8       0.575       0.625        0.613        0.675         0.395
16     16      0.425       0.438        0.362        0.412         0.225
24     0       0.971       0.967        0.963        0.988         0.925
24     4       0.921       0.946        0.912        0.954         0.729
24     8       0.750       0.754        0.717        0.762         0.484
24     16      0.475       0.508        0.400        0.542         0.308
32     0       0.983       0.979        0.992        0.983         0.943
32     4       0.938       0.933        0.933        0.933         0.835
32     8       0.846       0.838        0.817        0.858         0.578
32     16      0.554       0.596        0.475        0.604         0.376
=====  ======  ==========  ===========  ===========  ============  =========

Without jitter every floor identifies the phantom's exact landmarks almost perfectly; with jitter the
4 x 4 thumbnail stays level with raw pixels and a random init, and the supervised ceiling is never
clearly above it (at most +0.05, about the sampling error of 240 patches): on the phantom, landmark
identity is carried by the coarse layout around a point. The defaults take the setting with the largest
measured headroom, 16-px patches with jitter 8 at 128 px (1/8 and 1/16 of the image side), where the
floors sit mid-range (kNN 0.58-0.63, 3-reference centroid 0.38-0.40), neither saturated nor at chance.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from sklearn.manifold import TSNE

from edenkit.analysis.baselines import CEILING, FLOORS, locality_references
from edenkit.analysis.embeddings import embed, load_encoder
from edenkit.analysis.identification import (
    N_REFERENCES,
    identification_scores,
    knn_accuracy,  # noqa: F401  (re-exported: the kNN score is part of this analysis' public face)
    silhouette,  # noqa: F401
)
from edenkit.checkpoint import add_encoder_arguments, detect_arch, parse_encoder_specs, resolve_encoder
from edenkit.data.formats import read_grey, resize_image
from edenkit.files import atomic_write_json
from edenkit.phantom import LANDMARKS, PhantomConfig, PhantomDataset, add_version_argument

#: Default patch side and maximum jitter as fractions of the image side (see the sweep in the docstring).
DEFAULT_PATCH_FRACTION = 0.125
DEFAULT_JITTER_FRACTION = 0.0625


def default_patch_and_jitter(image_size: int, patch_size: int | None = None,
                             jitter: float | None = None) -> tuple[int, float]:
    """``(patch_size, jitter)`` in pixels: the given values, or the defaults scaled to ``image_size``."""
    if patch_size is None:
        patch_size = max(4, round(DEFAULT_PATCH_FRACTION * image_size))
    if jitter is None:
        jitter = DEFAULT_JITTER_FRACTION * image_size
    return int(patch_size), float(jitter)


def landmark_patches(images: torch.Tensor, landmarks: torch.Tensor, patch_size: int,
                     groups: Sequence | None = None, jitter: float = 0.0, seed: int = 0):
    """Square patches centred on every landmark of every image.

    ``images`` [N, 1, H, W], ``landmarks`` [N, L, 2] as (x, y) pixels; ``groups`` the patient of each
    image (default: one patient per image). ``jitter`` shifts each centre by up to that many pixels per
    axis (uniform, seeded): annotated landmarks on real images scatter by a few pixels, and without it
    the phantom's exact landmarks make identification trivial even for raw pixels. Patches reaching past
    the border are zero-padded. Returns ``(patches [N*L, 1, p, p], labels [N*L] landmark index,
    groups [N*L])``, image-major.
    """
    if images.ndim != 4 or landmarks.ndim != 3 or landmarks.shape[-1] != 2 or len(images) != len(landmarks):
        raise ValueError(f"expected images [N,1,H,W] and landmarks [N,L,2]; got {tuple(images.shape)} "
                         f"and {tuple(landmarks.shape)}")
    groups = np.arange(len(images)) if groups is None else np.asarray(groups)
    if jitter:
        shift = torch.rand(landmarks.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        landmarks = landmarks + jitter * shift
    patches, labels, patch_groups = [], [], []
    half = patch_size / 2
    for image, points, group in zip(images, landmarks, groups):
        for index, (x, y) in enumerate(points.tolist()):
            top, left = int(round(y - half)), int(round(x - half))
            patches.append(TF.crop(image, top, left, patch_size, patch_size))  # zero-pads outside
            labels.append(index)
            patch_groups.append(group)
    return torch.stack(patches), np.asarray(labels), np.asarray(patch_groups)


def tsne_2d(embeddings: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of L2-normalized embeddings (so that distances are cosine-like), seeded."""
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(min=1e-12)
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def locality_report(encoder: torch.nn.Module, images: torch.Tensor, landmarks: torch.Tensor, groups=None,
                    patch_size: int = 32, input_size: int | None = 64, jitter: float = 0.0, k: int = 5,
                    n_splits: int = 5, seed: int = 0, with_tsne: bool = True,
                    n_references: Sequence[int] = N_REFERENCES, trials: int = 5) -> dict:
    """One encoder: embeddings of the landmark patches, kNN accuracy, nearest-centroid accuracy with
    ``n_references`` reference patients, silhouette and (optionally) the t-SNE map."""
    patches, labels, patch_groups = landmark_patches(images, landmarks, patch_size, groups, jitter, seed)
    emb = embed(encoder, patches, input_size)
    scores = identification_scores(emb, labels, patch_groups, k, n_splits, n_references, trials, seed)
    report = {
        "knn_accuracy": scores["knn"], "silhouette": scores["silhouette"], "centroid": scores["centroid"],
        "chance": 1.0 / landmarks.shape[1],
        "n_patches": len(labels), "n_patients": int(len(np.unique(patch_groups))),
        "labels": labels, "groups": patch_groups, "embeddings": emb,
    }
    if with_tsne:
        report["tsne"] = tsne_2d(emb, seed)
    return report


def locality_floors_and_ceiling(images: torch.Tensor, landmarks: torch.Tensor, groups, arch: str,
                                patch_size: int = 32, input_size: int | None = 64, jitter: float = 0.0, k: int = 5,
                                n_splits: int = 5, seed: int = 0, n_references: Sequence[int] = N_REFERENCES,
                                trials: int = 5, ceiling_steps: int = 300,
                                ceiling_references: Sequence[int] | None = None) -> dict:
    """:func:`edenkit.analysis.baselines.locality_references` on exactly the patches
    :func:`locality_report` cuts with the same arguments (same centres, same jitter)."""
    patches, labels, patch_groups = landmark_patches(images, landmarks, patch_size, groups, jitter, seed)
    return locality_references(patches, labels, patch_groups, arch, input_size, k, n_splits, n_references, trials,
                               seed, ceiling_steps, ceiling_references)


def reference_rows(references: dict) -> dict[str, dict]:
    """``{name: {"kind": "floor"|"ceiling", "knn", "silhouette", "centroid"}}`` in the order floors, ceiling."""
    rows = {name: {"kind": "floor", **scores} for name, scores in references["floors"].items()}
    rows.update({name: {"kind": "ceiling", **scores} for name, scores in references["ceiling"].items()})
    return rows


def patch_sensitivity(images: torch.Tensor, landmarks: torch.Tensor, groups, patch_sizes: Sequence[int],
                      jitters: Sequence[float], arch: str = "resnet18", input_size: int | None = 64, k: int = 5,
                      n_references: Sequence[int] = (3,), trials: int = 3, seed: int = 0,
                      ceiling_steps: int = 200) -> list[dict]:
    """The floors and the ceiling for every (patch size, jitter): how much the setting alone decides.

    One row per setting: ``{"patch_size", "jitter", "<reference>_knn", "<reference>_centroid<n>"}`` and
    ``"headroom_knn"`` = ceiling minus the highest floor under the dense protocol (the room an encoder has
    to show that it learned more than a position prior). To keep the sweep affordable the ceiling is
    trained for the dense protocol only.
    """
    rows = []
    for patch_size in patch_sizes:
        for jitter in jitters:
            refs = locality_floors_and_ceiling(images, landmarks, groups, arch, patch_size, input_size, jitter, k,
                                               seed=seed, n_references=n_references, trials=trials,
                                               ceiling_steps=ceiling_steps, ceiling_references=())
            row: dict = {"patch_size": patch_size, "jitter": jitter}
            for name, scores in reference_rows(refs).items():
                row[f"{name}_knn"] = scores["knn"]
                row.update({f"{name}_centroid{n}": s["mean"] for n, s in scores["centroid"].items()})
            row["headroom_knn"] = row[f"{CEILING}_knn"] - max(row[f"{f}_knn"] for f in FLOORS)
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------------
# Data: phantom ground truth or a landmark file for real images
# ----------------------------------------------------------------------------------------------------


def phantom_landmark_data(n: int, size: int, seed: int = 0, version: int = 1):
    """``(images [n,1,H,W], landmarks [n,10,2], patient ids)`` from the phantom's ground truth."""
    dataset = PhantomDataset(n, size=size, seed=seed, config=PhantomConfig(version=version))
    items = [dataset[i] for i in range(n)]
    return (torch.stack([it["image"] for it in items]), torch.stack([it["landmarks"] for it in items]),
            np.asarray([it["patient_id"] for it in items]))


def read_landmark_file(path: str | Path, size: int, landmark_names: Sequence[str] | None = None):
    """Images and landmarks from a CSV with columns ``image,patient_id,landmark,x,y`` (one row per landmark).

    ``image`` is a path relative to the CSV's folder; x, y are pixels of the original image and are
    scaled with it to ``size`` x ``size``. Every image must have every landmark of ``landmark_names``
    (default: the paper's 10, in the paper's order).
    """
    path = Path(path)
    names = tuple(landmark_names or LANDMARKS)
    rows: dict[str, dict] = {}
    try:
        with path.open(newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    entry = rows.setdefault(row["image"], {"patient": row["patient_id"], "points": {}})
                    entry["points"][row["landmark"]] = (float(row["x"]), float(row["y"]))
                except (KeyError, TypeError, ValueError) as e:
                    raise ValueError(f"{path}:{line}: expected columns image,patient_id,landmark,x,y ({e})") from e
    except FileNotFoundError as e:
        raise FileNotFoundError(f"landmark file not found: {path}") from e
    images, points, patients = [], [], []
    for image_name, entry in rows.items():
        missing = [n for n in names if n not in entry["points"]]
        if missing:
            raise ValueError(f"{path}: image {image_name} lacks landmarks {missing}")
        grey = read_grey(path.parent / image_name)
        height, width = grey.shape[-2:]
        images.append(resize_image(grey, size))
        points.append([(x * size / width, y * size / height) for x, y in (entry["points"][n] for n in names)])
        patients.append(entry["patient"])
    return torch.stack(images), torch.tensor(points, dtype=torch.float32), np.asarray(patients)


# ----------------------------------------------------------------------------------------------------
# CLI: python -m edenkit locality
# ----------------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    add_encoder_arguments(parser)
    parser.add_argument("--landmarks", default=None, help="CSV image,patient_id,landmark,x,y (default: phantom)")
    parser.add_argument("--n", type=int, default=100, help="phantom images")
    add_version_argument(parser)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--patch-size", type=int, default=None,
                        help=f"pixels (default: {DEFAULT_PATCH_FRACTION:g} of --size, from the sensitivity sweep)")
    parser.add_argument("--input-size", type=int, default=64, help="patches are resized to this before embedding")
    parser.add_argument("--jitter", type=float, default=None,
                        help=f"max shift of a patch centre, pixels (default: {DEFAULT_JITTER_FRACTION:g} of --size)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--n-references", type=int, nargs="+", default=list(N_REFERENCES),
                        help="reference patients of the nearest-centroid identification")
    parser.add_argument("--trials", type=int, default=5, help="draws of reference patients")
    parser.add_argument("--ceiling-steps", type=int, default=300,
                        help="training steps of the supervised ceiling (0: no ceiling)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="JSON file to write")


def _line(name: str, scores: dict) -> str:
    centroid = ", ".join(f"{n} ref {s['mean']:.3f}" for n, s in scores["centroid"].items())
    sil = "" if scores.get("silhouette") is None else f", silhouette {scores['silhouette']:.3f}"
    return f"  {name:16s} kNN {scores['knn']:.3f}; nearest centroid: {centroid}{sil}"


def run(args) -> int:
    if args.landmarks:
        images, landmarks, groups = read_landmark_file(args.landmarks, args.size)
    else:
        images, landmarks, groups = phantom_landmark_data(args.n, args.size, args.seed, args.phantom_version)
    patch_size, jitter = default_patch_and_jitter(args.size, args.patch_size, args.jitter)
    states = {name: resolve_encoder(spec, args.arch, args.seed) for name, spec in parse_encoder_specs(args.encoder).items()}
    arch = detect_arch(next(iter(states.values())))
    common = {"patch_size": patch_size, "input_size": args.input_size, "jitter": jitter, "k": args.k,
              "seed": args.seed, "n_references": args.n_references, "trials": args.trials}
    references = locality_floors_and_ceiling(images, landmarks, groups, arch, ceiling_steps=args.ceiling_steps,
                                             **common)
    data = args.landmarks or f"phantom v{args.phantom_version}"
    results = {"data": data, "n_images": len(images), **common, "arch": arch,
               "chance": references["chance"], "floors": references["floors"], "ceiling": references["ceiling"],
               "methods": {}}
    print(f"references (chance {references['chance']:.2f}):")
    for name, scores in reference_rows(references).items():
        print(_line(f"{scores['kind']}: {name}", scores))
    for name, state in states.items():
        report = locality_report(load_encoder(state), images, landmarks, groups, with_tsne=False, **common)
        results["methods"][name] = {key: report[key] for key in ("knn_accuracy", "silhouette", "centroid",
                                                                 "n_patches", "n_patients")}
        print(_line(name, {"knn": report["knn_accuracy"], **report}))
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0
