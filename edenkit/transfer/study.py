"""Notebook 08's study: fine-tune every method on every task and seed, keep the scores and a few predictions.

``finetune_study`` runs the (task, seed, method) grid once: every method sees the same splits and head
initialization per seed, and the first seed's fine-tuning of each segmentation task also returns its
predicted masks on a few test images, so that no model is trained a second time for a figure.
``comparison_table`` turns ``{measure: {method: [score per run]}}`` into table rows (mean ± std per
method, a paired t-test of a reference method against each other one); any protocol with paired runs
(full fine-tuning here, few-shot trials) can use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from edenkit.stats import compare, mean_std
from edenkit.transfer.finetune import FinetuneConfig, map_jobs, run_transfer
from edenkit.transfer.metrics import prior_dice
from edenkit.transfer.tasks import TRANSFER_TASKS, transfer_splits

#: Which metric each figure axis shows; tasks of different metrics never share an axis.
METRIC_LABELS = {"dice": "Dice (%)", "iou": "IoU (%)", "auc": "mean AUC (%)"}


def finetune_job(name: str, encoder_state, splits, cfg: FinetuneConfig, seed: int, predict: int = 0) -> dict:
    """``run_transfer`` without its history; with ``predict`` > 0 on a segmentation task also
    ``"predictions"``: the first ``predict`` test images, their first class's target mask and the fine-tuned
    model's predicted mask (bool [n, H, W]). Module-level so that ``map_jobs`` can send it to workers."""
    keep = predict > 0 and TRANSFER_TASKS[name].kind == "segmentation"
    out = run_transfer(name, encoder_state, splits, cfg, seed, keep_model=keep)
    out.pop("history", None)
    if keep:
        model = out.pop("model")
        shown = [splits[2][i] for i in range(min(predict, len(splits[2])))]
        images = torch.stack([item["image"] for item in shown])
        with torch.no_grad():
            masks = torch.sigmoid(model(images.to(cfg.device)))[:, 0].cpu() > cfg.threshold
        out["predictions"] = {"images": images, "targets": torch.stack([item["masks"][0] for item in shown]) > 0.5,
                              "masks": masks}
    return out


def finetune_study(tasks: Sequence[str], encoders: dict, seeds: Sequence[int], image_size: int,
                   cfg: FinetuneConfig, phantom_counts: tuple[int, int, int] = (64, 16, 32),
                   data_root: str | None = None, workers: int = 1, predict: int = 3,
                   progress: bool = True, phantom_version: int = 1) -> dict:
    """Fine-tune every encoder of ``encoders`` (``{method: state_dict or None}``) on every task and seed.

    Each seed draws its own splits (``transfer_splits``), shared by all methods. Returns
    ``{"tasks", "seeds", "methods", "metrics": {task: metric}, "scores": {task: {method: [per seed]}},
    "runs": [one dict per fine-tuning, in grid order], "predictions": {task: {"images", "targets",
    "masks": {method: bool [n, H, W]}}}, "prior": {task: [Dice per seed]}}`` (predictions of the first
    seed, segmentation tasks only; ``prior`` is the floor of each segmentation task: the Dice of the
    majority vote of its training masks, no model).
    ``progress`` shows a bar over the fine-tunings (a widget in Jupyter, text elsewhere).
    """
    keys, jobs, prior = [], [], {}
    for task in tasks:
        for seed in seeds:
            splits = transfer_splits(task, image_size, seed, data_root, tuple(phantom_counts),
                                     phantom_version=phantom_version)
            if TRANSFER_TASKS[task].kind == "segmentation":  # the floor: where the structure usually is
                prior.setdefault(task, []).append(prior_dice(splits[0], splits[2]))
            for method, state in encoders.items():
                keys.append((task, method, seed))
                jobs.append({"name": task, "encoder_state": state, "splits": splits, "cfg": cfg, "seed": seed,
                             "predict": predict if seed == seeds[0] else 0})
    study = {"tasks": list(tasks), "seeds": list(seeds), "methods": list(encoders),
             "metrics": {task: TRANSFER_TASKS[task].metric for task in tasks},
             "scores": {task: {method: [] for method in encoders} for task in tasks}, "runs": [], "predictions": {},
             "prior": prior}
    results = tqdm(map_jobs(finetune_job, jobs, workers), total=len(jobs), desc="fine-tuning", disable=not progress)
    for (task, method, seed), out in zip(keys, results):
        study["scores"][task][method].append(out["score"])
        if "predictions" in out:
            shown = study["predictions"].setdefault(task, {key: out["predictions"][key] for key in ("images", "targets")})
            shown.setdefault("masks", {})[method] = out["predictions"]["masks"]
        study["runs"].append({"task": task, "method": method, "seed": seed,
                              **{k: v for k, v in out.items() if k != "predictions"}})
    return study


def run_line(run: dict) -> str:
    """One fine-tuning as a line: task, method, seed, score, where early stopping stopped, seconds."""
    return (f"{run['task']:17s} {run['method']:8s} seed {run['seed']}: {run['metric']} {run['score']:.3f} "
            f"(best step {run['best_step']} of {run['steps']}, {run['seconds']:.0f} s)")


def to_json(study: dict) -> dict:
    """The study without tensors: scores, per-run numbers and mean/std per (task, method)."""
    return {key: study[key] for key in ("tasks", "seeds", "methods", "metrics", "scores", "runs", "prior")} | {
        "summary": {t: {m: mean_std(v) for m, v in by_m.items()} for t, by_m in study["scores"].items()}}


def bars_by_metric(study: dict, scale: float = 100.0) -> dict[str, dict[str, dict[str, dict]]]:
    """``{metric: {task: {method: mean_std}}}`` (scaled to percent): one figure axis per metric."""
    out: dict = {}
    for task, by_method in study["scores"].items():
        out.setdefault(study["metrics"][task], {})[task] = {
            method: mean_std([scale * v for v in values]) for method, values in by_method.items()}
    return out


def comparison_table(scores: dict[str, dict[str, Sequence[float]]], reference: str | None = "adam",
                     scale: float = 100.0, digits: int = 1, paired: bool = True, label: str = "task",
                     method_labels: dict[str, str] | None = None,
                     extra: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """Rows for a methods x measures table: ``scores`` is ``{measure: {method: [score per run]}}``.

    Each row holds ``label`` (the measure), then ``extra[measure]`` (e.g. the metric), then per method
    ``"mean ± std"`` of ``scale * score``, then ``"p, <reference> vs <other>"`` from
    ``edenkit.stats.compare`` (paired when run i of every method shares its seed and data; "–" when a
    method has fewer than two runs, or paired runs differ in number). ``method_labels`` renames the method columns.
    """
    names = method_labels or {}
    rows = []
    for measure, by_method in scores.items():
        row = {label: measure, **(extra or {}).get(measure, {})}
        for method, values in by_method.items():
            s = mean_std([scale * v for v in values])
            row[names.get(method, method)] = f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"
        if reference in by_method:
            for other in [m for m in by_method if m != reference]:
                a, b = by_method[reference], by_method[other]
                p = compare(a, b, paired=paired)["p"] if min(len(a), len(b)) > 1 and not (
                    paired and len(a) != len(b)) else math.nan
                row[f"p, {names.get(reference, reference)} vs {names.get(other, other)}"] = (
                    "–" if math.isnan(p) else f"{p:.3f}")
        rows.append(row)
    return rows


def table_columns(rows: list[dict]) -> list[str]:
    """Every column of ``rows`` in first-seen order (rows may differ in their columns)."""
    return list(dict.fromkeys(column for row in rows for column in row))


#: Which paper task (a key of ``edenkit.paper.FULL_FINETUNE``) each kit task stands for, and what differs.
PAPER_TASKS: dict[str, tuple[str, str]] = {
    "phantom_heart": ("SCR heart", "phantom images and exact masks instead of JSRT films with hand-drawn "
                      "SCR outlines; small images and a few dozen training images; a kit-pretrained ResNet-18"),
    "phantom_clavicle": ("SCR clavicle", "as phantom_heart; both clavicles as one class, as in SCR"),
    "phantom_findings": ("ChestX-ray14", "4 synthetic findings (cardiomegaly, effusion, nodule, pneumothorax) "
                         "instead of 14 labels mined from reports; mean AUC over the 4"),
    "scr_heart": ("SCR heart", "the paper's task (fold 1 trains, fold 2 tests)"),
    "scr_clavicle": ("SCR clavicle", "the paper's task"),
    "chestx_det": ("ChestX-Det", "the paper's task (13 abnormalities as one binary mask, IoU)"),
    "siim_acr": ("SIIM-ACR", "the paper's task"),
    "vindr_ribcxr": ("VinDr-RibCXR", "the paper's task (20 ribs)"),
    "chestxray14": ("ChestX-ray14", "the paper's task"),
    "vindr_cxr": ("VinDr-CXR", "the paper's task"),
    "shenzhen": ("Shenzhen", "the paper's task"),
}


def paper_rows(full_finetune: dict[str, dict], tasks: Sequence[str]) -> list[dict]:
    """The paper's full fine-tuning table (``edenkit.paper.FULL_FINETUNE``) with, per paper task, the kit
    tasks of this run that stand for it (``PAPER_TASKS``) and what differs."""
    rows = []
    for paper_task, v in full_finetune.items():
        kit = [task for task in tasks if PAPER_TASKS.get(task, ("",))[0] == paper_task]
        rows.append({"paper task": paper_task, "metric": v["metric"], "Adam": v["Adam"], "MoCo-v2": v["MoCo-v2"],
                     "best other": f"{v['best_other'][0]} {v['best_other'][1]}", "random init": v["Random"],
                     "kit task here": ", ".join(f"`{t}`" for t in kit) or "–",
                     "what differs": "; ".join(PAPER_TASKS[t][1] for t in kit) or "not run in this profile"})
    return rows
