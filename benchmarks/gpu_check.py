"""A one-shot check of a GPU machine for pretraining: what it runs, how fast, and what feeds it.

    python benchmarks/gpu_check.py --out runs/gpu_check            # on a GPU server: at most ~8 minutes
    python benchmarks/gpu_check.py --out /tmp/check --device cpu --steps 2 --arch resnet18 --batch 8 \\
        --queue 64 --view-size 32 --image-size 64 --images 16 --workers 0   # the test suite's run

Writes ``gpu_check.json`` to ``--out`` after every section (a killed run keeps what it measured) and
prints one line per result. Sections, in order of how much they tell:

- ``environment``: versions (Python, torch, torchvision, CUDA, cuDNN), the device, CPU count.
- ``pruner``: InfoNCE forward + backward at B x K with the vectorized purposive pruner against the
  released code's per-sample loop, the whole loop (no extrapolation), and the loss difference.
- ``device_augmentation``: ``BatchTwoViewAugment.apply`` per batch at n = 0 and n = 4.
- ``model_steps``: steps/s and pairs/s of a MoCo-v2 step (no pruner) and an Adam step (pruner 0.8)
  on views already on the device, and peak GPU memory: the model alone, without torch.compile.
- ``pipelines``: the same steps fed by a DataLoader with ``--workers`` workers from 1024-px images in
  memory, on the CPU path (``AnatomyPairs`` + ``TwoViewAugment`` in the workers) and on the device
  path as pretraining runs it (``AnatomyAnchors`` without pixels in the workers, the anchors gathered
  by ``AnchorBatches`` in the main process into pinned buffers, ``BatchTwoViewAugment`` on the device
  through the engine's hook); MoCo-v2 at n = 0,
  Adam at n = 4; plus each loader alone (pairs/s it can deliver).
- ``torchrun``: two training steps under ``torchrun --nproc-per-node=1`` with an explicit process group
  (NCCL on a GPU, gloo on the CPU) and ``DistributedDataParallel``.
- ``unet``: one fine-tuning step of the U-Net (``SegmentationUNet``) at the view size.
- ``model_steps_compiled``: ``model_steps`` with ``torch.compile`` (last: compiling takes minutes).

GPU runs use bf16 autocast and channels_last (the paper profiles' settings); CPU runs use fp32.
Images are synthetic (smooth noise): the speed of reading and augmenting does not depend on content.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from edenkit import engine
from edenkit.anatomy_anchors import AnatomyAnchors, AnchorBatches, augment_batch
from edenkit.augmentation import TwoViewAugment
from edenkit.batch_augmentation import BatchTwoViewAugment
from edenkit.decomposer import AnatomyPairs
from edenkit.files import atomic_write_json
from edenkit.moco import MoCo
from edenkit.models.segmentation import SegmentationUNet
from edenkit.pretrain_data import ImageTensor
from edenkit.pruner import info_nce

sys.path.insert(0, str(Path(__file__).parent))
from bench_pruner import clustered_inputs, released_loop_loss  # noqa: E402

METHODS = {"mocov2": (0, None), "adam": (4, 0.8)}  # granularity n, prune threshold


# ------------------------------------------------------------------------------------------- helpers
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def seconds_of(function, device: torch.device, repeats: int) -> float:
    """Median seconds of ``function()`` after one warm-up call."""
    times = []
    for repeat in range(repeats + 1):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        if repeat:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def memory_images(count: int, size: int, seed: int = 0) -> ImageTensor:
    """Synthetic uint8 radiograph-sized images in memory, served as pretraining serves them."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 1, 16, 16, generator=g)
    return ImageTensor((F.interpolate(coarse, size=(size, size), mode="bilinear") * 255).round().to(torch.uint8))


def build_moco(args, device: torch.device, compiled: bool = False) -> MoCo:
    torch.manual_seed(0)
    model = MoCo(args.arch, 128, args.queue, 0.999, 0.2, 2048 if args.arch == "resnet50" else None)
    model = model.to(device).to(memory_format=torch.channels_last)
    if compiled:
        model.encoder_q.compile()
        model.encoder_k.compile()
    return model


def sgd(model: MoCo) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.encoder_q.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)


def train_steps(model, optimizer, batches, device, threshold, dtype) -> dict:
    """``engine.train_one_epoch`` over ``batches`` (an iterable of view dicts), with its own timing."""
    return engine.train_one_epoch(model, batches, optimizer, device=device, prune_threshold=threshold,
                                  autocast_dtype=dtype, channels_last=True)


def feed(loader, path: str, device: torch.device, count: int):
    """``count`` batches of views from ``loader`` (more epochs if needed); augmented on ``device`` on the device
    path (``AnchorBatches.augment_batch``, the hook the engine calls)."""
    produced = 0
    while produced < count:
        for batch in loader:
            if produced == count:
                return
            produced += 1
            yield loader.augment_batch(batch, device) if path == "device" else batch


# ------------------------------------------------------------------------------------------- sections
def environment(args, device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": __import__("torchvision").__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    with contextlib.suppress(OSError):  # DataLoader workers hand batches over through /dev/shm
        shm = os.statvfs("/dev/shm")
        info["dev_shm_gib"] = round(shm.f_frsize * shm.f_blocks / 2**30, 1)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), bf16=torch.cuda.is_bf16_supported(),
                    gpus=torch.cuda.device_count())
    return info


def pruner(args, device) -> dict:
    q, k, queue = (x.to(device) for x in clustered_inputs(args.batch, args.queue, 128))

    def step(loss_fn):
        leaf = q.clone().requires_grad_()
        loss_fn(leaf).backward()

    vectorized = seconds_of(lambda: step(lambda x: info_nce(x, k, queue, 0.2, 0.8)[0]), device, 3)
    loop = seconds_of(lambda: step(lambda x: released_loop_loss(x, k, queue, 0.2, 0.8)), device, 1)
    difference = (info_nce(q, k, queue, 0.2, 0.8)[0] - released_loop_loss(q, k, queue, 0.2, 0.8)).abs().item()
    return {"batch": args.batch, "queue": args.queue, "dim": 128, "vectorized_s": round(vectorized, 5),
            "whole_loop_s": round(loop, 4), "speedup": round(loop / vectorized, 1),
            "max_abs_loss_difference": difference, "what": "forward + backward of the loss, median"}


def device_augmentation(args, device) -> dict:
    images = memory_images(min(args.images, args.batch), args.image_size)
    result = {}
    for n in (0, 4):
        anchors = AnatomyAnchors(images, n, BatchTwoViewAugment(args.view_size))
        batch = next(iter(DataLoader(anchors, batch_size=min(args.batch, len(images)))))
        batch = {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
        seconds = seconds_of(lambda b=batch, a=anchors: a.augment.apply(b["anchor"], b["params"]), device, 5)
        count = len(batch["index"])
        result[f"n{n}"] = {"batch": count, "anchor_px": list(batch["anchor"].shape[-2:]),
                           "s_per_batch": round(seconds, 5), "pairs_per_s": round(count / seconds, 1)}
    return result


def model_steps(args, device, dtype, compiled: bool) -> dict:
    model = build_moco(args, device, compiled)
    g = torch.Generator().manual_seed(0)
    views = [{"view1": torch.rand(args.batch, 1, args.view_size, args.view_size, generator=g).to(device),
              "view2": torch.rand(args.batch, 1, args.view_size, args.view_size, generator=g).to(device)}
             for _ in range(2)]
    optimizer, result = sgd(model), {}
    for method, (_, threshold) in METHODS.items():
        start = time.perf_counter()
        train_steps(model, optimizer, views * (1 + compiled), device, threshold, dtype)  # warm-up (and compiling)
        warmup = time.perf_counter() - start
        reset_peak(device)
        stats = train_steps(model, optimizer, [views[i % 2] for i in range(args.steps)], device, threshold, dtype)
        result[method] = {"steps_per_s": round(stats["images_per_s"] / args.batch, 3),
                          "pairs_per_s": round(stats["images_per_s"], 1), "warmup_s": round(warmup, 1),
                          "peak_gpu_memory_gib": peak_memory_gib(device), "loss": round(stats["loss"], 4)}
    return result


def pipelines(args, device, dtype) -> dict:
    images = memory_images(args.images, args.image_size)
    model = build_moco(args, device)
    optimizer, workers, result = sgd(model), args.workers, {}
    for method, (n, threshold) in METHODS.items():
        for path in ("cpu", "device"):
            if path == "cpu":
                dataset = AnatomyPairs(images, n, args.view_size, augment=TwoViewAugment(args.view_size))
            else:  # as pretrain_data.pair_loader for images in memory: the main process gathers the anchors
                dataset = AnatomyAnchors(images, n, BatchTwoViewAugment(args.view_size), pixels=False)
            loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True, num_workers=workers,
                                pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                                prefetch_factor=4 if workers else None)
            if path == "device":
                loader = AnchorBatches(loader, pin=device.type == "cuda")

            list(feed(loader, path, device, 2))  # workers started and warm
            start = time.perf_counter()
            for batch in feed(loader, path, device, args.steps):
                batch["view1"].to(device, non_blocking=True).sum()  # consumed on the device
            synchronize(device)
            loader_pairs_per_s = args.steps * args.batch / (time.perf_counter() - start)
            reset_peak(device)
            stats = train_steps(model, optimizer, feed(loader, path, device, args.steps), device, threshold, dtype)
            result[f"{method}_{path}_path"] = {
                "n": n, "workers": workers, "steps_per_s": round(stats["images_per_s"] / args.batch, 3),
                "pairs_per_s": round(stats["images_per_s"], 1), "loader_alone_pairs_per_s": round(loader_pairs_per_s, 1),
                "peak_gpu_memory_gib": peak_memory_gib(device)}
            del loader
    return result


def torchrun_steps(args, device) -> dict:
    out = Path(args.out) / "torchrun_worker.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=1", "--standalone",
               str(Path(__file__).resolve()), "--ddp-worker", "--out", str(args.out), "--device", device.type,
               "--arch", args.arch, "--view-size", str(args.view_size), "--image-size", str(args.image_size),
               "--batch", str(min(args.batch, 64)), "--queue", str(args.queue)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"torchrun exited with {done.returncode}: {done.stderr[-2000:]}")
    return {**json.loads(out.read_text()), "wall_s_with_startup": round(time.perf_counter() - start, 1)}


def ddp_worker(args) -> None:
    """Run by torchrun: two DDP training steps with an explicit process group; writes the result."""
    import torch.distributed as td
    from torch.nn.parallel import DistributedDataParallel

    use_cuda = args.device == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    backend = "nccl" if use_cuda else "gloo"
    td.init_process_group(backend=backend, device_id=device if use_cuda else None)
    try:
        model = build_moco(args, device)
        net = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None, broadcast_buffers=False)
        dataset = AnatomyAnchors(memory_images(2 * args.batch, args.image_size), 4, BatchTwoViewAugment(args.view_size))
        loader = DataLoader(dataset, batch_size=args.batch, drop_last=True)
        batches = (augment_batch(b, dataset.augment, device) for b in loader)
        stats = engine.train_one_epoch(net, batches, sgd(model), device=device, prune_threshold=0.8,
                                       autocast_dtype=torch.bfloat16 if use_cuda else None, channels_last=True)
        total = torch.ones(1, device=device)
        td.all_reduce(total)
        if td.get_rank() == 0:
            atomic_write_json(Path(args.out) / "torchrun_worker.json", {
                "backend": backend, "world_size": td.get_world_size(), "steps": stats["images"] // args.batch,
                "loss": stats["loss"], "pairs_per_s": round(stats["images_per_s"], 1),
                "all_reduce_ok": total.item() == td.get_world_size()})
    finally:
        td.destroy_process_group()


def unet_step(args, device, dtype) -> dict:
    torch.manual_seed(0)
    model = SegmentationUNet(args.arch).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    batch = 8 if device.type == "cuda" else 2
    size = max(32, args.view_size // 32 * 32)
    x = torch.rand(batch, 1, size, size, device=device).contiguous(memory_format=torch.channels_last)
    target = (torch.rand(batch, 1, size, size, device=device) > 0.5).float()

    def step():
        with engine.autocast(device, dtype):
            loss = F.binary_cross_entropy_with_logits(model(x).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    reset_peak(device)
    seconds = seconds_of(step, device, 1)
    return {"arch": args.arch, "batch": batch, "px": size, "step_s": round(seconds, 4),
            "loss": round(step().item(), 4), "peak_gpu_memory_gib": peak_memory_gib(device)}


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for gpu_check.json")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--queue", type=int, default=65536)
    parser.add_argument("--view-size", type=int, default=224)
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--images", type=int, default=512, help="synthetic images in memory for the loaders")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers")
    parser.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                        help="also time torch.compile (auto: on a GPU only)")
    parser.add_argument("--time-limit", type=float, default=460, help="seconds; later sections are skipped after it")
    parser.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.ddp_worker:
        ddp_worker(args)
        return 0
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else None
    compile_too = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report: dict = {"settings": {k: v for k, v in vars(args).items() if k != "ddp_worker"},
                    "autocast": str(dtype), "channels_last": True, "sections": {}}
    sections = [
        ("environment", lambda: environment(args, device), 0),
        ("pruner", lambda: pruner(args, device), 30),
        ("device_augmentation", lambda: device_augmentation(args, device), 20),
        ("model_steps", lambda: model_steps(args, device, dtype, compiled=False), 40),
        ("pipelines", lambda: pipelines(args, device, dtype), 60),
        ("torchrun", lambda: torchrun_steps(args, device), 30),
        ("unet", lambda: unet_step(args, device, dtype), 15),
    ]
    if compile_too:
        sections.append(("model_steps_compiled", lambda: model_steps(args, device, dtype, compiled=True), 150))
    failed = False
    for name, run, needs_s in sections:
        left = args.time_limit - (time.perf_counter() - start)
        if left < needs_s:
            report["sections"][name] = {"skipped": f"{left:.0f} s left of --time-limit, this section needs ~{needs_s} s"}
        else:
            section_start = time.perf_counter()
            try:
                report["sections"][name] = {**run(), "section_s": round(time.perf_counter() - section_start, 1)}
            except Exception as e:  # a check reports what broke and goes on with the rest
                failed = True
                report["sections"][name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
            with contextlib.suppress(Exception):
                torch.cuda.empty_cache()
        print(f"[gpu_check] {name}: {json.dumps(report['sections'][name])[:2000]}", flush=True)
        report["seconds"] = round(time.perf_counter() - start, 1)
        atomic_write_json(out / "gpu_check.json", report)
    print(f"[gpu_check] done in {report['seconds']} s; {out / 'gpu_check.json'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
