"""A pretraining run's folder: where each file goes, the log, and resuming from the last checkpoint.

Run folder (``--out``)::

    config.yaml                     the resolved config
    log.jsonl                       one record per epoch and split, plus step records when log_every > 0
    checkpoints/last.pt             written every epoch: model, queue, optimizer, scheduler, RNG,
                                    position, config (plain data, CHECKPOINT_FORMAT)
    checkpoints/best_stage<i>_n<n>.pt  the epoch of lowest validation loss within stage i (losses at
                                    different n are not comparable)
    encoder_stage<i>_n<n>.pt        the encoder exported at the end of stage i
    encoder.pt                      the final weights
    encoder_best.pt                 the final stage's best validation checkpoint (the one the paper transfers)
    summary.json

Exported encoders are plain torchvision ResNet ``state_dict``s without ``fc``. A run is resumed from
``checkpoints/last.pt`` only with the config it was written with, up to ``RESUMABLE_CHANGES``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from edenkit.checkpoint import CheckpointError, load_checkpoint
from edenkit.config import ConfigError, to_dict
from edenkit.files import atomic_write, atomic_write_text
from edenkit.moco import MoCo
from edenkit.pretrain_config import PretrainConfig

CHECKPOINT_FORMAT = "edenkit.pretrain/1"
# Keys that may change when a run is resumed: they do not change what is computed (data.root: the
# same dataset may be mounted elsewhere).
RESUMABLE_CHANGES = ("progress", "log_every", "data.num_workers", "data.cache_dir", "data.root", "compile")


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    def best(self, stage: int, n: int) -> Path:
        return self.root / "checkpoints" / f"best_stage{stage}_n{n}.pt"

    def stage_encoder(self, stage: int, n: int) -> Path:
        return self.root / f"encoder_stage{stage}_n{n}.pt"

    @property
    def encoder(self) -> Path:
        return self.root / "encoder.pt"

    @property
    def encoder_best(self) -> Path:
        return self.root / "encoder_best.pt"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"


# --------------------------------------------------------------------------------------------------- log
class JsonLog:
    """Append-only JSON-lines log, written by rank 0 (``enabled`` is False on the other ranks)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def truncate_to(self, global_epoch: int) -> None:
        """Drop records of epochs at or after ``global_epoch`` (a resumed run redoes them)."""
        if not (self.enabled and self.path.is_file()):
            return
        kept = [r for r in read_log(self.path) if r.get("global_epoch", -1) < global_epoch]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def __call__(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def read_log(path: str | Path) -> list[dict]:
    """The records of a run's ``log.jsonl`` (or of the run folder that holds it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"pretraining log not found: {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage_ends(records: list[dict], split: str = "train") -> list[dict]:
    """The last per-epoch record of each stage in a run's log."""
    ends: dict[int, dict] = {}
    for record in records:
        if record.get("split") == split:
            ends[record["stage"]] = record
    return [ends[stage] for stage in sorted(ends)]


# ------------------------------------------------------------------------------------------- checkpoints
def save_best_copy(last: Path, best: Path) -> None:
    """``best`` becomes a copy of ``last`` (the checkpoint just written), atomically."""
    with last.open("rb") as source:
        atomic_write(best, lambda f: shutil.copyfileobj(source, f))


def rng_state(device: torch.device) -> dict:
    """The global RNG states a resumed run restores (CPU, and every GPU when training on CUDA)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------------ resume
def find_resume_checkpoint(resume: str | None, paths: RunPaths) -> Path | None:
    """``None`` (fresh run), ``"auto"`` (``last.pt`` of the run folder if any) or a checkpoint path."""
    if resume is None:
        if paths.last.exists():
            raise ConfigError(f"{paths.root} already holds a run; pass --resume auto to continue it or pick another --out")
        return None
    if resume == "auto":
        return paths.last if paths.last.exists() else None
    if not Path(resume).is_file():
        raise CheckpointError(f"checkpoint to resume from not found: {resume}")
    return Path(resume)


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``"key: old -> new"`` for every key that differs, except the ``RESUMABLE_CHANGES``."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, f"{name}.")
        elif a != b and name not in RESUMABLE_CHANGES:
            diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs


def load_resume_state(path: Path, cfg: PretrainConfig, model: MoCo) -> dict:
    """Read a checkpoint written with ``cfg``, load its model state (both encoders, the queue), return it.

    The rest (position, optimizer, scheduler, scaler, RNG) is for the stage it stopped in to restore.
    """
    state = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an edenkit pretraining checkpoint")
    diffs = config_differences(state["config"], to_dict(cfg))
    if diffs:
        raise ConfigError(f"{path} was written with another config ({'; '.join(diffs[:3])})")
    model.load_state_dict(state["model"])
    return state
