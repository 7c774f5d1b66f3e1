"""The collision study's figures: the gallery shows the nearest negatives, the explorer keeps its size."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from edenkit.analysis.pruning import CollisionStudy, EncoderEmbeddings
from edenkit.viz import pruner


def unit(x):
    return torch.nn.functional.normalize(x, dim=1)


@pytest.fixture
def study():
    g = torch.Generator().manual_seed(0)
    parts_q, parts_k = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 0, 1, 0, 1])
    base = unit(torch.randn(2, 8, generator=g))  # one direction per part: collisions are close
    encoders = {}
    for name, noise in (("random init", 5.0), ("trained", 0.2)):
        q = unit(base[parts_q] + noise * torch.randn(4, 8, generator=g))
        encoders[name] = EncoderEmbeddings(q, q, unit(base[parts_k] + noise * torch.randn(6, 8, generator=g)))
    return CollisionStudy(level=1, tau=0.2, threshold=0.8, thresholds=[0.5, 0.8, 0.9],
                          query_views=torch.rand(4, 1, 16, 16, generator=g), queue_views=torch.rand(6, 1, 16, 16, generator=g),
                          query_parts=parts_q, queue_parts=parts_k, query_patients=torch.tensor([0, 0, 1, 1]),
                          queue_patients=torch.tensor([2, 2, 3, 3, 4, 4]), encoders=encoders)


def test_study_figures_have_one_panel_per_encoder(study):
    for draw in (pruner.similarity_panels, pruner.profile_panels, pruner.mask_panels):
        assert len([ax for ax in draw(study).axes if ax.get_visible()]) == 2
    assert len(pruner.loss_panel(study).axes[0].lines) == 4
    plt.close("all")


def test_gallery_marks_pruned_collisions(study):
    fig = pruner.collision_gallery(study, "trained", queries=2, negatives=3)
    assert len(fig.axes) == 2 * 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("query: part")
    nearest = study.nearest_negatives("trained", study.most_pruned_queries("trained", 1)[0], 3)
    assert titles[1].startswith(f"cos {nearest[0]['cos']:.2f}")
    assert ("PRUNED" in titles[1]) == nearest[0]["pruned"]
    assert ("collision" in titles[1]) == nearest[0]["collision"]
    plt.close("all")


def test_threshold_explorer_changes_the_picture_not_its_size(study):
    widget = pruner.threshold_explorer(study)
    (encoder, threshold, query), picture = widget.children[0].children, widget.children[1]
    first = picture.value
    sizes = {first[16:24]}
    threshold.value = 0.3
    assert picture.value != first
    sizes.add(picture.value[16:24])
    encoder.value = "random init"
    query.value = 3
    sizes.add(picture.value[16:24])
    assert len(sizes) == 1  # width and height in the PNG header
    plt.close("all")
