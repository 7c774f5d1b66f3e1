"""``python -m edenkit pretrain``: Adam / MoCo-v2 pretraining, set up and run stage by stage.

    python -m edenkit pretrain --config demo_cpu [--out DIR] [--resume auto|PATH] [key=value ...]
    torchrun --nproc-per-node=4 -m edenkit pretrain --config adam_v1_paper --data-root /data/chestxray14

:func:`pretrain` sets up the processes, the images and the model, resumes from a checkpoint if asked,
runs the stages of the curriculum (``edenkit.curriculum.run_stage``: n = 0 -> 2 -> 4 for Adam-v1, one
stage n = 0 without the pruner for MoCo-v2) and exports the final encoders. The parts: the config in
``edenkit.pretrain_config``, the images and view pairs in ``edenkit.pretrain_data``, the run folder's
layout, log and resume in ``edenkit.run_folder``, one epoch in ``edenkit.engine``.

Exported encoders are plain torchvision ResNet ``state_dict``s without ``fc``.
"""

from __future__ import annotations

import argparse
import inspect
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from edenkit import curriculum, dist
from edenkit.checkpoint import export_encoder, load_checkpoint
from edenkit.config import to_dict
from edenkit.files import atomic_write_json, atomic_write_text
from edenkit.moco import MoCo
from edenkit.pretrain_config import (
    PretrainConfig,
    autocast_dtype,
    check_config,
    describe,
    load_pretrain_config,
)
from edenkit.pretrain_data import anatomy_pairs, open_images
from edenkit.run_folder import (
    JsonLog,
    RunPaths,
    find_resume_checkpoint,
    load_resume_state,
    prepare_run_folder,
    read_log,
    run_bytes,
    stage_ends,
)

# The names notebooks use, importable from here as before the split into the modules above.
__all__ = [
    "PretrainConfig", "PretrainResult", "RunPaths", "add_arguments", "anatomy_pairs", "build_model", "describe",
    "load_pretrain_config", "pretrain", "read_log", "run", "stage_ends", "torchrun_command",
]


@dataclass
class PretrainResult:
    out_dir: Path
    encoder: Path  # final weights
    encoder_best: Path  # final stage's best validation checkpoint
    model: MoCo  # the trained model (on its device), e.g. to compare ranks in tests
    seconds: float  # wall time of the training, summed over resumed sessions


def build_model(cfg: PretrainConfig) -> MoCo:
    m = cfg.model
    return MoCo(m.arch, m.dim, m.queue_size, m.momentum, m.temperature, m.mlp_hidden, m.bn_splits, m.negatives)


def pretrain(cfg: PretrainConfig, out_dir: str | Path, resume: str | None = None) -> PretrainResult:
    """Run the curriculum of ``cfg`` into ``out_dir`` (resuming from ``resume``: None, "auto" or a path).

    Works in one process or under torchrun (rank 0 writes the files). Returns the exported encoders.
    """
    env, device = dist.setup(cfg.device)
    check_config(cfg, env.world_size)
    paths = RunPaths(Path(out_dir))
    main = dist.is_main()
    dtype = autocast_dtype(cfg.precision, device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    checkpoint_path = find_resume_checkpoint(resume, paths)
    if main:  # before any data or model set-up, so a bad --out fails in a second
        with torch.device("meta"):  # the model's shapes without its memory, to size its checkpoints
            sizing = build_model(cfg)
        prepare_run_folder(paths, run_bytes(sizing, len(cfg.curriculum.stages)))

    torch.manual_seed(cfg.seed)
    train_images, val_images = open_images(cfg.data, "train"), open_images(cfg.data, "val")
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    state = load_resume_state(checkpoint_path, cfg, model) if checkpoint_path is not None else None
    if cfg.compile:  # in place, so state_dict keys stay those of the plain modules
        model.encoder_q.compile()
        model.encoder_k.compile()
    net = _distributed(model, device) if env.is_distributed else model

    log = JsonLog(paths.log, enabled=main)
    if main:
        paths.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(paths.config, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    first_stage = state["stage"] if state else 0
    seconds_before = state["seconds"] if state else 0.0
    log.truncate_to(sum(cfg.curriculum.epochs[:first_stage]) + state["epoch"] if state else 0)
    start = time.perf_counter()

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - start

    for stage in range(first_stage, len(cfg.curriculum.stages)):
        curriculum.run_stage(
            cfg, stage, model, net, train_images, val_images, device=device, autocast_dtype=dtype, scaler=scaler,
            paths=paths, log=log, elapsed=elapsed, resume=state if stage == first_stage else None,
        )

    seconds = elapsed()
    if main:
        _export_final(paths, model, cfg.curriculum.stages)
        atomic_write_json(paths.summary, {
            "config": to_dict(cfg), "seconds": seconds, "world_size": env.world_size, "device": str(device),
            "autocast": str(dtype), "encoder": str(paths.encoder), "encoder_best": str(paths.encoder_best),
        })
    dist.barrier()
    return PretrainResult(paths.root, paths.encoder, paths.encoder_best, model, seconds)


def _distributed(model: MoCo, device: torch.device) -> DistributedDataParallel:
    """``model`` in DDP without a buffer broadcast before every forward.

    The queue stays identical on all ranks by construction (all-gathered keys) and BN statistics are
    averaged once per epoch (``dist.average_batchnorm_stats``).
    """
    device_ids = [device.index] if device.type == "cuda" else None
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(
        DistributedDataParallel).parameters else {"broadcast_buffers": False})  # torch < 2.14 spelling
    return DistributedDataParallel(model, device_ids=device_ids, **no_sync)


def _export_final(paths: RunPaths, model: MoCo, stages: list[int]) -> None:
    """``encoder.pt`` (last weights) and ``encoder_best.pt`` (the final stage's best validation loss)."""
    export_encoder(model.backbone.state_dict(), paths.encoder)
    export_best_encoder(paths.best(len(stages) - 1, stages[-1]), paths.encoder_best)


def export_best_encoder(checkpoint: Path, path: Path) -> Path:
    """The student's backbone in a stage's best checkpoint (``checkpoints/best_stage<i>_n<n>.pt``),
    exported like every encoder."""
    best = load_checkpoint(checkpoint)["model"]
    prefix = "encoder_q.backbone.net."
    return export_encoder({k[len(prefix):]: v for k, v in best.items() if k.startswith(prefix)}, path)


# --------------------------------------------------------------------------------------------------- CLI
def torchrun_command(
    config: str, out: str, nproc_per_node: int = 4, nnodes: int = 1, master_addr: str = "node0",
    master_port: int = 29500, overrides: list[str] | None = None, data_root: str | None = None,
) -> str:
    """The shell command that runs ``config`` under torchrun (run it on every node when ``nnodes`` > 1)."""
    parts = ["torchrun", f"--nproc-per-node={nproc_per_node}"]
    if nnodes > 1:
        parts += [f"--nnodes={nnodes}", "--node-rank=$NODE_RANK", f"--master-addr={master_addr}",
                  f"--master-port={master_port}"]
    parts += ["-m", "edenkit", "pretrain", "--config", config, "--out", out, "--resume", "auto"]
    if data_root:
        parts += ["--data-root", data_root]
    return " ".join(parts + list(overrides or []))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="ci, demo_cpu, adam_v1_paper, mocov2_paper, or a YAML file")
    parser.add_argument("--out", type=Path, help="run folder (default: runs/pretrain/<config name>)")
    parser.add_argument("--resume", metavar="auto|PATH", help="continue from the run folder's last checkpoint or PATH")
    parser.add_argument("--data-root", help="folder of the real dataset (sets data.root)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.01")


def run(args: argparse.Namespace) -> int:
    """Errors go to the CLI's error boundary (``edenkit.cli``): one line and exit code 2 for bad input."""
    overrides = list(args.overrides) + ([f"data.root={args.data_root}"] if args.data_root else [])
    try:
        cfg = load_pretrain_config(args.config, overrides)
        out = args.out or Path("runs") / "pretrain" / Path(args.config).stem
        result = pretrain(cfg, out, resume=args.resume)
        main = dist.is_main()
    finally:
        dist.cleanup()
    if main:
        print(f"pretraining done in {result.seconds:.1f} s; encoder: {result.encoder} (best: {result.encoder_best})")
    return 0
