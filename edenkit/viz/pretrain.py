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


def keep_full_canvas(fig: Figure) -> Figure:
    """Make ``fig`` render at its full size even with ``bbox_inches="tight"`` (as ``figure_png`` does).

    An invisible rectangle over the whole figure keeps the tight box from shrinking to the content, so
    an explorer's picture has the same size in every state and the page around it does not jump.
    """
    fig.add_artist(Rectangle((0, 0), 1, 1, transform=fig.transFigure, fill=False, edgecolor="none"))
    return fig


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


def anchor_views_figure(pairs: AnatomyPairs, index: int, part: int | None = None) -> Figure:
    """The explorer's picture: the image with the anchor's box, the anchor and its two views.

    The figure has the same size and the same axes in every state: the anchor (a tall half at n = 1, a
    wide cell at n = 3) is drawn centred in a square frame rather than filling an axes of its shape.
    """
    image = pairs.base_dataset[index]["image"]
    item = pairs.pair(index, part)
    y0, x0, y1, x1 = item["box"].tolist()
    fig = plt.figure(figsize=(8.8, 2.6))
    axes = [fig.add_axes((0.01 + i * 0.25, 0.04, 0.23, 0.78)) for i in range(4)]
    show_grey(axes[0], image, f"image {index}, n = {pairs.n}, {pairs.mode}")
    _draw_parts(axes[0], image.shape[-2], image.shape[-1], pairs.n, pairs.mode, highlight=item["part"])
    show_grey(axes[1], image[:, y0:y1, x0:x1], f"anchor = part {item['part']} ({x1 - x0} x {y1 - y0} px)")
    side = max(y1 - y0, x1 - x0)  # a square window around the anchor: the axes keep their shape
    cy, cx = (y1 - y0) / 2 - 0.5, (x1 - x0) / 2 - 0.5
    axes[1].set_xlim(cx - side / 2, cx + side / 2)
    axes[1].set_ylim(cy + side / 2, cy - side / 2)
    axes[1].set_facecolor("black")
    show_grey(axes[2], item["view1"], "view 1 (query)")
    show_grey(axes[3], item["view2"], "view 2 (key)")
    return keep_full_canvas(fig)


def decomposer_explorer(base_dataset, view_size: int, seed: int = 0):
    """An ipywidgets explorer: pick an image, a level n, an anchor part, the mode and the epoch, and see
    the anchor and its two augmented views (a picture of the same size in every state)."""
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
        picture.value = figure_png(anchor_views_figure(pairs, image_slider.value, part_slider.value))

    for control in (image_slider, level_slider, part_slider, mode_toggle, epoch_slider):
        control.observe(redraw, names="value")
    redraw()
    controls = widgets.VBox([image_slider, level_slider, part_slider, mode_toggle, epoch_slider])
    return widgets.VBox([controls, picture])


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
