"""Issue 11's criteria for phantom v1 and v2, side by side (one run, a few minutes on 2 cores).

    python benchmarks/bench_phantom_v2.py [--scale full|small] [--ablation] [--a1 EPOCHS]
        [--a2-seeds N] [--a2-at SIZE:VIEW ...] [--a2-components] [--json PATH]

Prints the markdown table of ``edenkit.phantom.criteria`` (A2-A6 and the generation cost; the
sample sizes are printed with it) for ``PhantomConfig(version=1)`` and ``version=2``, on one thread.
A2 is read twice: under the paper's views (crop 0.2-1, colour jitter, blur, rotation 30) and under
the crop and rotation alone (what demo_cpu keeps of them besides the blur).
``--a2-seeds N`` repeats A2 at seeds 0..N-1 (other patients, views and random network) and prints
mean and std: one seed's decoding moves by about 0.02. ``--a2-at 256:224`` measures A2 again with
256-px images and 224-px views (the paper's view size) instead of 128 and 64. ``--a2-components``
measures A2 under the crop alone, with the jitter, with the rotation, and with all of the paper's views.
``--ablation`` adds A2 and A3 for v2 with every factor off, each factor alone and all on.
``--a1 EPOCHS`` also runs A1: a short MoCo-v2 pretraining (``demo_cpu`` with ``curriculum.stages=[0]``)
at the paper's crop (0.2-1) and rotation (30 degrees) on each phantom version, with demo_cpu's recipe
as it is and with the colour jitter off and in-batch negatives (``A1_RECIPES``), and prints the
training loss, accuracy and negatives' cosine and the validation loss and instance accuracy per
epoch from each run's log (``--only-a1`` skips the criteria table; runs resume from ``--a1-dir``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from edenkit.augmentation import TwoViewAugment
from edenkit.phantom import PhantomConfig, criteria
from edenkit.pretrain_config import load_pretrain_config
from edenkit.run_folder import RunPaths, read_log
from edenkit.stats import mean_std

# A1's recipes: demo_cpu at the paper's crop and rotation, as it is (the paper's colour jitter and the MoCo
# queue), and with the two changes that research/recipe session 6 found to learn there.
A1_RECIPES = {
    "paper views, queue": [],
    "no jitter, in-batch negatives": ["data.jitter_p=0", "model.negatives=batch"],
}


def run_a1(version: int, epochs: int, out: str, overrides: list[str]) -> list[dict]:
    """A short MoCo-v2 pretraining (``demo_cpu``, stage n = 0) on phantom ``version`` at the paper's crop
    (0.2-1) and rotation (30 degrees), in a subprocess; the train and val records of its log, with the
    instance accuracy's chance."""
    args = [sys.executable, "-m", "edenkit", "pretrain", "--config", "demo_cpu", "--out", out, "--resume", "auto",
            "curriculum.stages=[0]", f"curriculum.epochs=[{epochs}]", "data.crop_scale=[0.2,1.0]", "data.rotation=30",
            f"data.phantom_version={version}", f"data.cache_dir={out}/../cache", *overrides]
    subprocess.run(args, check=True)
    cfg = load_pretrain_config(str(RunPaths(Path(out)).config))
    # chance of the instance accuracy: the positive among the queue, or among the batch's keys
    chance = 1 / (cfg.batch_size if cfg.model.negatives == "batch" else cfg.model.queue_size + 1)
    return [{**r, "chance": chance} for r in read_log(out) if r.get("split") in ("train", "val")]


def a1_table(runs: dict[str, list[dict]]) -> str:
    """Per run and epoch: training loss, accuracy and negatives' cosine; validation loss and accuracy."""
    lines = ["| run | epoch | train loss | train acc | train neg cos | val loss | val acc | chance |",
             "|---|---|---|---|---|---|---|---|"]
    for name, records in runs.items():
        by_epoch: dict[int, dict] = {}
        for r in records:
            by_epoch.setdefault(r["epoch"], {})[r["split"]] = r
        for epoch, splits in sorted(by_epoch.items()):
            t, v = splits.get("train", {}), splits.get("val", {})
            cells = [t.get("loss"), t.get("acc"), t.get("neg_sim"), v.get("loss"), v.get("acc"), t.get("chance")]
            lines.append(f"| {name} | {epoch} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines)


def a2_views(size: int, parts: tuple[str, ...] = ("paper views", "crop + rotation")) -> dict[str, TwoViewAugment]:
    """The paper's two-view augmentation at ``size`` and its parts (crop only, crop + jitter, crop + rotation)."""
    kwargs = {"paper views": {}, "crop + rotation": dict(jitter_p=0.0, blur_p=0.0),
              "crop only": dict(jitter_p=0.0, blur_p=0.0, degrees=0.0), "crop + jitter": dict(blur_p=0.0, degrees=0.0)}
    return {name: TwoViewAugment(size, **kwargs[name]) for name in parts}


def a2_over_seeds(augments: dict, n_seeds: int, size: int, scale: str) -> dict:
    """A2 for v1 and v2 under each augmentation at seeds 0..n_seeds-1, with mean and std."""
    n, out = criteria.SCALES[scale], {}
    for version in (1, 2):
        config = PhantomConfig(version=version)
        runs = {name: [] for name in augments}
        for seed in range(n_seeds):
            images = criteria.identity_images(config, n["patients"], n["retrieval"], size, seed)
            for name, augment in augments.items():
                runs[name].append(criteria.identity(config, augment, n["patients"], n_retrieval=n["retrieval"],
                                                    size=size, seed=seed, images=images))
        for name, augment in augments.items():
            row = {key: {"values": [r[key] for r in runs[name]], **mean_std([r[key] for r in runs[name]])}
                   for key in ("decode", "retrieval_random", "retrieval_pixels")}
            out[f"v{version} {name} {size}px"] = row
            print(f"A2 v{version} {name:<16} images {size} px, views {augment.size} px, seeds 0-{n_seeds - 1}: "
                  + "  ".join(f"{k} {v['mean']:.3f} +- {v['std']:.3f}" for k, v in row.items()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(criteria.SCALES), default="full")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--a1", type=int, default=0, metavar="EPOCHS", help="also run A1 for this many epochs")
    parser.add_argument("--a1-dir", default="/tmp/bench_phantom_v2_a1", help="A1's run folders (resumed if there)")
    parser.add_argument("--only-a1", action="store_true", help="skip the criteria table (with --a1)")
    parser.add_argument("--a2-seeds", type=int, default=0, metavar="N", help="A2 at seeds 0..N-1: mean and std")
    parser.add_argument("--a2-at", action="append", default=[], metavar="SIZE:VIEW",
                        help="A2 at another image and view size (repeatable), e.g. 256:224")
    parser.add_argument("--a2-components", action="store_true", help="A2 under each part of the paper's views")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    augment, crop_rotation = a2_views(64).values()  # the paper's settings: crop 0.2-1, jitter, blur, rotation 30
    print(f"sample sizes ({args.scale}): {criteria.SCALES[args.scale]}; views 64 px of 128-px images", flush=True)
    results = {}
    for version in () if args.only_a1 else (1, 2):
        start = time.time()
        results[f"v{version}"] = criteria.measure(PhantomConfig(version=version), augment, args.scale,
                                                  crop_rotation=crop_rotation)
        print(f"v{version}: measured in {time.time() - start:.0f} s", flush=True)
    if results:
        print(criteria.table(results))
    out = {"scale": args.scale, "n": criteria.SCALES[args.scale], "results": results}
    if args.ablation:
        out["ablation"] = criteria.ablation(augment, "small" if args.scale == "small" else "full")
        for name, row in out["ablation"].items():
            print(f"ablation {name:<18} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if args.a2_seeds:
        out["a2_seeds"] = a2_over_seeds(a2_views(64), args.a2_seeds, 128, args.scale)
    if args.a2_components:
        parts = ("crop only", "crop + jitter", "crop + rotation", "paper views")
        out["a2_components"] = a2_over_seeds(a2_views(64, parts), max(args.a2_seeds, 1), 128, args.scale)
    for spec in args.a2_at:
        size, view = (int(x) for x in spec.split(":"))
        out.setdefault("a2_at", {}).update(a2_over_seeds(a2_views(view), max(args.a2_seeds, 1), size, args.scale))
    if args.a1:
        out["a1"] = {f"v{v} {name}": run_a1(v, args.a1, f"{args.a1_dir}/v{v}-{i}", overrides)
                     for v in (1, 2) for i, (name, overrides) in enumerate(A1_RECIPES.items())}
        print(a1_table(out["a1"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=float)


if __name__ == "__main__":
    main()
