"""``python -m edenkit phantom generate|export|bench``: write phantoms, export real layouts, time generation."""

from __future__ import annotations

import torch

from edenkit.phantom import export as phantom_export
from edenkit.phantom.render import FINDINGS, PhantomConfig, generate


def _prevalence(items: list[str] | None) -> dict[str, float]:
    out = dict(PhantomConfig().prevalence)
    for item in items or []:
        name, _, value = item.partition("=")
        if name not in FINDINGS or not value:
            raise ValueError(f"--prevalence {item!r}: expected FINDING=P with FINDING one of {FINDINGS}")
        out[name] = float(value)
    return out


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    gen = sub.add_parser("generate", help="write N phantom PNGs, overlays and their ground truth (JSON)")
    exp = sub.add_parser("export", help="write N phantoms in a real dataset's on-disk layout")
    bench = sub.add_parser("bench", help="print the generation rate (images/s, one core)")
    for p in (gen, exp):
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--n", type=int, default=16, help="number of images")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--prevalence", nargs="*", metavar="FINDING=P", help="e.g. nodule=0.3 effusion=0.2")
    gen.add_argument("--size", type=int, default=256)
    exp.add_argument("--layout", required=True, choices=("chestxray14", "jsrt_scr"))
    exp.add_argument(
        "--size", type=int, default=None, help="pixels (default: the real dataset's, 1024 / 2048)"
    )
    exp.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    bench.add_argument("--n", type=int, default=200, help="images per size")
    bench.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    bench.add_argument("--json", default=None, help="also write the rates to this JSON file")


def run(args) -> int:
    import json

    if args.action == "bench":
        rates = benchmark(args.sizes, args.n)
        for size, rate in rates.items():
            print(
                f"phantom {size:>4} px: {rate['cpu']:7.1f} images/s by CPU time ({1000.0 / rate['cpu']:5.1f} ms "
                f"per image), {rate['wall']:7.1f} images/s by wall clock (one thread, {args.n} images)"
            )
        if args.json:
            from pathlib import Path

            Path(args.json).write_text(json.dumps({"images_per_second": rates, "n": args.n}, indent=2) + "\n")
        return 0
    config = PhantomConfig(prevalence=_prevalence(args.prevalence))
    if args.action == "generate":
        out = phantom_export.write_samples(args.out, args.n, args.size, args.seed, config)
    elif args.layout == "chestxray14":
        out = phantom_export.export_chestxray14(
            args.out, args.n, args.size or 1024, args.seed, config=config, overwrite=args.overwrite
        )
    else:
        out = phantom_export.export_jsrt_scr(
            args.out, args.n, args.seed, size=args.size or 2048, config=config, overwrite=args.overwrite
        )
    print(f"wrote {args.n} phantoms to {out}")
    return 0


def benchmark(sizes=(64, 128, 256), n: int = 200) -> dict[int, dict[str, float]]:
    """Images per second of :func:`generate` at each size on one thread: from wall-clock time, and
    from this process's CPU time (which other programs on a busy machine do not inflate)."""
    import time

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # NumPy and SciPy run these operations on one thread anyway
    try:
        rates = {}
        for size in sizes:
            generate(0, size=size)  # warm-up
            wall, cpu = time.perf_counter(), time.process_time()
            for seed in range(n):
                generate(seed, size=size)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rates[int(size)] = {"wall": n / wall, "cpu": n / max(cpu, 1e-9)}
        return rates
    finally:
        torch.set_num_threads(threads)
