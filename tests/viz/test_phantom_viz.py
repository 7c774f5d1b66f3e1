"""Figures and the explorer of notebook 01 (edenkit.viz.phantom)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from edenkit.phantom import LANDMARKS, generate  # noqa: E402
from edenkit.viz import phantom as viz  # noqa: E402


@pytest.fixture(scope="module")
def sample():
    return generate(0, size=64)


def test_wholes_are_unions_of_their_parts(sample):
    right = viz.structure_mask(sample, "right hemithorax")
    parts = [viz.structure_mask(sample, p) for p in ("right lung", "right ribs", "right clavicle")]
    assert np.array_equal(right, np.any(parts, axis=0))
    assert viz.structure_mask(sample, "right rib 6").sum() < viz.structure_mask(sample, "right ribs").sum()
    assert not (viz.structure_mask(sample, "right lung") & viz.structure_mask(sample, "heart")).any()
    with pytest.raises(KeyError, match="liver"):
        viz.structure_mask(sample, "liver")


def test_figures_have_their_panels(sample):
    samples = [sample, generate(1, size=64), generate(2, size=64)]
    fig = viz.gallery(samples, ncols=4)
    assert sum(ax.axison for ax in fig.axes) == 6  # an image and its overlay per patient
    fig = viz.hierarchy(sample)
    titles = {ax.get_title() for ax in fig.axes}
    assert {node for node, _ in viz.HIERARCHY} <= titles
    fig = viz.variation(samples)
    assert len(fig.axes[3].collections) == len(LANDMARKS)
    numbers = viz.variation_numbers(samples)
    assert 0.3 < numbers["cardiothoracic ratio, mean"] < 0.5
    assert viz.findings(0, size=64).axes[0].get_title().startswith("no finding")
    plt.close("all")


def test_explorer_redraws_on_change(monkeypatch):
    calls = []
    monkeypatch.setattr(viz, "explorer_figure", lambda *args: calls.append(args) or plt.figure())
    widget = viz.explorer(size=64, seed=0, version=1)
    (seed_slider, size_menu, version_menu, overlay_box), finding_boxes, factor_boxes = (
        box.children for box in widget.children[0].children
    )
    seed_slider.value = 5
    size_menu.value = 128
    finding_boxes[2].value = True  # nodule
    overlay_box.value = False
    version_menu.value = 2
    factor_boxes[0].value = False  # deformation off
    assert calls[0] == (0, 64, (), True, 1, viz.V2_FACTORS)
    assert calls[-1] == (5, 128, ("nodule",), False, 2, viz.V2_FACTORS[1:])
    assert bytes(widget.children[1].value).startswith(b"\x89PNG")
    plt.close("all")


def test_explorer_figure_forces_the_chosen_findings():
    fig = viz.explorer_figure(3, 64, ("effusion",), True)
    assert "effusion" in fig.axes[1].get_title()
    plt.close("all")


def test_explorer_config_switches_factors_and_versions_figure():
    config = viz.explorer_config(64, ("nodule",), 2, ("devices",))
    assert config.version == 2 and config.devices == 1.0 and config.deformation == 0.0
    assert config.prevalence["nodule"] == 1.0 and config.prevalence["effusion"] == 0.0
    fig = viz.versions(seeds=(0, 1), size=64)
    assert len(fig.axes) == 4 and fig.axes[2].get_title().startswith("v2")
    plt.close("all")


def test_ablation_figure(monkeypatch):
    numbers = {n: {"A2_decode": 0.1, "A2_retrieval_random": 0.01, "A3_pixels": 0.7, "A3_random": 0.7}
               for n in ("none", "devices", "all")}
    monkeypatch.setattr(viz.criteria, "ablation", lambda *args, **kwargs: numbers)
    fig, out = viz.ablation()
    assert out is numbers and len(fig.axes) == 2
    plt.close("all")
