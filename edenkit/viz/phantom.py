"""Figures and the explorer for the anatomy phantom (notebook 01).

Every function returns its figure (or widget), so a notebook shows it and a test can check it.
Samples are :class:`edenkit.phantom.PhantomSample`; images are drawn grey in [0, 1], radiological
convention (the patient's right on the image's left).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from edenkit.augmentation import TwoViewAugment
from edenkit.phantom import FINDINGS, LANDMARKS, STRUCTURES, PhantomConfig, PhantomSample, criteria, generate
from edenkit.phantom.overlay import STRUCTURE_COLOURS, overlay
from edenkit.phantom.render import V2_FACTORS
from edenkit.viz.common import figure_png, show_grey

# The part-whole hierarchy the phantom knows, as (node, parent) pairs, parents first. A whole's mask
# is the union of its parts' masks (the chest: the body outline; the mediastinum also holds the space
# between the lungs). See ``structure_mask``.
HIERARCHY: tuple[tuple[str, str | None], ...] = (
    ("chest", None),
    ("right hemithorax", "chest"),
    ("mediastinum", "chest"),
    ("left hemithorax", "chest"),
    ("right lung", "right hemithorax"),
    ("right ribs", "right hemithorax"),
    ("right clavicle", "right hemithorax"),
    ("heart", "mediastinum"),
    ("spine", "mediastinum"),
    ("trachea", "mediastinum"),
    ("left lung", "left hemithorax"),
    ("left ribs", "left hemithorax"),
    ("left clavicle", "left hemithorax"),
    ("right rib 6", "right ribs"),
    ("left rib 5", "left ribs"),
)

LANDMARK_COLOURS = plt.get_cmap("tab10").colors  # one per landmark, in LANDMARKS order


def structure_mask(sample: PhantomSample, node: str) -> np.ndarray:
    """The mask of a node of :data:`HIERARCHY`: a structure, or the union of its parts."""
    masks, extra = sample.masks, sample.extra_masks
    side_ribs = {
        side: np.any([m for k, m in masks.items() if k.startswith(f"rib_{side}_")], axis=0)
        for side in ("right", "left")
    }
    leaves = {
        "chest": extra["body"],
        "right lung": masks["right_lung"],
        "left lung": masks["left_lung"],
        "right clavicle": masks["right_clavicle"],
        "left clavicle": masks["left_clavicle"],
        "right ribs": side_ribs["right"],
        "left ribs": side_ribs["left"],
        "heart": masks["heart"],
        "spine": extra["spine"],
        "trachea": extra["trachea"],
        "right rib 6": masks["rib_right_6"],
        "left rib 5": masks["rib_left_5"],
    }
    if node in leaves:
        return leaves[node]
    children = [child for child, parent in HIERARCHY if parent == node]
    if not children:
        raise KeyError(f"unknown anatomy node {node!r}; expected one of {[n for n, _ in HIERARCHY]}")
    union = np.any([structure_mask(sample, child) for child in children], axis=0)
    return union | extra["mediastinum"] if node == "mediastinum" else union




def _findings_title(sample: PhantomSample) -> str:
    present = [f for f in FINDINGS if sample.findings[f]]
    return ", ".join(present) if present else "no finding"


def _legend_handles():
    from matplotlib.patches import Patch

    names = list(STRUCTURES) + ["ribs", "effusion", "nodule", "pneumothorax"]
    return [Patch(color=np.asarray(STRUCTURE_COLOURS[n]) / 255, label=n.replace("_", " ")) for n in names]


def anatomy_overlay(sample: PhantomSample) -> Figure:
    """One patient: the radiograph, and the same with every mask and the ten landmarks named."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.6))
    show_grey(left, sample.image, f"phantom radiograph ({sample.image.shape[0]} px)")
    right.imshow(overlay(sample, landmarks=False))
    right.set_xticks([])
    right.set_yticks([])
    right.set_title(f"ground truth - findings: {_findings_title(sample)}", fontsize=9)
    for i, name in enumerate(LANDMARKS):
        x, y = sample.landmarks[name]
        right.plot(x, y, "o", color=LANDMARK_COLOURS[i], markersize=6, markeredgecolor="black", label=name)
    handles, _ = right.get_legend_handles_labels()
    right.legend(
        handles=_legend_handles() + handles,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout()
    return fig


def gallery(samples: list[PhantomSample], ncols: int = 4, with_overlay: bool = True) -> Figure:
    """A grid of patients; with ``with_overlay`` each radiograph is followed by its ground truth."""
    per = 2 if with_overlay else 1
    nrows = -(-len(samples) * per // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.7 * ncols, 2.9 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, sample in enumerate(samples):
        ax = axes.flat[i * per]
        ax.axis("on")
        show_grey(ax, sample.image, f"#{i}: {_findings_title(sample)}")
        if with_overlay:
            ax = axes.flat[i * per + 1]
            ax.imshow(overlay(sample))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axis("on")
            ax.set_title(f"#{i}: masks + landmarks", fontsize=9)
    fig.tight_layout()
    return fig


def variation(samples: list[PhantomSample]) -> Figure:
    """Across patients: the mean image, the per-pixel spread, the heart and lung outlines of every
    patient, and where each landmark falls."""
    images = np.stack([s.image for s in samples])
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    show_grey(axes[0], images.mean(0), f"mean of {len(samples)} patients")
    axes[1].imshow(images.std(0), cmap="magma")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    axes[1].set_title("per-pixel standard deviation", fontsize=9)
    show_grey(axes[2], images.mean(0), "outlines: heart (red), lungs (blue)")
    for s in samples:
        axes[2].contour(s.masks["heart"], levels=[0.5], colors=["tab:red"], linewidths=0.6, alpha=0.6)
        axes[2].contour(
            s.masks["right_lung"] | s.masks["left_lung"],
            levels=[0.5],
            colors=["tab:blue"],
            linewidths=0.5,
            alpha=0.5,
        )
    show_grey(axes[3], images.mean(0), "the ten landmarks in every patient")
    for i, name in enumerate(LANDMARKS):
        xy = np.array([s.landmarks[name] for s in samples])
        axes[3].scatter(xy[:, 0], xy[:, 1], s=8, color=LANDMARK_COLOURS[i], label=name.replace("_", " "))
    axes[3].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False, markerscale=2)
    fig.tight_layout()
    return fig


def variation_numbers(samples: list[PhantomSample]) -> dict[str, float]:
    """Numbers behind :func:`variation`: cardiothoracic ratio, lung area and landmark spread."""
    size = samples[0].image.shape[0]
    ctr = np.array([s.info["cardiothoracic_ratio"] for s in samples])
    lung = np.array([(s.masks["right_lung"] | s.masks["left_lung"]).mean() for s in samples])
    spread = [np.array([s.landmarks[n] for s in samples]).std(0).mean() for n in LANDMARKS]
    return {
        "cardiothoracic ratio, mean": float(ctr.mean()),
        "cardiothoracic ratio, sd": float(ctr.std()),
        "lung fraction of the image, mean": float(lung.mean()),
        "lung fraction of the image, sd": float(lung.std()),
        "landmark spread (sd, px), mean over landmarks": float(np.mean(spread)),
        "landmark spread as a fraction of the image": float(np.mean(spread) / size),
    }


def hierarchy(sample: PhantomSample) -> Figure:
    """The part-whole hierarchy as a tree of thumbnails: each node shows the image with the node's
    mask lit up; a whole's mask is the union of its parts."""
    levels: list[list[str]] = []
    frontier = [node for node, parent in HIERARCHY if parent is None]
    while frontier:
        levels.append(frontier)
        frontier = [node for level_node in frontier for node, parent in HIERARCHY if parent == level_node]
    width = max(len(level) for level in levels)
    fig = plt.figure(figsize=(1.55 * width, 1.9 * len(levels)))
    centres: dict[str, tuple[float, float]] = {}
    box = 0.86 / width
    for row, level in enumerate(levels):
        top = 1.0 - (row + 1) / len(levels) + 0.02
        for k, node in enumerate(level):
            # spread each level evenly, centred
            left = 0.5 + (k - len(level) / 2) * (1.0 / width) + (1.0 / width - box) / 2
            ax = fig.add_axes((left, top, box, 0.8 / len(levels)))
            mask = structure_mask(sample, node)
            lit = np.where(mask, 0.35 + 0.65 * sample.image, 0.25 * sample.image)
            ax.imshow(np.stack([lit, lit, np.where(mask, 0.2 + 0.5 * sample.image, lit)], axis=-1))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(node, fontsize=8)
            centres[node] = (left + box / 2, top)
    lines = fig.add_axes((0, 0, 1, 1), zorder=-1)
    lines.axis("off")
    lines.set_xlim(0, 1)
    lines.set_ylim(0, 1)
    for node, parent in HIERARCHY:
        if parent is not None:
            (x0, y0), (x1, y1) = centres[parent], centres[node]
            lines.plot([x0, x1], [y0, y1 + 0.8 / len(levels) + 0.03], color="0.6", linewidth=0.8)
    # above the top row's titles (the notebook's inline backend crops to the drawn content)
    fig.suptitle("anatomy as a part-whole hierarchy (every whole is the union of its parts)", fontsize=10, y=1.04)
    return fig


def findings(seed: int, size: int = 256) -> Figure:
    """One patient without findings and with each finding alone: same anatomy, pose and exposure."""
    panels = [("no finding", {})] + [(f, {f: 1.0}) for f in FINDINGS]
    fig, axes = plt.subplots(2, len(panels), figsize=(2.9 * len(panels), 6.0))
    for col, (title, prevalence) in enumerate(panels):
        sample = generate(
            seed, PhantomConfig(size=size, prevalence={**dict.fromkeys(FINDINGS, 0.0), **prevalence})
        )
        show_grey(axes[0, col], sample.image, f"{title} (CTR {sample.info['cardiothoracic_ratio']:.2f})")
        axes[1, col].imshow(overlay(sample, ribs=False, landmarks=False))
        axes[1, col].set_xticks([])
        axes[1, col].set_yticks([])
        axes[1, col].set_title("masks", fontsize=9)
    fig.tight_layout()
    return fig


def explorer(size: int = 192, seed: int = 0, version: int = 2):
    """An ipywidgets explorer: seed, size, version, findings, overlay and v2's factor switches;
    redraws one patient on each change. The picture is an ``ipywidgets.Image``."""
    import ipywidgets as widgets

    seed_w = widgets.IntSlider(value=seed, min=0, max=999, description="seed")
    size_w = widgets.Dropdown(
        options=sorted({64, 128, 192, 256, 384, 512, size}), value=size, description="size"
    )
    version_w = widgets.Dropdown(options=[1, 2], value=version, description="version")
    overlay_w = widgets.Checkbox(value=True, description="overlay", indent=False)
    finding_ws = [widgets.Checkbox(value=False, description=f, indent=False) for f in FINDINGS]
    factor_ws = [widgets.Checkbox(value=True, description=f.replace("_", " "), indent=False) for f in V2_FACTORS]
    picture = widgets.Image(format="png")

    def redraw(*_):
        chosen = tuple(f for f, w in zip(FINDINGS, finding_ws) if w.value)
        factors = tuple(f for f, w in zip(V2_FACTORS, factor_ws) if w.value)
        picture.value = figure_png(
            explorer_figure(seed_w.value, size_w.value, chosen, overlay_w.value, version_w.value, factors)
        )

    for w in (seed_w, size_w, version_w, overlay_w, *finding_ws, *factor_ws):
        w.observe(redraw, names="value")
    redraw()
    controls = widgets.VBox(
        [widgets.HBox([seed_w, size_w, version_w, overlay_w]), widgets.HBox(finding_ws), widgets.HBox(factor_ws)]
    )
    return widgets.VBox([controls, picture])


def explorer_config(size: int, chosen: tuple[str, ...], version: int = 2, factors=V2_FACTORS) -> PhantomConfig:
    """The explorer's config: exactly the ``chosen`` findings, and (v2) only the ``factors`` on."""
    prevalence = {f: float(f in chosen) for f in FINDINGS}
    switches = {f: float(f in factors) for f in V2_FACTORS}
    return PhantomConfig(size=size, prevalence=prevalence, version=version, **switches)


def explorer_figure(
    seed: int, size: int, chosen: tuple[str, ...], with_overlay: bool, version: int = 2, factors=V2_FACTORS
) -> Figure:
    """The explorer's picture: patient ``seed`` at ``size`` px with exactly the ``chosen`` findings."""
    sample = generate(seed, explorer_config(size, chosen, version, factors))
    if with_overlay:
        return anatomy_overlay(sample)
    # the same canvas as with the overlay, so the explorer's picture keeps its size when it is switched
    fig, (ax, blank) = plt.subplots(1, 2, figsize=(11, 5.6))
    show_grey(ax, sample.image, _findings_title(sample))
    blank.set_axis_off()
    blank.text(0.05, 0.5, "ground-truth overlay off", fontsize=9, color="0.5", transform=blank.transAxes)
    fig.tight_layout()
    return fig


def versions(seeds=(0, 1, 2, 3), size: int = 192) -> Figure:
    """The same seeds drawn by phantom v1 (top row) and v2 (bottom row)."""
    fig, axes = plt.subplots(2, len(seeds), figsize=(2.8 * len(seeds), 6.0), squeeze=False)
    for row, version in enumerate((1, 2)):
        for col, seed in enumerate(seeds):
            sample = generate(seed, PhantomConfig(size=size, version=version))
            extra = ", ".join(sample.info.get("devices", [])) or ("" if version == 1 else "no device")
            show_grey(axes[row, col], sample.image, f"v{version} #{seed} {extra}".strip())
    fig.tight_layout()
    return fig


def criteria_table(scale: str = "small", seed: int = 0) -> tuple[str, dict]:
    """Issue 11's criteria for v1 and v2 (``edenkit.phantom.criteria``), as (markdown table, numbers).
    ``scale`` "small" takes seconds; "full" is the benchmark's sample size (minutes)."""
    augment, crop_rotation = TwoViewAugment(64), TwoViewAugment(64, jitter_p=0.0, blur_p=0.0)
    results = {
        f"v{v}": criteria.measure(PhantomConfig(version=v), augment, scale, seed, ceiling=scale == "full",
                                  crop_rotation=crop_rotation)
        for v in (1, 2)
    }
    return criteria.table(results), results


def ablation(scale: str = "small", seed: int = 0, factors=None) -> tuple[Figure, dict]:
    """Which v2 factor buys how much identity (A2) and how much it lowers the locality floors (A3):
    v2 with every factor off, each alone, all on. Returns the figure and the numbers."""
    numbers = criteria.ablation(TwoViewAugment(64), scale, seed, factors)
    names = list(numbers)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    y = np.arange(len(names))
    axes[0].barh(y, [numbers[n]["A2_decode"] for n in names], color="tab:blue")
    axes[0].set_title("A2: patient decoding from paper-augmented views", fontsize=9)
    for k, (key, colour) in enumerate((("A3_pixels", "tab:orange"), ("A3_random", "tab:green"))):
        axes[1].barh(y + 0.4 * k - 0.2, [numbers[n][key] for n in names], height=0.4, color=colour,
                     label=key.replace("A3_", ""))
    axes[1].set_title("A3: landmark identification floors (lower = more headroom)", fontsize=9)
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_yticks(y)
        ax.set_yticklabels([n.replace("_", " ") for n in names], fontsize=8)
        ax.invert_yaxis()
    fig.tight_layout()
    return fig, numbers
