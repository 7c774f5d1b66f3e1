"""Figures and tables for the transfer and anatomy analyses (notebooks 05-08).

Every figure function returns its figure, so that a notebook shows it and a test can check it; table
functions return Markdown strings (``IPython.display.Markdown`` renders them). Numbers from
``edenkit.paper`` are always labelled as the paper's, next to (never mixed with) this run's.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy.stats import gaussian_kde

from edenkit import paper
from edenkit.analysis.compositionality import sub_patch_boxes
from edenkit.analysis.locality import landmark_patches
from edenkit.viz.common import show_grey

METHOD_COLOURS = {"adam": "tab:red", "mocov2": "tab:blue", "random": "tab:gray", "imagenet": "tab:green",
                  "prior": "black", "adam_0": "lightsalmon", "adam_0_2": "tab:orange",
                  "adam_no_pruner": "tab:purple"}
METHOD_LABELS = {"adam": "Adam (kit)", "mocov2": "MoCo-v2 (kit)", "random": "random init", "imagenet": "ImageNet",
                 "prior": "prior only (majority vote)", "adam_0": "Adam, n = 0 only",
                 "adam_0_2": "Adam, n = 0 -> 2", "adam_no_pruner": "Adam without the pruner"}
REFERENCE_LABELS = {"raw_pixels": "floor: raw pixels", "thumbnail_4x4": "floor: 4x4 thumbnail",
                    "random_init": "floor: random init", "supervised_cnn": "ceiling: supervised CNN"}


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _colour(method: str, index: int) -> str:
    return METHOD_COLOURS.get(method, f"C{index}")


# ----------------------------------------------------------------------------------------------------
# Locality
# ----------------------------------------------------------------------------------------------------


def show_landmark_patches(image: torch.Tensor, landmarks, names: Sequence[str], patch_size: int) -> Figure:
    """The image with a box around each landmark, and the patches that are embedded."""
    n = len(names)
    fig = plt.figure(figsize=(12, 4.2))
    grid = fig.add_gridspec(2, n // 2 + 2 + n % 2)
    ax = fig.add_subplot(grid[:, :2])
    show_grey(ax, image, "landmarks and their patches")
    cmap = plt.get_cmap("tab10")
    points = np.asarray(landmarks)
    for i, (x, y) in enumerate(points):
        half = patch_size / 2
        ax.add_patch(Rectangle((x - half, y - half), patch_size, patch_size, fill=False, edgecolor=cmap(i), lw=1.5))
        ax.plot(x, y, "+", color=cmap(i), ms=6)
    patches, _, _ = landmark_patches(image[None], torch.as_tensor(points, dtype=torch.float32)[None], patch_size)
    cols = n // 2 + n % 2
    for i in range(n):
        sub = fig.add_subplot(grid[i // cols, 2 + i % cols])
        show_grey(sub, patches[i], names[i].replace("_", " "))
        for spine in sub.spines.values():
            spine.set_edgecolor(cmap(i))
            spine.set_linewidth(2)
    fig.tight_layout()
    return fig


def plot_tsne(maps: dict[str, tuple[np.ndarray, np.ndarray]], names: Sequence[str],
              scores: dict[str, dict] | None = None) -> Figure:
    """One t-SNE panel per method, points coloured by landmark; ``scores`` adds kNN/silhouette to titles."""
    fig, axes = plt.subplots(1, len(maps), figsize=(4.3 * len(maps), 4.6), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (method, (points, labels)) in zip(axes[0], maps.items()):
        for i, name in enumerate(names):
            sel = labels == i
            ax.scatter(points[sel, 0], points[sel, 1], s=7, color=cmap(i % 10), label=name.replace("_", " "))
        title = _label(method)
        if scores and method in scores:
            s = scores[method]
            title += f"\nkNN {s['knn_accuracy']:.2f}, silhouette {s['silhouette']:.2f}"
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, texts = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=5, fontsize=8, markerscale=2, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_locality_references(methods: dict[str, dict], references: dict) -> Figure:
    """Identification accuracy per protocol (kNN, nearest centroid with n references): each method's
    score as a marker, the floors as grey dashed ticks, the ceiling as a black tick, chance dotted.

    ``methods`` maps a method to ``locality_report`` output (``knn_accuracy``, ``centroid``);
    ``references`` is ``locality_references`` output.
    """
    protocols = ["knn"] + [n for n in next(iter(references["floors"].values()))["centroid"]]
    names = ["kNN (all refs)" if p == "knn" else f"centroid, {p} ref" for p in protocols]

    def value(scores, p):
        return scores["knn"] if p == "knn" else scores["centroid"][p]["mean"]

    fig, ax = plt.subplots(figsize=(1.9 * len(protocols) + 3, 3.8))
    styles = {"raw_pixels": ":", "thumbnail_4x4": "--", "random_init": "-."}
    for name, scores in references["floors"].items():
        for j, p in enumerate(protocols):
            ax.hlines(value(scores, p), j - 0.4, j + 0.4, color="0.45", ls=styles.get(name, "--"), lw=1.5,
                      label=REFERENCE_LABELS.get(name, name) if j == 0 else None)
    for name, scores in references["ceiling"].items():
        for j, p in enumerate(protocols):
            ax.hlines(value(scores, p), j - 0.4, j + 0.4, color="black", lw=2,
                      label=REFERENCE_LABELS.get(name, name) if j == 0 else None)
    ax.axhline(references["chance"], color="0.7", ls=":", lw=1, label="chance")
    offsets = np.linspace(-0.25, 0.25, max(len(methods), 1))
    for i, (method, report) in enumerate(methods.items()):
        scores = {"knn": report["knn_accuracy"], "centroid": report["centroid"]}
        ax.plot(np.arange(len(protocols)) + offsets[i], [value(scores, p) for p in protocols], "o", ms=7,
                color=_colour(method, i), label=_label(method))
    ax.set_xticks(range(len(protocols)), names)
    ax.set_ylabel("landmark identification accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# Compositionality
# ----------------------------------------------------------------------------------------------------


def show_splits(patch: torch.Tensor, splits: Sequence[int] = (2, 3, 4)) -> Figure:
    """A whole patch and its 2-, 3- and 4-part splits."""
    height, width = patch.shape[-2:]
    fig, axes = plt.subplots(1, len(splits) + 1, figsize=(2.6 * (len(splits) + 1), 2.9), squeeze=False)
    show_grey(axes[0, 0], patch, "whole")
    for ax, n in zip(axes[0, 1:], splits):
        show_grey(ax, patch, f"{n} parts")
        for y0, x0, y1, x1 in sub_patch_boxes(height, width, n):
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="gold", lw=1.5))
    fig.tight_layout()
    return fig


def plot_kde(scores: dict[str, np.ndarray], paper_peaks: dict[str, float] | None = None,
             xlabel: str = "cos(E(whole), Σ E(parts))", controls: dict[str, np.ndarray] | None = None) -> Figure:
    """Kernel density of the compositionality scores per method (solid), of the shuffled control
    (``controls``, dashed, same colour); dotted lines = the paper's peaks, which are raw cosines: pass
    them only with raw scores."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    every = [*scores.values(), *(controls or {}).values()]
    lo = min(-0.2, *(float(np.min(s)) for s in every))
    grid = np.linspace(lo, 1.0, 400)
    curves = [(m, v, "-", "") for m, v in scores.items()] + [(m, v, "--", ", shuffled") for m, v in (controls or {}).items()]
    colours = {m: _colour(m, i) for i, m in enumerate(scores)}
    for method, values, style, suffix in curves:
        values = np.asarray(values, dtype=float)
        colour = colours.get(method, _colour(method, len(colours)))
        if np.ptp(values) > 1e-9:
            ax.plot(grid, gaussian_kde(values)(grid), color=colour, ls=style,
                    label=f"{_label(method)}{suffix} (mean {values.mean():.2f})")
        else:
            ax.axvline(values[0], color=colour, ls=style, label=f"{_label(method)}{suffix} (all {values[0]:.2f})")
    for i, (method, peak) in enumerate((paper_peaks or {}).items()):
        ax.axvline(peak, color=f"C{i + 5}", ls=":", lw=1.5, label=f"paper's peak (raw cosine): {method} ≈ {peak:.2f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_composition_control(measured: dict[str, dict], reference: dict | None = None,
                             paper_peaks: dict[str, float] | None = None) -> Figure:
    """Matched vs shuffled cosine per method (solid vs hatched bars), centred (left) and raw (right).

    ``measured`` maps a label (e.g. ``"adam / head"``) to ``compositionality.measures`` output;
    ``reference`` (random init) is drawn as grey bars and as dashed lines across the panel. The paper's
    peaks are raw cosines of its own embeddings: they are drawn on the raw panel only, labelled, never on
    the centred axis, whose scale is not the paper's.
    """
    entries = ({"random init (reference)": reference} if reference else {}) | dict(measured)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.5 * len(entries) + 5), 3.9), squeeze=False)
    for ax, kind in zip(axes[0], ("centred", "raw")):
        for j, (name, m) in enumerate(entries.items()):
            method = name.split(" /")[0]
            colour = "0.6" if name.startswith("random init (reference)") else _colour(method, j)
            ax.bar(j - 0.2, m[kind]["matched"]["mean"], 0.38, yerr=m[kind]["matched"]["std"], color=colour,
                   capsize=2, label="matched (whole, its parts)" if j == 0 else None)
            ax.bar(j + 0.2, m[kind]["shuffled"]["mean"], 0.38, yerr=m[kind]["shuffled"]["std"], color=colour,
                   alpha=0.35, hatch="//", capsize=2, label="shuffled control (other patch's parts)" if j == 0 else None)
            ax.text(j, max(m[kind]["matched"]["mean"], 0) + 0.04, f"gap {m[kind]['gap']:+.2f}", ha="center", fontsize=7)
        if reference:
            ax.axhline(reference[kind]["matched"]["mean"], color="0.5", ls="--", lw=1)
        if kind == "raw":
            for i, (method, peak) in enumerate((paper_peaks or {}).items()):
                ax.axhline(peak, color=f"C{i + 5}", ls=":", lw=1.5,
                           label=f"paper's peak, {method} (raw cosine, real data, approx.) {peak:.2f}")
        ax.set_xticks(range(len(entries)), [n.replace(" / ", "\n") for n in entries], fontsize=7)
        ax.set_ylim(min(-0.1, *(m[kind]["shuffled"]["mean"] - 0.1 for m in entries.values())), 1.1)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title("centred cosine (the kit's score)" if kind == "centred" else "raw cosine (the paper's scale)",
                     fontsize=9)
        ax.legend(fontsize=6, loc="lower left")
    axes[0, 0].set_ylabel("cos(E(whole), Σ E(parts))")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# Few-shot and fine-tuning
# ----------------------------------------------------------------------------------------------------


def fewshot_table(summary: dict, shots: Sequence[int] = paper.SHOTS, tasks: Sequence[str] = ("heart", "clavicle"),
                  with_paper: bool = True) -> str:
    """Markdown table shaped like the paper's: rows = methods, columns = heart 3/6/12/24, clavicle 3/6/12/24.

    ``summary`` is ``edenkit.transfer.fewshot.summarize(results)`` (Dice %, mean ± std over trials); the paper's rows
    (exact, from its table) follow, marked as the paper's.
    """
    header = "| method | " + " | ".join(f"{t} {n}" for t in tasks for n in shots) + " |"
    lines = [header, "|" + "---|" * (1 + len(tasks) * len(shots))]
    for method, by_task in summary.items():
        cells = []
        for t in tasks:
            for n in shots:
                s = by_task.get(t, {}).get(n)
                cells.append("–" if s is None else f"{s['mean']:.1f} ± {s['std']:.1f}")
        lines.append(f"| {_label(method)} (this run) | " + " | ".join(cells) + " |")
    if with_paper:
        for method, by_task in paper.FEWSHOT_DICE.items():
            cells = [f"{by_task[t][n]:.2f}" if n in by_task.get(t, {}) else "–" for t in tasks for n in shots]
            lines.append(f"| *paper: {method}* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_fewshot(summary: dict, tasks: Sequence[str] = ("heart", "clavicle"), with_paper: bool = True) -> Figure:
    """Dice vs number of labelled images: this run (mean ± std, solid) and the paper (dashed)."""
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8), squeeze=False)
    paper_colours = {"Adam": "tab:red", "MoCo-v2": "tab:blue"}
    for ax, task in zip(axes[0], tasks):
        for i, (method, by_task) in enumerate(summary.items()):
            shots = sorted(by_task.get(task, {}))
            if not shots:
                continue
            mean = [by_task[task][n]["mean"] for n in shots]
            std = [by_task[task][n]["std"] for n in shots]
            ax.errorbar(shots, mean, yerr=std, marker="s" if method == "prior" else "o", capsize=3,
                        color=_colour(method, i), ls=":" if method == "prior" else "-",
                        label=f"{_label(method)} (this run)")
        if with_paper and task in paper.FEWSHOT_DICE["Adam"]:
            for method in ("Adam", "MoCo-v2"):
                row = paper.FEWSHOT_DICE[method][task]
                ax.plot(list(row), list(row.values()), ls="--", marker="x", color=paper_colours[method], alpha=0.6,
                        label=f"paper: {method} (SCR)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(paper.SHOTS), [str(n) for n in paper.SHOTS])
        ax.set_xlabel("labelled training images")
        ax.set_ylabel("Dice (%)")
        ax.set_ylim(0, 100)
        ax.set_title(task)
    handles, texts = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=min(len(texts), 5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def paired_tests_table(tests: dict, methods: Sequence[str] | None = None) -> str:
    """Markdown: per method, task and n, the Dice difference to each baseline and the paired t-test's p.

    ``tests`` is ``edenkit.transfer.fewshot.paired_tests(results)``.
    """
    rows = []
    for method, by_task in tests.items():
        if methods is not None and method not in methods:
            continue
        for task, by_n in by_task.items():
            for n, by_base in by_n.items():
                row = {"method": _label(method), "task": task, "n": n}
                for base, t in by_base.items():
                    p = "–" if t["p"] is None or t["p"] != t["p"] else f"{t['p']:.3f}"
                    row[f"vs {_label(base)}"] = f"{t['mean_diff']:+.1f} (p {p})"
                rows.append(row)
    columns = list(dict.fromkeys(c for r in rows for c in r))
    return markdown_table(rows, columns) if rows else "no comparisons"


def plot_finetune_bars(results: dict[str, dict[str, dict]], ylabel: str = "score (%)") -> Figure:
    """Grouped bars: task -> method -> ``{"mean", "std"}`` (percent), one group per task."""
    tasks = list(results)
    methods = list(dict.fromkeys(m for t in tasks for m in results[t]))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(5, 2.2 * len(tasks)), 3.6))
    for i, method in enumerate(methods):
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(tasks))]
        means = [results[t].get(method, {}).get("mean", np.nan) for t in tasks]
        stds = [results[t].get(method, {}).get("std", 0.0) for t in tasks]
        ax.bar(xs, means, width, yerr=stds, capsize=3, color=_colour(method, i), label=_label(method))
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel(ylabel)
    finite = [results[t][m]["mean"] for t in tasks for m in results[t] if np.isfinite(results[t][m]["mean"])]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 15), min(100.0, max(finite) + 8))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_predictions(images: torch.Tensor, targets: torch.Tensor, predictions: dict[str, torch.Tensor],
                     title: str = "") -> Figure:
    """Rows = images; columns = the ground truth, then each method's predicted mask (outlined)."""
    rows, cols = len(images), 1 + len(predictions)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.3 * rows), squeeze=False)
    for r in range(rows):
        panels = [("ground truth", targets[r])] + [(_label(m), p[r]) for m, p in predictions.items()]
        for c, (name, mask) in enumerate(panels):
            ax = axes[r, c]
            show_grey(ax, images[r], name if r == 0 else None)
            ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="yellow" if c == 0 else "red",
                       linewidths=1)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_ground_truth(images: torch.Tensor, masks: dict[str, torch.Tensor]) -> Figure:
    """Rows = tasks, columns = images: each task's ground-truth mask outlined on the same few images."""
    rows, cols = len(masks), len(images)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.1 * rows), squeeze=False)
    for r, (task, task_masks) in enumerate(masks.items()):
        for c in range(cols):
            show_grey(axes[r, c], images[c], f"{task} (image {c + 1})")
            axes[r, c].contour(np.asarray(task_masks[c], dtype=float), levels=[0.5], colors="yellow", linewidths=1)
    fig.suptitle("ground truth of each task", fontsize=10)
    fig.tight_layout()
    return fig


def rank_note(values: dict[str, float], metric: str, focus: str = "adam", higher_is_better: bool = True,
              digits: int = 3) -> str:
    """One sentence with every method's value and where ``focus`` ranks, e.g. for a notebook's closing note."""
    order = sorted(values, key=values.get, reverse=higher_is_better)
    listing = ", ".join(f"{_label(m)} {values[m]:.{digits}f}" for m in order)
    if focus not in values:
        return f"{metric}: {listing}."
    rank = order.index(focus) + 1
    if rank == 1:
        runner_up = order[1] if len(order) > 1 else None
        margin = f" (ahead of {_label(runner_up)} by {abs(values[focus] - values[runner_up]):.{digits}f})" if runner_up else ""
        verdict = f"{_label(focus)} comes out ahead{margin}"
    else:
        leader = order[0]
        verdict = (f"{_label(focus)} does NOT come out ahead: it ranks {rank} of {len(order)}, "
                   f"{abs(values[leader] - values[focus]):.{digits}f} behind {_label(leader)}")
    return f"{metric}: {listing}. {verdict}."



def markdown_table(rows: list[dict], columns: Sequence[str]) -> str:
    """A small Markdown table from dicts (missing cells shown as '–')."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "–")) for c in columns) + " |")
    return "\n".join(lines)
