"""The few-shot protocol: heart and clavicle segmentation from 3, 6, 12 and 24 labelled images.

For each trial t a seeded permutation of the labelled pool is drawn once; the n-shot training set is its
first n images, so the 3 images of a trial are among its 6, its 6 among its 12, and every method is
fine-tuned on exactly the same images (paired comparisons). Each task is a separate one-class U-Net,
validated and tested on fixed sets. "clavicle" is both clavicles as ONE class, as in SCR and the
paper's table; any single mask is a task by its name too (an individual rib: ``rib_right_5``). The
paper does not say how its few-shot images were chosen nor how many trials it ran; the kit uses fixed
seeds and reports mean and std over ``trials``.

The prior-only baseline (:data:`PRIOR`) is scored beside every encoder: the majority vote of the same
n training masks (:func:`edenkit.transfer.metrics.majority_vote`), one fixed mask for every test image,
no model. Where it is close to the fine-tuned U-Nets, the task is answered by where the structure
usually is, and says little about the encoder (measured at 64 px on the phantom: 77 Dice for the heart
from 3 masks against 88 for a random-init U-Net). :func:`paired_tests` compares every method with
MoCo-v2, random init and the prior, trial by trial.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Subset

from edenkit.checkpoint import add_encoder_arguments, parse_encoder_specs, resolve_encoder
from edenkit.data.datasets import SCR, group_split
from edenkit.files import atomic_write_text
from edenkit.phantom import PhantomConfig, PhantomDataset, add_version_argument
from edenkit.stats import compare, mean_std
from edenkit.transfer.finetune import FinetuneConfig, finetune_segmentation, map_jobs
from edenkit.transfer.metrics import prior_dice
from edenkit.transfer.tasks import MaskGroups, in_memory, structure_group

SHOTS = (3, 6, 12, 24)
TASKS = ("heart", "clavicle")
#: The name of the prior-only baseline among the methods of a result.
PRIOR = "prior"
#: What every method is compared with, trial by trial (those present in the result).
BASELINES = ("mocov2", "random", PRIOR)
#: Seed of trial t's permutation of the labelled pool (fixed, so any two runs draw the same images).
TRIAL_SEEDS = (11, 23, 37, 41, 53, 67, 71, 83, 97, 101)


def trial_indices(pool_size: int, trial: int, n: int) -> list[int]:
    """The ``n`` pool indices of trial ``trial`` (the first ``n`` of the trial's fixed permutation)."""
    if trial >= len(TRIAL_SEEDS):
        raise ValueError(f"trial {trial}: only {len(TRIAL_SEEDS)} fixed trial seeds are defined")
    if n > pool_size:
        raise ValueError(f"{n}-shot needs at least {n} labelled images, the pool has {pool_size}")
    order = torch.randperm(pool_size, generator=torch.Generator().manual_seed(TRIAL_SEEDS[trial]))
    return order[:n].tolist()


def run_fewshot(
    encoders: dict[str, dict[str, torch.Tensor] | None],
    pool,
    val_set,
    test_set,
    structures: Sequence[str],
    tasks: Sequence[str] = TASKS,
    shots: Sequence[int] = SHOTS,
    trials: int = 5,
    cfg: FinetuneConfig | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = print,
    with_prior: bool = True,
) -> dict:
    """Fine-tune every encoder on every (task, n, trial); return per-trial test Dice (fractions).

    ``pool``, ``val_set`` and ``test_set`` are item lists/datasets with ``masks`` named by ``structures``
    (the phantom's or SCR's names); ``tasks`` are keys of :data:`edenkit.transfer.tasks.STRUCTURE_GROUPS`.
    ``workers`` > 1 runs the fine-tunings in that many single-threaded processes. ``with_prior`` adds the
    prior-only baseline as the method :data:`PRIOR` (same training masks, no training).
    Returns ``{"dice": {method: {task: {n: [dice per trial]}}}, "seconds": {method: s}, "shots", "trials",
    "config"}``.
    """
    cfg = cfg or FinetuneConfig()
    jobs, keys = [], []
    prior: dict = {t: {n: [] for n in shots} for t in tasks}
    for task in tasks:
        groups = {task: structure_group(task)}
        task_pool = MaskGroups(pool, groups, structures)
        task_val, task_test = (in_memory(MaskGroups(s, groups, structures)) for s in (val_set, test_set))
        for n in shots:
            for trial in range(trials):
                train = Subset(task_pool, trial_indices(len(pool), trial, n))
                prior[task][n].append(prior_dice(train, task_test))
                for method, state in encoders.items():
                    keys.append((method, task, n, trial))
                    jobs.append({"encoder_state": state, "train_set": train, "val_set": task_val,
                                 "test_set": task_test, "classes": [task], "cfg": cfg, "seed": TRIAL_SEEDS[trial]})
    dice: dict = {m: {t: {n: [None] * trials for n in shots} for t in tasks} for m in encoders}
    seconds = dict.fromkeys(encoders, 0.0)
    for (method, task, n, trial), out in zip(keys, map_jobs(finetune_segmentation, jobs, workers)):
        dice[method][task][n][trial] = out["dice"][task]
        seconds[method] += out["seconds"]
        if log:
            log(f"{task:8s} {n:2d}-shot trial {trial}  {method:8s} Dice {out['dice'][task]:.3f} "
                f"(best step {out['best_step']}, {out['seconds']:.1f} s)")
    if with_prior:
        dice[PRIOR], seconds[PRIOR] = prior, 0.0
    return {"dice": dice, "seconds": seconds, "shots": list(shots), "trials": trials,
            "config": dataclasses.asdict(cfg)}


def paired_tests(results: dict, baselines: Sequence[str] = BASELINES) -> dict:
    """``{method: {task: {n: {baseline: compare(...)}}}}``: paired t-tests over trials, Dice in percent.

    Trials share their images (and the decoder's initialization), so method and baseline are paired;
    a method is not compared with itself, and a baseline absent from ``results`` is skipped.
    """
    dice = results["dice"]
    out: dict = {}
    for method, by_task in dice.items():
        for task, by_n in by_task.items():
            for n, runs in by_n.items():
                for base in (b for b in baselines if b in dice and b != method):
                    out.setdefault(method, {}).setdefault(task, {}).setdefault(n, {})[base] = compare(
                        [100 * d for d in runs], [100 * d for d in dice[base][task][n]], paired=True)
    return out


def summarize(results: dict) -> dict:
    """``{method: {task: {n: {"mean", "std", "n"}}}}`` in percent, like the paper's table."""
    return {
        method: {task: {n: mean_std([100 * d for d in runs]) for n, runs in by_n.items()} for task, by_n in tasks.items()}
        for method, tasks in results["dice"].items()
    }


def to_json(results: dict) -> str:
    """JSON with shot counts as string keys (JSON objects have string keys only) and NaN as null
    (a t-test over one trial has no p-value)."""
    def fix(obj):
        if isinstance(obj, dict):
            return {str(k): fix(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [fix(v) for v in obj]
        return None if isinstance(obj, float) and obj != obj else obj

    return json.dumps(fix(results), indent=2)


def phantom_fewshot_data(pool_size: int, n_val: int, n_test: int, size: int, seed: int = 0,
                         tasks: Sequence[str] = TASKS, version: int = 1):
    """In-memory phantom pool, validation and test sets (disjoint patients) and their mask names.

    The phantom renders the masks ``tasks`` need (e.g. ``rib_right_5``) besides its default ones.
    """
    default = PhantomDataset(0, size=size).structures
    structures = tuple(dict.fromkeys([*default, *(s for t in tasks for s in structure_group(t))]))
    config = PhantomConfig(version=version)
    datasets = [PhantomDataset(n, size=size, seed=seed * 10 + k + 1, config=config, structures=structures)
                for k, n in enumerate((pool_size, n_val, n_test))]
    return (*(in_memory(d) for d in datasets), datasets[0].structures)


def scr_fewshot_data(root: str | Path, size: int = 224, val_fraction: float = 0.2, seed: int = 0):
    """SCR: the labelled pool and the validation set from fold 1 (patient-disjoint), the test set = fold 2."""
    fold1 = SCR(root, "fold1", size)
    split = group_split([r.patient_id for r in fold1.records], {"pool": 1 - val_fraction, "val": val_fraction}, seed)
    pool, val = Subset(fold1, split["pool"]), Subset(fold1, split["val"])
    return in_memory(pool), in_memory(val), in_memory(SCR(root, "fold2", size)), fold1.mask_names


# ----------------------------------------------------------------------------------------------------
# CLI: python -m edenkit fewshot
# ----------------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    add_encoder_arguments(parser)
    parser.add_argument("--data", choices=("phantom", "scr"), default="phantom")
    parser.add_argument("--data-root", default=None, help="folder holding scr/ and jsrt/ (for --data scr)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pool", type=int, default=48, help="phantom: labelled pool size")
    parser.add_argument("--n-val", type=int, default=16)
    parser.add_argument("--n-test", type=int, default=32)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS),
                        help="heart, clavicle, lungs or any one mask by name (e.g. rib_right_5)")
    parser.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="fine-tunings run in parallel processes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-init baseline and the data")
    add_version_argument(parser)
    parser.add_argument("--out", required=True, help="JSON file to write")


def run(args) -> int:
    if args.data == "scr":
        if not args.data_root:
            raise SystemExit("fewshot: --data scr needs --data-root (the folder with scr/ and jsrt/)")
        pool, val, test, structures = scr_fewshot_data(args.data_root, args.size, seed=args.seed)
    else:
        pool, val, test, structures = phantom_fewshot_data(args.pool, args.n_val, args.n_test, args.size, args.seed,
                                                           args.tasks, args.phantom_version)
    encoders = {name: resolve_encoder(spec, args.arch, args.seed)
                for name, spec in parse_encoder_specs(args.encoder).items()}
    cfg = FinetuneConfig(arch=args.arch, batch_size=args.batch_size, max_steps=args.max_steps,
                         eval_every=args.eval_every, patience=args.patience, device=args.device)
    results = run_fewshot(encoders, pool, val, test, structures, args.tasks, args.shots, args.trials, cfg,
                          workers=args.workers)
    results["summary"] = summarize(results)
    results["paired_tests"] = paired_tests(results)
    results["data"] = args.data
    for task in args.tasks:
        for n in args.shots:
            cells = ", ".join(f"{m} {s[task][n]['mean']:.1f} ± {s[task][n]['std']:.1f}"
                              for m, s in results["summary"].items())
            print(f"{task} {n}-shot Dice (%): {cells}")
    atomic_write_text(args.out, to_json(results))
    print(f"wrote {args.out}")
    return 0
