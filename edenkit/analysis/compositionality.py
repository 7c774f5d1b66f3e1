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

Control and reference. Global average pooling is nearly additive over parts, so even an untrained
network scores well (measured on the demo's settings: a random ResNet-18 0.53 for 2 parts and 0.46 for 4,
centred). Every score therefore comes with

- the shuffled control: the same cosine with the whole and the parts taken from DIFFERENT patches
  (a seeded derangement), centred with the same means. What the matched score has beyond the control
  (``gap`` = matched - shuffled) is what the parts say about their own whole;
- the random-init reference: the same measures for an untrained network of the same architecture,
  i.e. what convolution and pooling give without any learning.

Measures are given for the backbone's pooled features and, where the checkpoint carries it (the kit's
pretraining checkpoints do; exported encoders do not), for the projection head's output
(:func:`edenkit.analysis.embeddings.load_projection_head`). The paper does not say which it used; its
peaks (``edenkit.paper.COMPOSITIONALITY_PEAK``) are raw cosines and compare with the raw measures only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from edenkit.analysis.embeddings import embed, head_checkpoint, load_encoder, load_projection_head
from edenkit.checkpoint import (
    add_encoder_arguments,
    detect_arch,
    parse_encoder_specs,
    random_state_dict,
    resolve_encoder,
)
from edenkit.data.formats import read_grey, resize_image
from edenkit.files import atomic_write_json
from edenkit.phantom import PhantomConfig, PhantomDataset, add_version_argument
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


def whole_and_parts(encoder: torch.nn.Module, patches: torch.Tensor, n_parts: int, input_size: int | None = None,
                    batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(E(whole) [M, D], sum_i E(part_i) [M, D])`` for patches [M, 1, h, w] split into ``n_parts``."""
    height, width = patches.shape[-2:]
    whole = embed(encoder, patches, input_size, batch_size)
    parts_sum = np.zeros_like(whole)
    for y0, x0, y1, x1 in sub_patch_boxes(height, width, n_parts):
        parts_sum += embed(encoder, patches[..., y0:y1, x0:x1], input_size, batch_size)
    return whole, parts_sum


def derangement(m: int, seed: int = 0) -> np.ndarray:
    """A seeded permutation of ``range(m)`` with no fixed point (each whole meets other parts), m >= 2."""
    if m < 2:
        raise ValueError("the shuffled control needs at least 2 patches")
    order = np.random.default_rng(seed).permutation(m)
    partner = np.empty(m, dtype=int)
    partner[order] = np.roll(order, -1)  # a single cycle through a random order
    return partner


def matched_and_shuffled(whole: np.ndarray, parts_sum: np.ndarray, center: bool = True,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(cos(whole_i, parts_i), cos(whole_i, parts_j(i)))``, j a derangement; centring uses the same means."""
    if center:
        whole, parts_sum = whole - whole.mean(0), parts_sum - parts_sum.mean(0)
    return cosine(whole, parts_sum), cosine(whole, parts_sum[derangement(len(whole), seed)])


def compositionality_scores(encoder: torch.nn.Module, patches: torch.Tensor, n_parts: int,
                            input_size: int | None = None, center: bool = True, batch_size: int = 64) -> np.ndarray:
    """cos(E(whole), sum_i E(part_i)) for every patch [M, 1, h, w], centred over the M patches; returns [M]."""
    return matched_and_shuffled(*whole_and_parts(encoder, patches, n_parts, input_size, batch_size), center)[0]


def _summary(matched: np.ndarray, shuffled: np.ndarray) -> dict:
    return {"matched": mean_std(matched), "shuffled": mean_std(shuffled),
            "gap": float(matched.mean() - shuffled.mean())}


def compositionality_report(encoder: torch.nn.Module, patches: torch.Tensor, splits: Sequence[int] = (2, 3, 4),
                            input_size: int | None = 64, center: bool = True, seed: int = 0) -> dict:
    """Matched scores and the shuffled control, per split and pooled, centred (default) or raw.

    ``{"scores": {n: [M]}, "shuffled": {n: [M]}, "all", "all_shuffled", "mean", "std", "shuffled_mean",
    "gap", "per_split_mean", "per_split": {n: {"matched", "shuffled", "gap"}}}``.
    """
    scores, shuffled = {}, {}
    for n in splits:
        scores[n], shuffled[n] = matched_and_shuffled(*whole_and_parts(encoder, patches, n, input_size), center,
                                                      seed + n)
    pooled, pooled_shuffled = np.concatenate(list(scores.values())), np.concatenate(list(shuffled.values()))
    return {"scores": scores, "shuffled": shuffled, "all": pooled, "all_shuffled": pooled_shuffled,
            "mean": float(pooled.mean()), "std": float(pooled.std(ddof=1)),
            "shuffled_mean": float(pooled_shuffled.mean()), "gap": float(pooled.mean() - pooled_shuffled.mean()),
            "per_split_mean": {n: float(s.mean()) for n, s in scores.items()},
            "per_split": {n: _summary(scores[n], shuffled[n]) for n in splits}}


def measures(encoder: torch.nn.Module, patches: torch.Tensor, splits: Sequence[int] = (2, 3, 4),
             input_size: int | None = 64, seed: int = 0) -> dict:
    """Everything the analysis reports for one feature extractor: centred and raw, matched, shuffled, gap.

    ``{"centred": {"matched", "shuffled", "gap", "per_split": {n: ...}}, "raw": {...}}``; the pooled score
    arrays are under ``"scores"`` (``{"centred": report, "raw": report}``) for figures, not for JSON.
    """
    reports = {"centred": compositionality_report(encoder, patches, splits, input_size, True, seed),
               "raw": compositionality_report(encoder, patches, splits, input_size, False, seed)}
    out = {kind: {**_summary(r["all"], r["all_shuffled"]), "per_split": r["per_split"]} for kind, r in reports.items()}
    return {**out, "scores": reports}


def feature_extractors(encoder: torch.nn.Module, head: torch.nn.Module | None) -> dict[str, torch.nn.Module]:
    """``{"backbone": encoder}`` plus ``{"head": encoder -> head}`` when there is a projection head."""
    extractors = {"backbone": encoder}
    if head is not None:
        extractors["head"] = torch.nn.Sequential(encoder, head).eval()
    return extractors


def random_init_reference(arch: str, patches: torch.Tensor, splits: Sequence[int] = (2, 3, 4),
                          input_size: int | None = 64, seed: int = 0) -> dict:
    """:func:`measures` of a seeded untrained backbone of ``arch``: convolution and pooling without learning."""
    return measures(load_encoder(random_state_dict(arch, seed)), patches, splits, input_size, seed)


def jsonable(measured: dict) -> dict:
    """:func:`measures` without the score arrays, split counts as string keys."""
    def fix(obj):
        if isinstance(obj, dict):
            return {str(k): fix(v) for k, v in obj.items() if k != "scores"}
        return obj
    return fix(measured)


# ----------------------------------------------------------------------------------------------------
# CLI: python -m edenkit compositionality
# ----------------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    add_encoder_arguments(parser)
    parser.add_argument("--images", default=None, help="a folder of PNGs (default: phantom images)")
    parser.add_argument("--n", type=int, default=50, help="images")
    add_version_argument(parser)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--per-image", type=int, default=4)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--splits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--raw", action="store_true", help="raw cosine (no centering; see the module docstring)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="JSON file to write")


def load_images(folder: str | Path | None, n: int, size: int, seed: int = 0, version: int = 1) -> torch.Tensor:
    """[n, 1, size, size]: the first ``n`` PNGs of ``folder`` (sorted), or phantom images (of ``version``)
    when None."""
    if folder is None:
        dataset = PhantomDataset(n, size=size, seed=seed, config=PhantomConfig(version=version))
        return torch.stack([dataset[i]["image"] for i in range(n)])
    paths = sorted(Path(folder).glob("*.png"))[:n]
    if not paths:
        raise FileNotFoundError(f"no .png images in {folder}")
    return torch.stack([resize_image(read_grey(p), size) for p in paths])


def _line(name: str, measured: dict) -> str:
    c, r = measured["centred"], measured["raw"]
    return (f"  {name:22s} centred: matched {c['matched']['mean']:.3f}, shuffled {c['shuffled']['mean']:.3f}, "
            f"gap {c['gap']:+.3f} | raw: matched {r['matched']['mean']:.3f}, shuffled {r['shuffled']['mean']:.3f}")


def run(args) -> int:
    patches = random_patches(load_images(args.images, args.n, args.size, args.seed, args.phantom_version), args.patch_size,
                             args.per_image, args.seed)
    specs = parse_encoder_specs(args.encoder)
    states = {name: resolve_encoder(spec, args.arch, args.seed) for name, spec in specs.items()}
    arch = detect_arch(next(iter(states.values())))
    common = {"splits": args.splits, "input_size": args.input_size, "seed": args.seed}
    reference = random_init_reference(arch, patches, **common)
    results = {"data": args.images or f"phantom v{args.phantom_version}", "n_patches": len(patches), "patch_size": args.patch_size,
               "input_size": args.input_size, "centered": not args.raw, "arch": arch,
               "splits": {n: SPLITS[n] for n in args.splits},
               "reference": {"random_init": {"backbone": jsonable(reference)}}, "methods": {}}
    print("reference:\n" + _line("random init / backbone", reference))
    for name, state in states.items():
        checkpoint = head_checkpoint(specs[name]) if specs[name] not in ("random", "imagenet") else None
        head = load_projection_head(checkpoint, state) if checkpoint else None
        results["methods"][name] = {"head_checkpoint": str(checkpoint) if head is not None else None}
        for features, extractor in feature_extractors(load_encoder(state), head).items():
            measured = measures(extractor, patches, **common)
            kind = "raw" if args.raw else "centred"
            results["methods"][name][features] = jsonable(measured)
            if features == "backbone":  # the headline numbers, as before
                results["methods"][name]["cosine"] = mean_std(measured["scores"][kind]["all"])
                results["methods"][name]["per_split_mean"] = {
                    str(n): v for n, v in measured["scores"][kind]["per_split_mean"].items()}
            print(_line(f"{name} / {features}", measured))
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0
