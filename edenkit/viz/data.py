"""Figures for the real datasets: a gallery of items with their labels and masks, folder trees, speeds.

Every function returns its figure (or text) so that a notebook shows it and a test can check it.
Items are the loaders' dicts (``image`` [C,H,W] in [0,1], optional ``labels`` and ``masks``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

MASK_COLOURS = plt.get_cmap("tab20").colors


def show_items(dataset, indices: Sequence[int], title: str | None = None, columns: int = 4) -> Figure:
    """A grid of items: the image, each mask as a coloured outline, its name and positive labels above.

    Label and mask names come from the dataset (``label_names``, ``mask_names``); the legend lists
    the masks by colour.
    """
    items = [dataset[i] for i in indices]
    label_names = tuple(getattr(dataset, "label_names", ()))
    mask_names = tuple(getattr(dataset, "mask_names", ()))
    columns = min(columns, len(items))
    rows = -(-len(items) // columns)
    # constrained layout reserves room for every title (tight_layout let two-line titles touch the row above)
    fig, axes = plt.subplots(rows, columns, figsize=(2.9 * columns, 3.3 * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, item in zip(axes.ravel(), items):
        image = item["image"].numpy()
        ax.imshow(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        for channel, mask in enumerate(item.get("masks", [])):
            if mask.any():
                ax.contour(mask.numpy(), levels=[0.5], colors=[MASK_COLOURS[channel % 20]], linewidths=1.0)
        caption = str(item["image_id"])
        if "labels" in item:  # the positive labels under the name
            found = [name for name, on in zip(label_names, item["labels"].tolist()) if on > 0.5]
            caption += "\n" + textwrap.shorten(", ".join(found) or "none", width=40, placeholder=" ...")
        ax.set_title(caption, fontsize=8, pad=4)
    if mask_names and any("masks" in item for item in items):
        handles = [Line2D([], [], color=MASK_COLOURS[c % 20], label=name) for c, name in enumerate(mask_names)]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.get_layout_engine().set(h_pad=0.06, hspace=0.04)
    return fig


def folder_tree(root: str | Path, depth: int = 3, files_per_folder: int = 3) -> str:
    """The layout of a data folder as indented text, a few files per folder and a count of the rest."""
    root = Path(root)
    lines = [f"{root.name}/"]

    def walk(folder: Path, level: int) -> None:
        entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        folders = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
        files = [p for p in entries if p.is_file() and not p.name.startswith(".")]
        indent = "    " * level
        for sub in folders:
            lines.append(f"{indent}{sub.name}/")
            if level < depth:
                walk(sub, level + 1)
        for file in files[:files_per_folder]:
            lines.append(f"{indent}{file.name}")
        if len(files) > files_per_folder:
            lines.append(f"{indent}... {len(files) - files_per_folder} more files")

    walk(root, 1)
    return "\n".join(lines)


def read_rates(rates: dict[str, float], title: str = "Reading images") -> Figure:
    """Horizontal bars of images per second (log scale: the cache and the decoder differ by 100x)."""
    names = list(rates)
    values = np.array([rates[n] for n in names])
    fig, ax = plt.subplots(figsize=(6.5, 0.6 + 0.5 * len(names)))
    bars = ax.barh(names, values, color=["tab:gray", "tab:green", "tab:blue", "tab:orange"][: len(names)])
    ax.set_xscale("log")
    ax.set_xlabel("images per second, one process (log scale)")
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=9)
    ax.set_xlim(values.min() / 3, values.max() * 8)
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig
