"""Pretrained encoders shared by the notebooks: trained once with the kit, then reused.

``get_encoder(method, profile, out_dir, seed)`` returns the path of an exported encoder (a plain
torchvision ResNet ``state_dict`` without ``fc``):

- ``"adam"``: Adam-v1, the profile's config (curriculum n = 0 -> 2 -> 4 with the purposive pruner);
- ``"mocov2"``: the MoCo-v2 baseline with the same budget: the same images for as many epochs as
  Adam's whole curriculum, in one stage at n = 0 without the pruner (``mocov2_paper`` in ``paper``);
- ``"random"``: a seeded random initialization of the same backbone, exported the same way;
- ``"adam_0"``, ``"adam_0_2"``: the paper's ablation of the curriculum cut short (n = 0 only;
  0 -> 2), taken from the same Adam run with no extra training: the best checkpoint of its first
  stage, or of its second. Each stage has its own learning-rate schedule, so a cut curriculum is a
  complete, shorter run (in ``demo``, 8 or 16 of Adam's 24 epochs);
- ``"adam_no_pruner"``: the paper's other ablation, Adam's config without the purposive pruner (its
  own run, trained on first use; not in the demo's default methods).

Profiles map to configs: ``ci`` -> ``ci``, ``demo`` -> ``demo_cpu``, ``paper`` -> ``adam_v1_paper`` /
``mocov2_paper``. Runs live in ``out_dir/models/<method>-<key>``, where ``key`` hashes the resolved
config: a changed config trains anew, an unchanged one is reused, an interrupted one resumes. The
encoder returned is the final stage's best checkpoint by validation loss, the one the paper transfers.
Real data (``paper``) is read from ``data_root`` (default: ``$EDENKIT_DATA`` or ``./datasets``); where
it is mounted is not part of the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

import torch
import yaml

from edenkit.checkpoint import export_encoder
from edenkit.config import default_data_root, to_dict
from edenkit.models.backbones import build_resnet
from edenkit.paper import KIT_TO_PAPER
from edenkit.pretrain import export_best_encoder, pretrain
from edenkit.pretrain_config import CurriculumConfig, PretrainConfig, load_pretrain_config
from edenkit.run_folder import RESUMABLE_CHANGES, RunPaths, read_log

Method = Literal["adam", "mocov2", "random", "adam_0", "adam_0_2", "adam_no_pruner"]
Profile = Literal["ci", "demo", "paper"]
METHODS = ("adam", "mocov2", "random", "adam_0", "adam_0_2", "adam_no_pruner")
TRAINED = ("adam", "mocov2", "adam_no_pruner")  # the methods with a pretraining run of their own
#: Adam's curriculum cut short: method -> the stages it keeps (their best checkpoint is the encoder).
CURRICULUM_CUTS = {"adam_0": (0,), "adam_0_2": (0, 2)}
PROFILE_CONFIGS = {
    "ci": {"adam": "ci", "mocov2": "ci"},
    "demo": {"adam": "demo_cpu", "mocov2": "demo_cpu"},
    "paper": {"adam": "adam_v1_paper", "mocov2": "mocov2_paper"},
}


def as_mocov2(cfg: PretrainConfig) -> PretrainConfig:
    """MoCo-v2 with ``cfg``'s budget: one stage at n = 0 for all of its epochs, no pruner."""
    epochs = sum(cfg.curriculum.epochs)
    return dataclasses.replace(
        cfg, name="mocov2", prune_threshold=None, curriculum=CurriculumConfig(stages=[0], epochs=[epochs])
    )


def encoder_config(
    method: Method, profile: Profile, seed: int = 0, data_root: str | None = None
) -> PretrainConfig:
    """The pretraining config that ``get_encoder`` uses for ``method`` in ``profile``."""
    if method not in TRAINED:
        raise ValueError(f"method must be one of {TRAINED} to have a pretraining config, got {method!r}")
    if profile not in PROFILE_CONFIGS:
        raise ValueError(f"profile must be one of {sorted(PROFILE_CONFIGS)}, got {profile!r}")
    if data_root is None and profile == "paper":
        data_root = str(default_data_root())  # $EDENKIT_DATA or ./datasets, as `edenkit doctor` reports
    overrides = [f"seed={seed}"] + ([f"data.root={data_root}"] if data_root else [])
    cfg = load_pretrain_config(PROFILE_CONFIGS[profile]["mocov2" if method == "mocov2" else "adam"], overrides)
    if method == "mocov2" and profile != "paper":  # the paper profile has its own mocov2_paper file
        cfg = as_mocov2(cfg)
    if method == "adam_no_pruner":
        cfg = dataclasses.replace(cfg, name="adam_no_pruner", prune_threshold=None)
    return cfg


# Keys added after runs were cached: at these values (what every earlier run trained with) they are left
# out of the hash, so that those runs are still found.
ADDED_KEYS_DEFAULTS = {"model.negatives": "queue", "data.jitter_p": 0.8, "data.blur_p": 0.5}


def _get(data: dict, dotted: str):
    for part in dotted.split("."):
        data = data.get(part, {}) if isinstance(data, dict) else None
    return data


def config_key(cfg: PretrainConfig) -> str:
    """A short hash of everything in ``cfg`` that changes what is trained."""
    data = to_dict(cfg)
    left_out = [*RESUMABLE_CHANGES, *(key for key, default in ADDED_KEYS_DEFAULTS.items() if _get(data, key) == default)]
    for dotted in left_out:
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node.pop(leaf, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def run_folder(method: Method, profile: Profile, out_dir: str | Path | None = None, seed: int = 0,
               data_root: str | None = None) -> Path:
    """Where ``get_encoder`` trains (and finds) ``method``'s run: holds ``log.jsonl`` and checkpoints.

    A curriculum cut (``adam_0``, ``adam_0_2``) has no run of its own: its encoder is exported into
    Adam's run, so that is the folder returned. ``random`` is not trained and has no run folder.
    """
    if method == "random":
        raise ValueError("random has no run folder: it is a seeded initialization, not a pretraining run")
    trained = "adam" if method in CURRICULUM_CUTS else method
    cfg = encoder_config(trained, profile, seed, data_root)
    return _models_dir(profile, out_dir) / f"{trained}-{config_key(cfg)}"


def get_encoder(
    method: Method,
    profile: Profile,
    out_dir: str | Path | None = None,
    seed: int = 0,
    *,
    data_root: str | None = None,
    nproc_per_node: int = 1,
    progress: bool = False,
) -> Path:
    """The exported encoder of ``method`` for ``profile``, training it first unless it is cached.

    ``out_dir`` defaults to ``runs/<profile>``. ``nproc_per_node`` > 1 trains under torchrun in a
    subprocess (DDP never runs inside a notebook kernel); otherwise training runs in this process.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    models = _models_dir(profile, out_dir)
    if method in CURRICULUM_CUTS:
        return _curriculum_cut(method, get_encoder("adam", profile, out_dir, seed, data_root=data_root,
                                                   nproc_per_node=nproc_per_node, progress=progress).parent,
                               encoder_config("adam", profile, seed, data_root).curriculum.stages)
    if method == "random":
        arch = load_pretrain_config(PROFILE_CONFIGS[profile]["adam"]).model.arch
        return random_encoder(arch, seed, models / f"random-{arch}-seed{seed}.pt")

    cfg = encoder_config(method, profile, seed, data_root)
    if cfg.data.dataset == "phantom":  # adam and mocov2 read the same generated images
        cfg.data.cache_dir = str(models / "data")
    cfg.progress = progress
    paths = RunPaths(models / f"{method}-{config_key(cfg)}")
    if paths.summary.is_file() and paths.encoder_best.is_file():
        return paths.encoder_best
    if nproc_per_node > 1:
        _torchrun(cfg, paths, nproc_per_node)
    else:
        pretrain(cfg, paths.root, resume="auto")
    return paths.encoder_best


def _curriculum_cut(method: str, adam_run: Path, stages: list[int]) -> Path:
    """The best checkpoint of the last stage ``method`` keeps, exported once into Adam's run folder."""
    kept = CURRICULUM_CUTS[method]
    if tuple(stages[:len(kept)]) != kept or len(stages) <= len(kept):
        raise ValueError(f"{method} keeps the stages n = {list(kept)} of a longer curriculum, but this profile's "
                         f"Adam runs n = {stages}")
    stage, n = len(kept) - 1, kept[-1]
    paths = RunPaths(adam_run)
    path = paths.stage_best_encoder(stage, n)
    return path if path.is_file() else export_best_encoder(paths.best(stage, n), path)


def random_encoder(arch: str, seed: int, path: str | Path) -> Path:
    """A seeded random initialization of ``arch`` exported like a trained encoder (global RNG untouched)."""
    path = Path(path)
    if not path.is_file():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_resnet(arch)
        export_encoder(model.state_dict(), path)
    return path


def _models_dir(profile: str, out_dir: str | Path | None) -> Path:
    return Path(out_dir if out_dir is not None else Path("runs") / profile) / "models"


def _torchrun(cfg: PretrainConfig, paths: RunPaths, nproc_per_node: int) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    requested = paths.root / "requested.yaml"
    requested.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc_per_node}",
               "-m", "edenkit", "pretrain", "--config", str(requested), "--out", str(paths.root), "--resume", "auto"]
    subprocess.run(command, check=True)


def pretraining_note(run_dir: str | Path, method: str) -> str:
    """What a pretraining run's ``log.jsonl`` says about the encoder the analyses receive.

    Per stage: the last training epoch's mean cosine between query and negatives, and the fraction of
    negatives the purposive pruner removed. Negatives at cosine near 1 mean collapsed embeddings (every
    image maps to about the same vector); a pruned fraction near 1 means the loss was ~0 and that stage
    taught the encoder nothing. Either makes a comparison of methods uninformative, so the notebooks say so.
    """
    label = KIT_TO_PAPER.get(method, method)
    log = Path(run_dir) / "log.jsonl"
    if not log.is_file():
        return f"{label}: no training log at {log}"
    last: dict[int, dict] = {}
    for record in read_log(log):
        if record.get("split") == "train":
            last[record["stage"]] = record
    parts, warnings = [], []
    for stage, r in sorted(last.items()):
        parts.append(f"stage {stage} (n={r['n']}): negatives' cosine {r['neg_sim']:.2f}, pruned {r['frac_pruned']:.0%}")
        if r["frac_pruned"] > 0.95:
            warnings.append(f"stage {stage} pruned almost every negative (loss ~0: it learned nothing)")
        elif r["neg_sim"] > 0.9:
            warnings.append(f"stage {stage} ended with collapsed embeddings (negatives' cosine {r['neg_sim']:.2f})")
    note = f"{label}: " + "; ".join(parts)
    return note + ("\n  WARNING: " + "; ".join(warnings) if warnings else "")


def get_encoders(methods, profile: Profile, out_dir: str | Path | None = None, seed: int = 0, *,
                 data_root: str | None = None, progress: bool = True) -> dict[str, Path]:
    """``get_encoder`` for each of ``methods``, printing where each encoder is and what its pretraining
    log says (the check every analysis notebook starts with: a WARNING means the comparison below says
    more about a failed pretraining than about the methods)."""
    encoders = {m: get_encoder(m, profile, out_dir, seed, data_root=data_root, progress=progress) for m in methods}
    for method, path in encoders.items():
        print(f"{method:8s} {path}")
    for method in [m for m in methods if m != "random"]:
        if method in CURRICULUM_CUTS and "adam" in methods:
            print(f"{method}: the best checkpoint of Adam's stage n = {CURRICULUM_CUTS[method][-1]} (same run)")
        else:
            print(pretraining_note(encoders[method].parent, method))
    return encoders
