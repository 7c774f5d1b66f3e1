"""What feeding a pretraining step costs: pairs per second per core, CPU augmentation vs on-device augmentation.

    python benchmarks/bench_loader.py [--image-size 1024] [--view-size 224] [--levels 0 4] [--batch 256]

At the paper's settings by default (1024-px images from memory, 224-px views, n = 0 and n = 4). One
thread, as one DataLoader worker runs:

- CPU path: ``AnatomyPairs`` + ``TwoViewAugment`` (read, decompose, two views per sample), collated.
- device path, worker side: ``AnatomyAnchors`` (read uint8, decompose, draw the views' parameters),
  collated: what each worker does when the views are made on the device.
- device path, device side: ``BatchTwoViewAugment.apply`` on one collated batch of ``--batch``, timed
  here on the CPU (on a GPU it is a few kernels; ``benchmarks/gpu_check.py`` times it there).

Rates are pairs per CPU-second of this process (what one core delivers, also on a machine whose cores
are shared) and, in brackets, per wall-clock second.

Images are phantoms (a handful, cycled: reading from memory costs the same for any content).
Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch.utils.data import DataLoader

from edenkit.anatomy_anchors import AnatomyAnchors
from edenkit.augmentation import TwoViewAugment
from edenkit.batch_augmentation import BatchTwoViewAugment
from edenkit.decomposer import AnatomyPairs
from edenkit.phantom import generate


class CycledImages:
    """``count`` items cycling over a few uint8 images [k, 1, H, W]; items as pretraining's ``ImageTensor``."""

    def __init__(self, images: torch.Tensor, count: int):
        self.images, self.count = images, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index % len(self.images)].float() / 255.0, "index": index}

    def read_uint8(self, index: int) -> torch.Tensor:
        return self.images[index % len(self.images)]


def phantom_images(count: int, size: int) -> torch.Tensor:
    return torch.stack([(torch.from_numpy(generate(i, size=size).image)[None] * 255).round().to(torch.uint8)
                        for i in range(count)])


def timed(function, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``function(repeat)`` over ``repeats`` runs after a warm-up run.

    CPU seconds (this process) measure the work per core even when other processes share the cores;
    wall seconds are what this process saw."""
    wall, cpu = [], []
    for repeat in range(repeats + 1):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function(repeat)
        if repeat:
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def pairs_per_second(dataset, batch_size: int, pairs: int, repeats: int) -> tuple[float, float]:
    """(wall, CPU-time) pairs/s of loading ``pairs`` samples in batches of ``batch_size`` in this process."""

    def load(epoch: int) -> None:
        dataset.set_epoch(epoch)
        for _ in DataLoader(torch.utils.data.Subset(dataset, range(pairs)), batch_size=batch_size, drop_last=True):
            pass

    pairs = pairs // batch_size * batch_size
    wall, cpu = timed(load, repeats)
    return pairs / wall, pairs / cpu


def device_side_seconds(dataset: AnatomyAnchors, batch_size: int, repeats: int) -> tuple[float, float]:
    batch = next(iter(DataLoader(dataset, batch_size=batch_size)))
    return timed(lambda _: dataset.augment.apply(batch["anchor"], batch["params"]), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--view-size", type=int, default=224)
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--batch", type=int, default=256, help="batch of the device side (the paper's)")
    parser.add_argument("--loader-batch", type=int, default=32, help="collate batch of the loader timings")
    parser.add_argument("--cpu-pairs", type=int, default=96)
    parser.add_argument("--worker-pairs", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=4, help="distinct phantom images (cycled)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    images = phantom_images(args.images, args.image_size)
    data = CycledImages(images, max(args.cpu_pairs, args.worker_pairs, args.batch))
    results = []
    for n in args.levels:
        cpu = AnatomyPairs(data, n, args.view_size, augment=TwoViewAugment(args.view_size))
        anchors = AnatomyAnchors(data, n, BatchTwoViewAugment(args.view_size))
        anchor = anchors[0]["anchor"]
        cpu_wall, cpu_cpu = pairs_per_second(cpu, args.loader_batch, args.cpu_pairs, args.repeats)
        worker_wall, worker_cpu = pairs_per_second(anchors, args.loader_batch, args.worker_pairs, args.repeats)
        device_wall, device_cpu = device_side_seconds(anchors, args.batch, args.repeats)
        results.append({
            "n": n, "anchor_px": list(anchor.shape[-2:]),
            "cpu_path_pairs_per_cpu_s": round(cpu_cpu, 1), "cpu_path_pairs_per_wall_s": round(cpu_wall, 1),
            "device_path_worker_pairs_per_cpu_s": round(worker_cpu, 1),
            "device_path_worker_pairs_per_wall_s": round(worker_wall, 1),
            "device_side_cpu_s_per_batch_on_cpu": round(device_cpu, 3),
            "device_side_wall_s_per_batch_on_cpu": round(device_wall, 3),
            "anchor_mb_per_batch": round(args.batch * anchor.numel() / 2**20, 1),
        })

    print(f"\n{args.image_size}-px images from memory, {args.view_size}-px views, 1 thread "
          f"(load average {os.getloadavg()[0]:.2f})")
    print("pairs per CPU-second of one core (wall-clock rate in brackets, lower when the cores are shared)")
    print(f"{'n':>2} {'anchor':>10} {'CPU path':>18} {'device path, worker':>22} {'device side on CPU':>26}")
    for r in results:
        print(f"{r['n']:>2} {'x'.join(map(str, r['anchor_px'])):>10} {r['cpu_path_pairs_per_cpu_s']:>7.0f} "
              f"({r['cpu_path_pairs_per_wall_s']:.0f}) p/s {r['device_path_worker_pairs_per_cpu_s']:>10.0f} "
              f"({r['device_path_worker_pairs_per_wall_s']:.0f}) p/s {r['device_side_cpu_s_per_batch_on_cpu']:>9.2f} "
              f"({r['device_side_wall_s_per_batch_on_cpu']:.2f}) s per {args.batch}")
    print(json.dumps({"image_size": args.image_size, "view_size": args.view_size, "threads": 1,
                      "device_side_batch": args.batch, "load_average": os.getloadavg()[0], "levels": results},
                     indent=2))


if __name__ == "__main__":
    main()
