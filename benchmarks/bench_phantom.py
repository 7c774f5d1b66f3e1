"""Phantom generation rate: images per second at several sizes on one thread, and 1,000 images at 256 px.

    python benchmarks/bench_phantom.py [--n 200] [--sizes 64 128 256 512] [--thousand]

Rates come from wall-clock time and from the process's CPU time; on a machine shared with other
jobs the CPU-time rate is the one that says what a free core would do. ``--thousand`` also times
``generate`` for seeds 0..999 at 256 px (the issue's speed target: well under a minute). Prints JSON.
The same numbers come from ``python -m edenkit phantom bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from edenkit.phantom import generate
from edenkit.phantom.cli import benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--thousand", action="store_true", help="also time 1,000 images at 256 px")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {
        "n": args.n,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "images_per_second": {
            str(k): {m: round(r, 1) for m, r in v.items()} for k, v in benchmark(args.sizes, args.n).items()
        },
    }
    if args.thousand:
        wall, cpu = time.perf_counter(), time.process_time()
        for seed in range(1000):
            generate(seed, size=256)
        result["thousand_at_256px_seconds"] = {
            "wall": round(time.perf_counter() - wall, 1),
            "cpu": round(time.process_time() - cpu, 1),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
