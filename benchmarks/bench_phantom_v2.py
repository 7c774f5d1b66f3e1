"""Issue 11's criteria for phantom v1 and v2, side by side (one run, a few minutes on 2 cores).

    python benchmarks/bench_phantom_v2.py [--scale full|small] [--ablation] [--a1 EPOCHS] [--json PATH]

Prints the markdown table of ``edenkit.phantom.criteria`` (A2-A6 and the generation cost; the
sample sizes are printed with it) for ``PhantomConfig(version=1)`` and ``version=2``, on one thread.
``--ablation`` adds A2 and A3 for v2 with every factor off, each factor alone and all on.
``--a1 EPOCHS`` also runs A1: a short MoCo-v2 pretraining (``demo_cpu`` with ``curriculum.stages=[0]``)
at the paper's crop (0.2-1) and rotation (30 degrees) on each phantom version, and reports the
validation instance accuracy and negatives' cosine per epoch from the run's log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from edenkit.augmentation import TwoViewAugment
from edenkit.phantom import PhantomConfig, criteria


def run_a1(version: int, epochs: int, out: str) -> dict:
    """Short MoCo-v2 pretraining on phantom ``version`` at the paper's augmentation (subprocess)."""
    code = (
        "import sys, dataclasses, edenkit.phantom as ph\n"
        "base = ph.PhantomDataset\n"
        f"class Versioned(base):\n"
        f"    def __init__(self, n, size=256, seed=0, config=None, structures=None):\n"
        f"        super().__init__(n, size, seed, ph.PhantomConfig(version={version}), structures)\n"
        "ph.PhantomDataset = Versioned  # pretraining builds its phantoms with the default config\n"
        "from edenkit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["pretrain", "--config", "demo_cpu", "--out", out, "curriculum.stages=[0]", f"curriculum.epochs=[{epochs}]",
            "data.crop_scale=[0.2,1.0]", "data.rotation=30", f"data.cache_dir={out}/cache_v{version}"]
    subprocess.run([sys.executable, "-c", code, *args], check=True)
    logs = [os.path.join(root, f) for root, _, files in os.walk(out) for f in files if f.endswith(".jsonl")]
    return {"logs": logs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(criteria.SCALES), default="full")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--a1", type=int, default=0, metavar="EPOCHS", help="also run A1 for this many epochs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    augment = TwoViewAugment(64)  # the paper's settings: crop 0.2-1, jitter, blur, rotation 30
    print(f"sample sizes ({args.scale}): {criteria.SCALES[args.scale]}; views 64 px of 128-px images", flush=True)
    results = {}
    for version in (1, 2):
        start = time.time()
        results[f"v{version}"] = criteria.measure(PhantomConfig(version=version), augment, args.scale)
        print(f"v{version}: measured in {time.time() - start:.0f} s", flush=True)
    print(criteria.table(results))
    out = {"scale": args.scale, "n": criteria.SCALES[args.scale], "results": results}
    if args.ablation:
        out["ablation"] = criteria.ablation(augment, "small" if args.scale == "small" else "full")
        for name, row in out["ablation"].items():
            print(f"ablation {name:<18} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    if args.a1:
        out["a1"] = {f"v{v}": run_a1(v, args.a1, f"/tmp/bench_phantom_v2_a1/v{v}") for v in (1, 2)}
        print(json.dumps(out["a1"], indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=float)


if __name__ == "__main__":
    main()
