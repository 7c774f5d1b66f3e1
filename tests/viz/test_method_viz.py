"""The method schematic names every part of the method and the three stages of the curriculum."""

from __future__ import annotations

import matplotlib.pyplot as plt

from edenkit.viz.method import method_schematic


def test_schematic_shows_every_part_and_the_curriculum():
    fig = method_schematic()
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    for part in ("student", "teacher", "EMA", "queue", "anatomy decomposer", "purposive pruner", "InfoNCE",
                 "n = 0", "n = 2", "n = 4", "curriculum"):
        assert part in text, part
    plt.close(fig)
