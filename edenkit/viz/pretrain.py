"""Figures and widgets for pretraining: the anatomy decomposer, its anchors and views, the purposive pruner.

Every function returns its figure (or widget) so that a notebook shows it and a test can check it.
Images are grey tensors [1, H, W] (or [H, W]) in [0, 1].
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from edenkit.decomposer import AnatomyPairs, Mode, decompose, part_boxes
from edenkit.run_folder import read_log
from edenkit.viz.common import figure_png, show_grey

SAME_COLOUR = "tab:red"  # negatives that show the query's own anatomy (semantic collisions)
OTHER_COLOUR = "tab:blue"  # genuine negatives: other anatomy




def _draw_parts(ax, height: int, width: int, n: int, mode: Mode, highlight: int | None = None) -> None:
    boxes = part_boxes(height, width, n, mode)
    order = [i for i in range(len(boxes)) if i != highlight] + ([highlight] if highlight is not None else [])
    for i in order:  # the highlighted part last, so that its outline stays on top
        y0, x0, y1, x1 = boxes[i]
        colour = "gold" if i == highlight else "cyan"
        ax.add_patch(
            Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                      linewidth=2.5 if i == highlight else 1.0)
        )
        if len(boxes) > 1:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, str(i), color=colour, ha="center", va="center", fontsize=8,
                    bbox={"facecolor": "black", "alpha": 0.4, "pad": 1, "linewidth": 0})


def _parts_title(prefix: str, count: int) -> str:
    return f"{prefix}: {count} part{'s' if count > 1 else ''}"


def show_parts(image: torch.Tensor, levels=(0, 1, 2, 3, 4), mode: Mode = "paper") -> Figure:
    """One panel per granularity level: the image cut into its parts, numbered row-major."""
    height, width = image.shape[-2:]
    fig, axes = plt.subplots(1, len(levels), figsize=(2.6 * len(levels), 2.9), squeeze=False)
    for ax, n in zip(axes[0], levels):
        show_grey(ax, image, _parts_title(f"n = {n}", len(part_boxes(height, width, n, mode))))
        _draw_parts(ax, height, width, n, mode)
    fig.suptitle(f"Anatomy decomposer, {mode} mode", fontsize=11)
    fig.tight_layout()
    return fig


def compare_modes(image: torch.Tensor, levels=(1, 2, 3, 4)) -> Figure:
    """The paper's alternating cuts (top) against the released code's n x n grid (bottom)."""
    height, width = image.shape[-2:]
    fig, axes = plt.subplots(2, len(levels), figsize=(2.6 * len(levels), 5.6), squeeze=False)
    for row, mode in enumerate(("paper", "grid")):
        for ax, n in zip(axes[row], levels):
            show_grey(ax, image, _parts_title(f"{mode}, n = {n}", len(part_boxes(height, width, n, mode))))
            _draw_parts(ax, height, width, n, mode)
    fig.tight_layout()
    return fig


def show_part_across_patients(images: list[torch.Tensor], n: int, part: int, mode: Mode = "paper") -> Figure:
    """The same part (grid cell) cut from several patients: the same anatomy, seen in different people."""
    fig, axes = plt.subplots(1, len(images), figsize=(1.9 * len(images), 2.2), squeeze=False)
    for i, (ax, image) in enumerate(zip(axes[0], images)):
        y0, x0, y1, x1 = part_boxes(image.shape[-2], image.shape[-1], n, mode)[part]
        show_grey(ax, image[..., y0:y1, x0:x1], f"patient {i}")
    fig.suptitle(f"part {part} at n = {n} in {len(images)} patients", fontsize=10)
    fig.tight_layout()
    return fig


def show_anchor_views(pairs: AnatomyPairs, indices, parts=None) -> Figure:
    """Per row: the image with the anchor's box, the anchor, and its two augmented views (the positive pair)."""
    indices = list(indices)
    parts = [None] * len(indices) if parts is None else list(parts)
    fig, axes = plt.subplots(len(indices), 4, figsize=(8.4, 2.2 * len(indices)), squeeze=False)
    for row, (index, part) in zip(axes, zip(indices, parts)):
        image = pairs.base_dataset[index]["image"]
        item = pairs.pair(index, part)
        y0, x0, y1, x1 = item["box"].tolist()
        show_grey(row[0], image, f"image {index}, n = {pairs.n}")
        _draw_parts(row[0], image.shape[-2], image.shape[-1], pairs.n, pairs.mode, highlight=item["part"])
        show_grey(row[1], image[:, y0:y1, x0:x1], f"anchor = part {item['part']}")
        show_grey(row[2], item["view1"], "view 1 (query)")
        show_grey(row[3], item["view2"], "view 2 (key)")
    fig.tight_layout()
    return fig


def show_views(anchor: torch.Tensor, augment, count: int = 8, seed: int = 0) -> Figure:
    """``count`` independent augmented views of one anchor: what the augmentation does and does not do."""
    generator = torch.Generator().manual_seed(seed)
    views = [v for _ in range(math.ceil(count / 2)) for v in augment(anchor, generator)][:count]
    fig, axes = plt.subplots(1, count + 1, figsize=(1.7 * (count + 1), 2.0), squeeze=False)
    show_grey(axes[0][0], anchor, "anchor")
    for i, (ax, view) in enumerate(zip(axes[0][1:], views)):
        show_grey(ax, view, f"view {i + 1}")
    fig.tight_layout()
    return fig


def part_frequencies(image: torch.Tensor, n: int, draws: int, seed: int = 0, mode: Mode = "paper") -> Figure:
    """How often each part is drawn as the anchor in ``draws`` draws (uniform: every bar near 1/2^n)."""
    boxes = part_boxes(image.shape[-2], image.shape[-1], n, mode)
    generator = torch.Generator().manual_seed(seed)
    counts = np.zeros(len(boxes))
    for _ in range(draws):
        counts[boxes.index(decompose(image, n, mode, generator)[1])] += 1
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.bar(range(len(boxes)), counts / draws, color="tab:gray")
    ax.axhline(1 / len(boxes), color="black", linestyle="--", linewidth=1, label="uniform")
    ax.set_xlabel("part index")
    ax.set_ylabel("share of draws")
    ax.set_title(f"{draws} anchor draws at n = {n}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def decomposer_explorer(base_dataset, view_size: int, seed: int = 0):
    """An ipywidgets explorer: pick an image, a level n, an anchor part, the mode and the epoch, and see
    the anchor and its two augmented views."""
    import ipywidgets as widgets

    image_slider = widgets.IntSlider(value=0, min=0, max=len(base_dataset) - 1, description="image")
    level_slider = widgets.IntSlider(value=2, min=0, max=4, description="n")
    part_slider = widgets.IntSlider(value=0, min=0, max=3, description="anchor part")
    mode_toggle = widgets.ToggleButtons(options=["paper", "grid"], value="paper", description="mode")
    epoch_slider = widgets.IntSlider(value=0, min=0, max=20, description="epoch")
    picture = widgets.Image(format="png")  # not an Output widget: see edenkit.viz.common

    def redraw(_change=None) -> None:
        pairs = AnatomyPairs(base_dataset, level_slider.value, view_size, mode_toggle.value, seed)
        part_slider.max = len(part_boxes(*base_dataset[0]["image"].shape[-2:], pairs.n, pairs.mode)) - 1
        pairs.set_epoch(epoch_slider.value)
        picture.value = figure_png(show_anchor_views(pairs, [image_slider.value], [part_slider.value]))

    for control in (image_slider, level_slider, part_slider, mode_toggle, epoch_slider):
        control.observe(redraw, names="value")
    redraw()
    controls = widgets.VBox([image_slider, level_slider, part_slider, mode_toggle, epoch_slider])
    return widgets.VBox([controls, picture])


def plot_negative_similarities(
    sims: torch.Tensor, same: torch.Tensor, thresholds=(0.8,), title: str | None = None, ax=None
) -> Figure:
    """Histogram of query-negative cosines, collisions (same part, other patient) vs other anatomy."""
    sims, same = sims.flatten().cpu().numpy(), same.flatten().cpu().numpy()
    fig, ax = _figure(ax, (7, 3.2))
    bins = np.linspace(min([float(sims.min()), *thresholds]) - 0.05, 1.0, 61)
    ax.hist(sims[~same], bins=bins, density=True, alpha=0.6, color=OTHER_COLOUR, label="other part (genuine negative)")
    ax.hist(sims[same], bins=bins, density=True, alpha=0.6, color=SAME_COLOUR, label="same part, other patient (collision)")
    for threshold in thresholds:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        ax.text(threshold, 0.5, f"threshold {threshold:g} ", transform=ax.get_xaxis_transform(), rotation=90,
                fontsize=8, ha="right", va="center")
    ax.set_xlabel("cosine similarity between a query and a queue negative")
    ax.set_ylabel("density")
    ax.set_title(title or "Negatives in the queue", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_prune_mask(mask: torch.Tensor, query_parts, queue_parts, title: str | None = None, ax=None) -> Figure:
    """The B x K pruning mask with queries and negatives sorted by part: pruned collisions fill the
    diagonal blocks (same part), pruned genuine negatives the rest."""
    query_parts, queue_parts = torch.as_tensor(query_parts), torch.as_tensor(queue_parts)
    rows, cols = torch.argsort(query_parts, stable=True), torch.argsort(queue_parts, stable=True)
    fig, ax = _figure(ax, (6, 3.4))
    ax.imshow(mask[rows][:, cols].cpu().numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    for edges, line in ((torch.unique_consecutive(query_parts[rows], return_counts=True)[1], ax.axhline),
                        (torch.unique_consecutive(queue_parts[cols], return_counts=True)[1], ax.axvline)):
        for edge in torch.cumsum(edges, 0)[:-1].tolist():
            line(edge - 0.5, color=SAME_COLOUR, linewidth=0.8)
    ax.set_xlabel("queue negatives, sorted by part")
    ax.set_ylabel("queries, sorted by part")
    ax.set_title(title or f"pruned (black): {mask.float().mean().item():.1%} of the negatives", fontsize=10)
    fig.tight_layout()
    return fig


def plot_pruning_profile(
    profile: dict[str, list[float]], paper_threshold: float = 0.8, title: str | None = None, ax=None
) -> Figure:
    """Fraction pruned against the threshold: all negatives, collisions and genuine negatives
    (``profile`` from ``edenkit.analysis.pruning.pruning_profile`` with ``same`` given)."""
    t = profile["threshold"]
    fig, ax = _figure(ax, (6.5, 3.2))
    ax.plot(t, profile["pruned"], "k-o", markersize=3, label="all negatives")
    ax.plot(t, profile["pruned_same"], "-o", color=SAME_COLOUR, markersize=3, label="collisions (same part)")
    ax.plot(t, profile["pruned_other"], "-o", color=OTHER_COLOUR, markersize=3, label="genuine negatives (other part)")
    ax.axvline(paper_threshold, color="gray", linestyle="--", linewidth=1, label=f"paper: {paper_threshold:g}")
    ax.set_xlabel("pruning threshold (cosine)")
    ax.set_ylabel("fraction pruned")
    ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_loss_by_threshold(curves: dict[str, tuple[list[float], list[float], float]], ax=None) -> Figure:
    """InfoNCE loss against the pruning threshold, one curve per encoder: ``{name: (thresholds, losses,
    plain_loss)}``; the dashed line of the same colour is plain InfoNCE (no pruning)."""
    fig, ax = _figure(ax, (6.5, 3.2))
    for (name, (thresholds, losses, plain)), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        ax.plot(thresholds, losses, "-o", color=colour, markersize=3, label=f"{name}, with the pruner")
        ax.axhline(plain, color=colour, linestyle="--", linewidth=1, label=f"{name}, plain InfoNCE")
    ax.set_xlabel("pruning threshold (cosine)")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def panels(count: int, columns: int = 2, size: tuple[float, float] = (6.5, 3.4)) -> tuple[Figure, list]:
    """A figure with ``count`` axes in rows of ``columns``, for one panel per encoder."""
    rows = math.ceil(count / columns)
    columns = min(columns, count)
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)
    axes = list(axes.flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def _figure(ax, size):
    """(figure, axes): the given axes, or a new figure of ``size``."""
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=size)


# ---------------------------------------------------------------------------------------- training logs
LOG_PANELS = (
    ("loss", "InfoNCE loss (solid: train, dashed: validation)"),
    ("acc", "accuracy of the positive"),
    ("sim", "mean cosine (solid: positive, dotted: negatives)"),
    ("frac_pruned", "fraction of negatives pruned"),
    ("lr", "learning rate"),
    ("images_per_s", "images per second"),
)


def _epoch_records(log, split: str) -> list[dict]:
    """Per-epoch records of one split from a list of log records or a run folder / log.jsonl path."""
    if not isinstance(log, list):
        log = read_log(log)
    return [r for r in log if r.get("split") == split]


def plot_pretrain_log(runs, title: str | None = None) -> Figure:
    """The pretraining log per epoch, one colour per run, the curriculum's stages marked.

    ``runs`` is a run (records from ``edenkit.pretrain.read_log``, or a run folder) or a dict
    ``{name: run}``. Validation losses of different stages are not comparable: at finer n the task changes.
    """
    from matplotlib.ticker import MaxNLocator  # kept here: this section is appended to the module

    runs = runs if isinstance(runs, dict) else {"run": runs}
    fig, axes = plt.subplots(2, 3, figsize=(14, 6.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, ((name, log), colour) in enumerate(zip(runs.items(), colours)):
        train, val = _epoch_records(log, "train"), _epoch_records(log, "val")
        if not train:
            raise ValueError(f"plot_pretrain_log: run {name!r} has no per-epoch training record")
        x = [r["global_epoch"] + 1 for r in train]
        xv = [r["global_epoch"] + 1 for r in val]
        for ax, (key, _) in zip(axes.flat, LOG_PANELS):
            if key == "sim":
                ax.plot(x, [r["pos_sim"] for r in train], "-", color=colour, label=name)
                ax.plot(x, [r["neg_sim"] for r in train], ":", color=colour)
                continue
            ax.plot(x, [r[key] for r in train], "-o", color=colour, markersize=3, label=name)
            if key in ("loss", "acc") and val:
                ax.plot(xv, [r[key] for r in val], "--", color=colour)
        # Stage boundaries of this run: where the granularity level changes.
        for previous, record in zip(train, train[1:]):
            if record["stage"] != previous["stage"]:
                for ax in axes.flat:
                    ax.axvline(record["global_epoch"] + 0.5, color=colour, linewidth=0.8, alpha=0.5)
        starts = [r for i, r in enumerate(train) if i == 0 or r["stage"] != train[i - 1]["stage"]]
        for record in starts:
            axes[0, 0].annotate(f"n={record['n']}", (record["global_epoch"] + 0.6, 0.98 - 0.07 * row),
                                xycoords=("data", "axes fraction"), va="top", fontsize=8, color=colour)
    for ax, (_, label) in zip(axes.flat, LOG_PANELS):
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
