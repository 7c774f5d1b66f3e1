"""Images per second: the uint8 memmap cache vs decoding ChestX-ray14-sized PNGs, from one run.

    python benchmarks/bench_cache.py [--n 256] [--png-size 1024] [--size 512] [--workers 2]

Writes ``n`` 1024 px 8-bit PNGs in the ChestX-ray14 layout (phantom radiographs, so they compress
like real ones rather than like noise), builds the cache, then reads every image once through each
loader in one process (a per-core rate) and prints both rates, the speed-up and the build rate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from edenkit.data.cache import build_cache, measure_read_rate, open_image_dataset
from edenkit.data.datasets import open_dataset
from edenkit.phantom import generate


def write_pngs(folder: Path, n: int, png_size: int, distinct: int) -> None:
    """``n`` PNGs named like ChestX-ray14, cycling through ``distinct`` phantom images."""
    images = folder / "images"
    images.mkdir(parents=True)
    pixels = [np.rint(generate(seed, size=png_size).image * 255).astype(np.uint8) for seed in range(distinct)]
    names = []
    for i in range(n):
        name = f"{i // 2 + 1:08d}_{i % 2:03d}.png"
        Image.fromarray(pixels[i % distinct]).save(images / name)
        names.append(name)
    rows = [f"{name},No Finding,0,{int(name[:8])}" for name in names]
    (folder / "Data_Entry_2017_v2020.csv").write_text("Image Index,Finding Labels,Follow-up #,Patient ID\n"
                                                     + "\n".join(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="number of PNGs")
    parser.add_argument("--png-size", type=int, default=1024, help="side of the PNGs (ChestX-ray14: 1024)")
    parser.add_argument("--size", type=int, default=512, help="side of the cached images")
    parser.add_argument("--workers", type=int, default=2, help="processes building the cache")
    parser.add_argument("--distinct", type=int, default=8, help="distinct phantom images to cycle through")
    parser.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a per-core rate for both loaders

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir or tmp)
        write_pngs(root / "chestxray14", args.n, args.png_size, args.distinct)
        start = time.perf_counter()
        build_cache("chestxray14", root, args.size, workers=args.workers, progress=False)
        build_seconds = time.perf_counter() - start

        decoding = open_dataset("chestxray14", root, "all", args.size, targets=False)
        cached = open_image_dataset("chestxray14", root, "all", args.size)
        assert type(cached).__name__ == "CachedImages", "the cache was not picked up"
        png_rate, cache_rate = measure_read_rate(decoding), measure_read_rate(cached)
        result = {
            "images": args.n, "png_size": args.png_size, "size": args.size,
            "png_loader_images_per_s": round(png_rate, 1), "cache_loader_images_per_s": round(cache_rate, 1),
            "speedup": round(cache_rate / png_rate, 1),
            "cache_build_images_per_s": round(args.n / build_seconds, 1), "cache_build_workers": args.workers,
        }
    print(f"PNG-decoding loader : {png_rate:8.1f} images/s (one process, {args.png_size} px PNG -> {args.size} px)")
    print(f"cached loader       : {cache_rate:8.1f} images/s (one process, uint8 memmap {args.size} px)")
    print(f"speed-up            : {cache_rate / png_rate:8.1f} x")
    print(f"cache build         : {args.n / build_seconds:8.1f} images/s with {args.workers} workers "
          f"(includes starting them)")
    print("(the cache's pages were in the OS page cache; from a cold disk it reads size^2 bytes per image)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
