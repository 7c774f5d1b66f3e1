"""Compositionality: the embedding of a whole should be close to the aggregate of its parts' embeddings.

Following the paper, a patch (the whole) is split into 2, 3 or 4 non-overlapping sub-patches (the parts);
each is embedded on its own and the score is cos(E(whole), E(part 1) + ... + E(part n)). The paper does
not spell out the splits; the kit uses (see :data:`SPLITS`):

- 2: two halves from a vertical cut (left | right), the decomposer's first cut;
- 3: three vertical strips of equal width;
- 4: a 2 x 2 grid, the decomposer's level n=2.

Every whole and every part is resized to the encoder's input size before it is embedded, as the
decomposer does with the anchors Adam is trained on, so each part is seen at the scale the encoder
expects.

Centering. A ResNet's pooled features come after a ReLU: every coordinate is >= 0, so any two
embeddings share a large common direction and their raw cosine is close to 1 whatever the encoder
(about 0.99 for a random init on the phantom). By default the kit therefore subtracts, over the set of
patches analysed, the mean whole embedding from the whole embeddings and the mean parts-sum from the
parts-sums before the cosine: the score then asks whether what distinguishes a whole from the other
wholes is what distinguishes the sum of its parts. ``center=False`` gives the raw cosine. An encoder
that is additive by construction scores exactly 1 either way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from edenkit.analysis.embeddings import embed, load_encoder
from edenkit.checkpoint import add_encoder_arguments, parse_encoder_specs, resolve_encoder
from edenkit.data.formats import read_grey, resize_image
from edenkit.phantom import PhantomDataset
from edenkit.stats import mean_std

SPLITS = {2: "two halves (vertical cut)", 3: "three vertical strips", 4: "2 x 2 grid"}


def sub_patch_boxes(height: int, width: int, n_parts: int) -> list[tuple[int, int, int, int]]:
    """The (y0, x0, y1, x1) boxes of the ``n_parts`` split of a ``height`` x ``width`` patch (half-open).

    Not the decomposer's ``edenkit.decomposer.part_boxes`` (the parts of an image at a curriculum level):
    these are the sub-patches of :data:`SPLITS` that one whole is compared with.
    """
    if n_parts == 2:
        cols, rows = 2, 1
    elif n_parts == 3:
        cols, rows = 3, 1
    elif n_parts == 4:
        cols, rows = 2, 2
    else:
        raise ValueError(f"n_parts must be one of {sorted(SPLITS)}, got {n_parts}")
    xs = [round(i * width / cols) for i in range(cols + 1)]
    ys = [round(j * height / rows) for j in range(rows + 1)]
    return [(ys[j], xs[i], ys[j + 1], xs[i + 1]) for j in range(rows) for i in range(cols)]


def random_patches(images: torch.Tensor, patch_size: int, per_image: int, seed: int = 0) -> torch.Tensor:
    """``per_image`` square patches at uniformly random positions inside each image [N, 1, H, W]."""
    height, width = images.shape[-2:]
    if patch_size > min(height, width):
        raise ValueError(f"patch_size {patch_size} is larger than the images ({height} x {width})")
    g = torch.Generator().manual_seed(seed)
    tops = torch.randint(0, height - patch_size + 1, (len(images), per_image), generator=g)
    lefts = torch.randint(0, width - patch_size + 1, (len(images), per_image), generator=g)
    return torch.stack([image[:, t : t + patch_size, l : l + patch_size]
                        for image, ts, ls in zip(images, tops, lefts) for t, l in zip(ts.tolist(), ls.tolist())])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of [M, D] arrays."""
    num = (a * b).sum(1)
    return num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(min=1e-12)


def compositionality_scores(encoder: torch.nn.Module, patches: torch.Tensor, n_parts: int,
                            input_size: int | None = None, center: bool = True, batch_size: int = 64) -> np.ndarray:
    """cos(E(whole), sum_i E(part_i)) for every patch [M, 1, h, w], centred over the M patches; returns [M]."""
    height, width = patches.shape[-2:]
    whole = embed(encoder, patches, input_size, batch_size)
    parts_sum = np.zeros_like(whole)
    for y0, x0, y1, x1 in sub_patch_boxes(height, width, n_parts):
        parts_sum += embed(encoder, patches[..., y0:y1, x0:x1], input_size, batch_size)
    if center:
        whole, parts_sum = whole - whole.mean(0), parts_sum - parts_sum.mean(0)
    return cosine(whole, parts_sum)


def compositionality_report(encoder: torch.nn.Module, patches: torch.Tensor, splits: Sequence[int] = (2, 3, 4),
                            input_size: int | None = 64, center: bool = True) -> dict:
    """Scores per split and pooled: ``{"scores": {n: [M]}, "all": [3M], "mean", "std", "per_split_mean"}``."""
    scores = {n: compositionality_scores(encoder, patches, n, input_size, center) for n in splits}
    pooled = np.concatenate(list(scores.values()))
    return {"scores": scores, "all": pooled, "mean": float(pooled.mean()), "std": float(pooled.std(ddof=1)),
            "per_split_mean": {n: float(s.mean()) for n, s in scores.items()}}


# ----------------------------------------------------------------------------------------------------
# CLI: python -m edenkit compositionality
# ----------------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    add_encoder_arguments(parser)
    parser.add_argument("--images", default=None, help="a folder of PNGs (default: phantom images)")
    parser.add_argument("--n", type=int, default=50, help="images")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--per-image", type=int, default=4)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--splits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--raw", action="store_true", help="raw cosine (no centering; see the module docstring)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="JSON file to write")


def load_images(folder: str | Path | None, n: int, size: int, seed: int = 0) -> torch.Tensor:
    """[n, 1, size, size]: the first ``n`` PNGs of ``folder`` (sorted), or phantom images when None."""
    if folder is None:
        dataset = PhantomDataset(n, size=size, seed=seed)
        return torch.stack([dataset[i]["image"] for i in range(n)])
    paths = sorted(Path(folder).glob("*.png"))[:n]
    if not paths:
        raise FileNotFoundError(f"no .png images in {folder}")
    return torch.stack([resize_image(read_grey(p), size) for p in paths])


def run(args) -> int:
    patches = random_patches(load_images(args.images, args.n, args.size, args.seed), args.patch_size,
                             args.per_image, args.seed)
    results = {"data": args.images or "phantom", "n_patches": len(patches), "patch_size": args.patch_size,
               "input_size": args.input_size, "centered": not args.raw, "splits": {n: SPLITS[n] for n in args.splits}, "methods": {}}
    for name, spec in parse_encoder_specs(args.encoder).items():
        encoder = load_encoder(resolve_encoder(spec, args.arch, args.seed))
        report = compositionality_report(encoder, patches, args.splits, args.input_size, center=not args.raw)
        results["methods"][name] = {"cosine": mean_std(report["all"]),
                                    "per_split_mean": {str(n): v for n, v in report["per_split_mean"].items()}}
        print(f"{name}: cosine {report['mean']:.3f} ± {report['std']:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0
