"""What feeding a pretraining step costs: pairs per second per core, CPU augmentation vs on-device augmentation.

    python benchmarks/bench_loader.py [--image-size 1024] [--view-size 224] [--levels 0 4] [--batch 256] \
        [--workers 0]

At the paper's settings by default (1024-px images from memory, 224-px views, n = 0 and n = 4). One
thread, as one DataLoader worker runs:

- CPU path: ``AnatomyPairs`` + ``TwoViewAugment`` (read, decompose, two views per sample), collated.
- device path, anchors sent: ``AnatomyAnchors`` (read uint8, decompose, draw the views' parameters)
  with the anchors in the items, collated: what each worker does for images it has to decode.
- device path, gathered (what pretraining does for images in memory or a memmap): the workers'
  items carry no pixels (``pixels=False``), and ``AnchorBatches.gather`` copies the anchors in the
  main process into a reused buffer. Timed apart: the worker side, and the main process's gather.
- device path, device side: ``BatchTwoViewAugment.apply`` on one collated batch of ``--batch``, timed
  here on the CPU (on a GPU it is a few kernels; ``benchmarks/gpu_check.py`` times it there).

Rates are pairs per CPU-second (what one core delivers, also on a machine whose cores are shared) and,
in brackets, per wall-clock second. With ``--workers N`` the loaders run N worker processes and the
CPU time includes theirs (batches then travel through shared memory, as in training); by default
everything runs in this process.

Images are phantoms (a handful, cycled: reading from memory costs the same for any content).
Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import torch
from torch.utils.data import DataLoader

from edenkit.anatomy_anchors import AnatomyAnchors, AnchorBatches
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


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``function(repeat)`` over ``repeats`` runs after a warm-up run.

    CPU seconds measure the work per core even when other processes share the cores; wall seconds are
    what this process saw."""
    wall, cpu = [], []
    for repeat in range(repeats + 1):
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()
        function(repeat)
        if repeat:
            wall.append(time.perf_counter() - start_wall)
            cpu.append(cpu_seconds() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def pairs_per_second(dataset, batch_size: int, pairs: int, repeats: int, workers: int = 0,
                     gather: bool = False) -> tuple[float, float]:
    """(wall, CPU-time) pairs/s of loading ``pairs`` samples in batches of ``batch_size`` (anchors
    gathered in this process by ``AnchorBatches`` when ``gather``)."""

    def load(epoch: int) -> None:
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=batch_size, sampler=range(pairs), drop_last=True, num_workers=workers)
        for _ in AnchorBatches(loader) if gather else loader:
            pass

    pairs = pairs // batch_size * batch_size
    wall, cpu = timed(load, repeats)
    return pairs / wall, pairs / cpu


def gather_per_second(dataset: AnatomyAnchors, batch_size: int, pairs: int, repeats: int) -> tuple[float, float]:
    """(wall, CPU-time) pairs/s of the main process's gather alone, on batches collated beforehand."""
    batches = AnchorBatches(DataLoader(dataset, batch_size=batch_size, sampler=range(pairs), drop_last=True))
    samples = [(b["index"].tolist(), b["box"].tolist()) for b in batches.loader]

    def gather(_: int) -> None:
        for indices, boxes in samples:
            batches.gather(indices, boxes)

    wall, cpu = timed(gather, repeats)
    count = len(samples) * batch_size
    return count / wall, count / cpu


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
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (0: in this process)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    images = phantom_images(args.images, args.image_size)
    data = CycledImages(images, max(args.cpu_pairs, args.worker_pairs, args.batch))
    results = []
    for n in args.levels:
        cpu = AnatomyPairs(data, n, args.view_size, augment=TwoViewAugment(args.view_size))
        anchors = AnatomyAnchors(data, n, BatchTwoViewAugment(args.view_size))
        bare = AnatomyAnchors(data, n, BatchTwoViewAugment(args.view_size), pixels=False)
        anchor = anchors[0]["anchor"]
        rate = {
            "cpu_path": pairs_per_second(cpu, args.loader_batch, args.cpu_pairs, args.repeats, args.workers),
            "device_path_anchors_sent": pairs_per_second(anchors, args.loader_batch, args.worker_pairs, args.repeats,
                                                         args.workers),
            "device_path_gathered_worker": pairs_per_second(bare, args.loader_batch, args.worker_pairs, args.repeats,
                                                            args.workers),
            "device_path_gathered_main": gather_per_second(bare, args.loader_batch, args.worker_pairs, args.repeats),
            "device_path_gathered_both": pairs_per_second(bare, args.loader_batch, args.worker_pairs, args.repeats,
                                                          args.workers, gather=True),
        }
        device_wall, device_cpu = device_side_seconds(anchors, args.batch, args.repeats)
        results.append({
            "n": n, "anchor_px": list(anchor.shape[-2:]),
            **{f"{key}_pairs_per_cpu_s": round(cpu_rate, 1) for key, (_, cpu_rate) in rate.items()},
            **{f"{key}_pairs_per_wall_s": round(wall_rate, 1) for key, (wall_rate, _) in rate.items()},
            "device_side_cpu_s_per_batch_on_cpu": round(device_cpu, 3),
            "device_side_wall_s_per_batch_on_cpu": round(device_wall, 3),
            "anchor_mb_per_batch": round(args.batch * anchor.numel() / 2**20, 1),
        })

    print(f"\n{args.image_size}-px images from memory, {args.view_size}-px views, 1 thread, {args.workers} worker "
          f"process(es), batches of {args.loader_batch} (load average {os.getloadavg()[0]:.2f})")
    print("pairs per CPU-second of one core (wall-clock rate in brackets, lower when the cores are shared)")
    columns = [("cpu_path", "CPU path"), ("device_path_anchors_sent", "device, anchors sent"),
               ("device_path_gathered_worker", "gathered: worker"), ("device_path_gathered_main", "gathered: main"),
               ("device_path_gathered_both", "gathered: both")]
    print(f"{'n':>2} {'anchor':>10} " + " ".join(f"{title:>21}" for _, title in columns)
          + f" {'device side on CPU':>24}")
    for r in results:
        cells = " ".join(f"{r[key + '_pairs_per_cpu_s']:>10.0f} ({r[key + '_pairs_per_wall_s']:>6.0f}) p/s"
                         for key, _ in columns)
        print(f"{r['n']:>2} {'x'.join(map(str, r['anchor_px'])):>10} {cells} "
              f"{r['device_side_cpu_s_per_batch_on_cpu']:>7.2f} ({r['device_side_wall_s_per_batch_on_cpu']:.2f}) "
              f"s per {args.batch}")
    print(json.dumps({"image_size": args.image_size, "view_size": args.view_size, "threads": 1,
                      "workers": args.workers, "loader_batch": args.loader_batch, "device_side_batch": args.batch,
                      "load_average": os.getloadavg()[0], "levels": results}, indent=2))


if __name__ == "__main__":
    main()
