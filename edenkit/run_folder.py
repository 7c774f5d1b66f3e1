"""A pretraining run's folder: where each file goes, the log, and resuming from the last checkpoint.

Run folder (``--out``)::

    config.yaml                     the resolved config
    log.jsonl                       one record per epoch and split, plus step records when log_every > 0
    checkpoints/last.pt             written every epoch: model, queue, optimizer, scheduler, RNG,
                                    position, config (plain data, CHECKPOINT_FORMAT)
    checkpoints/best_stage<i>_n<n>.pt  the epoch of lowest validation loss within stage i (losses at
                                    different n are not comparable)
    encoder_stage<i>_n<n>.pt        the encoder exported at the end of stage i
    encoder_best_stage<i>_n<n>.pt   best_stage<i>_n<n>.pt's encoder, when the zoo asks for it (adam_0, adam_0_2)
    encoder.pt                      the final weights
    encoder_best.pt                 the final stage's best validation checkpoint (the one the paper transfers)
    summary.json

Exported encoders are plain torchvision ResNet ``state_dict``s without ``fc``. A run is resumed from
``checkpoints/last.pt`` only with the config it was written with, up to ``RESUMABLE_CHANGES``.

Before any set-up, :func:`prepare_run_folder` makes sure the folder can be written and holds the
checkpoints of the model being built, and removes the temporary files a killed write left. A log
line torn by a kill mid-append is dropped with a warning; a full disk while writing ``last.pt``
leaves the previous one intact and says so.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from edenkit.checkpoint import CheckpointError, atomic_save, load_checkpoint
from edenkit.config import ConfigError, to_dict
from edenkit.files import atomic_write, atomic_write_text, remove_stale_temp_files
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

    def stage_best_encoder(self, stage: int, n: int) -> Path:
        """``best(stage, n)``'s encoder, exported on demand (the curriculum cut short at that stage)."""
        return self.root / f"encoder_best_stage{stage}_n{n}.pt"

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
    """The records of a run's ``log.jsonl`` (or of the run folder that holds it).

    A last line that is not JSON is what a kill in the middle of an append leaves: it is dropped,
    with one warning line. Anywhere else, such a line is damage and raises ``ValueError``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"pretraining log not found: {path}")
    lines = [(number, line) for number, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    records = []
    for k, (number, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if k < len(lines) - 1:
                raise ValueError(f"{path}:{number}: not a JSON record ({e}); the log is damaged") from e
            print(f"[pretrain] warning: {path}:{number}: dropped a torn last line (a run killed while "
                  f"writing it): {line[:60]!r}", file=sys.stderr, flush=True)
    return records


def stage_ends(records: list[dict], split: str = "train") -> list[dict]:
    """The last per-epoch record of each stage in a run's log."""
    ends: dict[int, dict] = {}
    for record in records:
        if record.get("split") == split:
            ends[record["stage"]] = record
    return [ends[stage] for stage in sorted(ends)]


# ------------------------------------------------------------------------------------------- the folder
def checkpoint_bytes(model: MoCo) -> int:
    """Bytes of a ``last.pt`` of ``model``: both encoders, the queue, and SGD's momentum of the student."""
    state = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    momentum = sum(p.numel() * p.element_size() for p in model.encoder_q.parameters())
    return state + momentum


def run_bytes(model: MoCo, stages: int) -> int:
    """Bytes a whole run writes at its peak: ``last.pt`` and its next version, one best copy per stage,
    and the exported encoders (one per stage and the two final ones)."""
    encoder = sum(t.numel() * t.element_size() for t in model.backbone.state_dict().values())
    return checkpoint_bytes(model) * (2 + stages) + encoder * (stages + 2)


def prepare_run_folder(paths: RunPaths, needed: int) -> list[Path]:
    """Create ``paths.root``, check it is writable and has ``needed`` bytes free; returns the stale
    temporary files it removed. Raises ``ConfigError`` naming ``--out`` and what was wrong."""
    root = paths.root
    try:
        (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {root}: cannot create the folder ({e.strerror or e})") from e
    stale = remove_stale_temp_files(root) + remove_stale_temp_files(root / "checkpoints")
    try:  # the probe is named like the atomic writes' temporary files, so a kill here leaves no litter
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=root / "checkpoints")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"--out {root}: not writable ({e.strerror or e})") from e
    # the files a run rewrites in place count as free: their new versions replace them
    existing = sum(f.stat().st_size for f in [*root.glob("*.pt"), *(root / "checkpoints").glob("*.pt")])
    free = shutil.disk_usage(root).free
    if free + existing < needed:
        raise ConfigError(f"--out {root}: {_mb(free)} free on its disk, but the run's checkpoints need about "
                          f"{_mb(needed - existing)}; free some space or choose another --out")
    if stale:
        print(f"[pretrain] removed {len(stale)} temporary file(s) an interrupted write left in {root}: "
              f"{', '.join(p.name for p in stale[:3])}", file=sys.stderr, flush=True)
    return stale


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def disk_full(error: BaseException) -> bool:
    """Whether ``error``, or one it was raised from, says the disk (or the quota) is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


# ------------------------------------------------------------------------------------------- checkpoints
def save_last(state: dict, paths: RunPaths) -> None:
    """Write ``checkpoints/last.pt`` atomically; a full disk leaves the previous one and says so."""
    try:
        atomic_save(state, paths.last)
    except (OSError, RuntimeError) as e:  # torch reports a short write as RuntimeError("unexpected pos ...")
        if not disk_full(e):
            raise
        kept = f"the previous {paths.last} is intact" if paths.last.is_file() else "no earlier checkpoint exists"
        raise CheckpointError(f"cannot write {paths.last}: no space left on device; {kept}. Free some space "
                              "and rerun with --resume auto") from e


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


# Keys the config gained after checkpoints were written with CHECKPOINT_FORMAT: a checkpoint without one
# was written by code that behaved as the listed values do (data.augment: those runs augmented on the CPU,
# which `auto` also does unless the resumed run trains on CUDA).
KEYS_ADDED_LATER = {"data.augment": ("cpu", "auto"), "data.phantom_version": (1,)}


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``"key: old -> new"`` for every key that differs, except the ``RESUMABLE_CHANGES`` and a key added
    later (``KEYS_ADDED_LATER``) that an old checkpoint lacks and the new config sets compatibly."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if key not in old and b in KEYS_ADDED_LATER.get(name, ()):
            continue
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
