"""``python -m edenkit doctor``: what this machine offers the kit."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from edenkit.config import default_data_root

PACKAGES = (
    "torch", "torchvision", "numpy", "scikit-learn", "segmentation-models-pytorch", "matplotlib",
    "papermill", "nbval", "ipywidgets", "pydicom",
)


def report(data_root: str | Path | None = None) -> dict:
    """Facts about the machine as a dict (the notebook 00 shows it as a table)."""
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    gpu_usable, gpus = False, []
    if torch.cuda.is_available():
        try:
            torch.ones(1, device="cuda").add_(1)
            gpu_usable = True
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except RuntimeError as e:  # a driver that is present but unusable
            gpus = [f"unusable: {e}"]
    root = Path(data_root) if data_root else default_data_root()
    datasets = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_build": torch.version.cuda or "none",
        "gpu_usable": gpu_usable,
        "gpus": gpus,
        "mps_usable": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "device": "cuda" if gpu_usable else "cpu",
        "data_root": str(root.resolve()),
        "datasets_found": datasets,
        "packages": versions,
    }


def format_report(info: dict) -> str:
    lines = []
    for key, value in info.items():
        if key == "packages":
            lines.append("packages:")
            lines += [f"  {name:<28} {ver}" for name, ver in value.items()]
        else:
            lines.append(f"{key:<18} {value}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", default=None, help="folder of downloaded datasets (default: $EDENKIT_DATA or ./datasets)")


def run(args: argparse.Namespace) -> int:
    print(format_report(report(args.data_root)))
    return 0
