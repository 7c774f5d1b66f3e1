"""Figures and the explorer for the decomposer and the pruner build and show what they claim."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from edenkit.analysis.pruning import pruning_profile
from edenkit.augmentation import TwoViewAugment
from edenkit.decomposer import AnatomyPairs
from edenkit.viz import pretrain as viz
from edenkit.viz import pruner


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return [{"image": torch.rand(1, 32, 32, generator=g)} for _ in range(3)]


def rectangles(ax):
    return [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]


def test_parts_figure_draws_every_part(images):
    fig = viz.show_parts(images[0]["image"], levels=(0, 2, 3))
    assert [len(rectangles(ax)) for ax in fig.axes] == [1, 4, 8]
    assert fig.axes[0].get_title() == "n = 0: 1 part"
    fig = viz.compare_modes(images[0]["image"], levels=(1, 3))
    assert [len(rectangles(ax)) for ax in fig.axes] == [2, 8, 1, 9]
    plt.close("all")


def test_anchor_views_highlight_the_anchor(images):
    pairs = AnatomyPairs(images, n=2, view_size=16, seed=0)
    fig = viz.show_anchor_views(pairs, [1, 2], parts=[3, None])
    first_row = fig.axes[0]
    gold = [p for p in rectangles(first_row) if p.get_edgecolor()[:3] == matplotlib.colors.to_rgb("gold")]
    assert len(gold) == 1 and gold[0].get_xy() == (16 - 0.5, 16 - 0.5)  # part 3 = bottom right
    assert len(fig.axes) == 8
    viz.show_views(images[0]["image"], TwoViewAugment(16), count=3)
    viz.show_part_across_patients([x["image"] for x in images], n=2, part=0)
    viz.part_frequencies(images[0]["image"], n=2, draws=40)
    plt.close("all")


def test_explorer_redraws_when_a_control_changes(images):
    widget = viz.decomposer_explorer(images, view_size=16)
    controls, picture = widget.children
    level, part = controls.children[1], controls.children[2]
    sizes = [png_size(picture.value)]
    level.value = 4
    assert part.max == 15
    sizes.append(png_size(picture.value))
    level.value = 1  # a tall half: the picture keeps its size (the layout does not jump)
    assert part.max == 1
    sizes.append(png_size(picture.value))
    controls.children[3].value = "grid"
    level.value = 3  # nine cells of the grid
    sizes.append(png_size(picture.value))
    assert len(set(sizes)) == 1, sizes
    plt.close("all")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_pruner_figures():
    sims = torch.tensor([[0.9, 0.3], [0.85, 0.1]])
    same = torch.tensor([[True, False], [False, True]])
    viz = pruner
    viz.plot_negative_similarities(sims, same, thresholds=(0.8,))
    profile = pruning_profile(sims, [0.5, 0.8, 0.95], same)
    fig = viz.plot_pruning_profile(profile)
    assert len(fig.axes[0].lines) == 4
    fig = viz.plot_loss_by_threshold({"random": ([0.5, 0.8], [1.0, 2.0], 2.5), "trained": ([0.5, 0.8], [0.5, 1.0], 1.5)})
    assert len(fig.axes[0].lines) == 4
    legend = fig.axes[0].get_legend()  # one entry per encoder plus the two line styles, outside the axes
    assert [t.get_text() for t in legend.get_texts()] == ["random", "trained", "with the pruner", "plain InfoNCE"]
    fig = viz.plot_prune_mask(sims >= 0.8, query_parts=[1, 0], queue_parts=[1, 0])
    shown = fig.axes[0].images[0].get_array()
    assert shown.tolist() == [[0, 1], [0, 1]]  # rows and columns sorted by part: query 1 (part 0) first
    plt.close("all")


def test_panels_hide_the_spare_axes():
    fig, axes = pruner.panels(3)
    assert len(axes) == 3 and len(fig.axes) == 4 and not fig.axes[3].get_visible()
    plt.close("all")
