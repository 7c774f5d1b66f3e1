"""The prepared GPU check runs end to end on the CPU at tiny sizes, so it cannot rot before a GPU run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path), "--device", "cpu",
               "--steps", "2", "--arch", "resnet18", "--batch", "8", "--queue", "64", "--view-size", "32",
               "--image-size", "64", "--images", "16", "--workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = report["sections"]
    assert set(sections) == {"environment", "pruner", "device_augmentation", "model_steps", "pipelines", "torchrun",
                             "unet"}  # no compile on the CPU unless asked
    assert not any("error" in s or "skipped" in s for s in sections.values()), sections
    assert sections["pruner"]["max_abs_loss_difference"] < 1e-4
    assert set(sections["pipelines"]) - {"section_s"} == {f"{m}_{p}_path" for m in ("mocov2", "adam") for p in ("cpu", "device")}
    assert sections["torchrun"]["backend"] == "gloo" and sections["torchrun"]["steps"] == 2
    assert sections["model_steps"]["adam"]["pairs_per_s"] > 0
