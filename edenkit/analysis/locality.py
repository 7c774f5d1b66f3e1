"""Locality: the same anatomical structure in different patients should embed close together.

Patches are cut around the 10 landmarks of METHOD.md (phantom ground truth, or a landmark file for
real images) and embedded with an encoder. The paper shows a t-SNE map coloured by landmark; the kit
adds two numbers so that methods can be compared without squinting:

- kNN landmark-identification accuracy: each patch is labelled by the majority landmark of its k
  nearest neighbours (cosine) among patches of OTHER patients only (GroupKFold over patients), so an
  encoder cannot score by recognising the patient instead of the anatomy;
- silhouette score of the landmark clusters (cosine), in [-1, 1].
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from sklearn.manifold import TSNE
from sklearn.metrics import accuracy_score, silhouette_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from edenkit.analysis.embeddings import embed, load_encoder
from edenkit.checkpoint import add_encoder_arguments, parse_encoder_specs, resolve_encoder
from edenkit.data.formats import read_grey, resize_image
from edenkit.phantom import LANDMARKS, PhantomDataset


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


def knn_accuracy(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int = 5,
                 n_splits: int = 5) -> float:
    """Cross-validated kNN accuracy (cosine) with patients held out: neighbours come from other folds."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError("knn_accuracy: need patches from at least 2 patients to hold patients out")
    splitter = GroupKFold(n_splits=min(n_splits, n_groups))
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine")
    predicted = cross_val_predict(knn, embeddings, labels, groups=groups, cv=splitter)
    return float(accuracy_score(labels, predicted))


def silhouette(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of the landmark clusters under cosine distance (1 = tight, separated clusters)."""
    return float(silhouette_score(embeddings, labels, metric="cosine"))


def tsne_2d(embeddings: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of L2-normalized embeddings (so that distances are cosine-like), seeded."""
    x = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(min=1e-12)
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def locality_report(encoder: torch.nn.Module, images: torch.Tensor, landmarks: torch.Tensor, groups=None,
                    patch_size: int = 32, input_size: int | None = 64, jitter: float = 0.0, k: int = 5,
                    n_splits: int = 5, seed: int = 0, with_tsne: bool = True) -> dict:
    """Embeddings of the landmark patches, kNN accuracy, silhouette and (optionally) the t-SNE map."""
    patches, labels, patch_groups = landmark_patches(images, landmarks, patch_size, groups, jitter, seed)
    emb = embed(encoder, patches, input_size)
    report = {
        "knn_accuracy": knn_accuracy(emb, labels, patch_groups, k, n_splits),
        "silhouette": silhouette(emb, labels),
        "chance": 1.0 / landmarks.shape[1],
        "n_patches": len(labels), "n_patients": int(len(np.unique(patch_groups))),
        "labels": labels, "groups": patch_groups, "embeddings": emb,
    }
    if with_tsne:
        report["tsne"] = tsne_2d(emb, seed)
    return report


# ----------------------------------------------------------------------------------------------------
# Data: phantom ground truth or a landmark file for real images
# ----------------------------------------------------------------------------------------------------


def phantom_landmark_data(n: int, size: int, seed: int = 0):
    """``(images [n,1,H,W], landmarks [n,10,2], patient ids)`` from the phantom's ground truth."""
    items = [PhantomDataset(n, size=size, seed=seed)[i] for i in range(n)]
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
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--patch-size", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=64, help="patches are resized to this before embedding")
    parser.add_argument("--jitter", type=float, default=8.0, help="max shift of a patch centre, pixels")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="JSON file to write")


def run(args) -> int:
    if args.landmarks:
        images, landmarks, groups = read_landmark_file(args.landmarks, args.size)
    else:
        images, landmarks, groups = phantom_landmark_data(args.n, args.size, args.seed)
    results = {"data": args.landmarks or "phantom", "n_images": len(images), "patch_size": args.patch_size,
               "input_size": args.input_size, "jitter": args.jitter, "k": args.k, "methods": {}}
    for name, spec in parse_encoder_specs(args.encoder).items():
        encoder = load_encoder(resolve_encoder(spec, args.arch, args.seed))
        report = locality_report(encoder, images, landmarks, groups, args.patch_size, args.input_size,
                                 args.jitter, args.k, seed=args.seed, with_tsne=False)
        results["methods"][name] = {key: report[key] for key in ("knn_accuracy", "silhouette", "chance", "n_patches",
                                                                 "n_patients")}
        print(f"{name}: kNN accuracy {report['knn_accuracy']:.3f} (chance {report['chance']:.2f}), "
              f"silhouette {report['silhouette']:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0
