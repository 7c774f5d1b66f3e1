"""The method in one picture: a schematic of Adam drawn with matplotlib (no image file to keep in sync).

``method_schematic()`` draws one training step (decomposer, two views, student and teacher, the queue,
the purposive pruner, InfoNCE) above the coarse-to-fine curriculum n = 0 -> 2 -> 4.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from edenkit.decomposer import part_boxes

COLOURS = {"data": "#e8e8e8", "student": "#f4c7c3", "teacher": "#c6dbef", "queue": "#d9ead3",
           "pruner": "#fde9a9", "loss": "#ead1f5"}

# (name, centre x, centre y, width, height, text, colour key); the axes run 0..16 by 0..9.
BOXES = (
    ("image", 1.1, 6.6, 1.7, 1.1, "chest X-ray", "data"),
    ("decomposer", 3.8, 6.6, 2.4, 1.1, "anatomy decomposer\ncut into $2^n$ parts,\ndraw one: the anchor", "data"),
    ("view1", 6.6, 7.7, 1.8, 0.8, "view 1", "data"),
    ("view2", 6.6, 5.5, 1.8, 0.8, "view 2", "data"),
    ("student", 9.3, 7.7, 2.4, 1.0, "student (query encoder)\nResNet + MLP head", "student"),
    ("teacher", 9.3, 5.5, 2.4, 1.0, "teacher (key encoder)\nEMA of the student", "teacher"),
    ("queue", 9.3, 3.4, 2.4, 1.0, "queue: the teacher's\nlast K keys (negatives)", "queue"),
    ("pruner", 12.4, 4.5, 2.4, 1.1, "purposive pruner\ndrop negatives with\ncos(q, m) $\\geq$ 0.8", "pruner"),
    ("loss", 14.9, 6.6, 1.9, 1.1, "InfoNCE\n($\\tau$ = 0.2)", "loss"),
)


def _box(ax, x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05,rounding_size=0.15",
                                facecolor=COLOURS[colour], edgecolor="#444444", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, start, end, label: str = "", dashed: bool = False, rad: float = 0.0, offset=(0.0, 0.18)) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, linewidth=1.1,
                                 color="#333333", linestyle="--" if dashed else "-",
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))
    if label:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], label, ha="center",
                va="bottom", fontsize=7.5, color="#333333")


def _edge(box: dict, side: str) -> tuple[float, float]:
    x, y, w, h = box
    return {"left": (x - w / 2 - 0.05, y), "right": (x + w / 2 + 0.05, y),
            "top": (x, y + h / 2 + 0.05), "bottom": (x, y - h / 2 - 0.05)}[side]


def _curriculum(ax, y: float) -> None:
    """The three stages as tiled squares, n = 0 -> 2 -> 4, with what changes between them."""
    ax.text(0.3, y + 1.55, "coarse-to-fine curriculum: each stage starts from the previous one's student, "
            "teacher and queue", fontsize=9, fontweight="bold", va="center")
    notes = ("n = 0: whole images\nplain MoCo-v2, no pruner", "n = 2: 4 parts\npruner on",
             "n = 4: 16 parts\npruner on")
    side = 1.8
    for i, (n, note) in enumerate(zip((0, 2, 4), notes)):
        x0 = 1.0 + i * 5.2
        for y0_, x0_, y1_, x1_ in part_boxes(16, 16, n):
            ax.add_patch(Rectangle((x0 + x0_ / 16 * side, y - side / 2 + (16 - y1_) / 16 * side),
                                   (x1_ - x0_) / 16 * side, (y1_ - y0_) / 16 * side,
                                   facecolor=COLOURS["data"], edgecolor="#555555", linewidth=0.8))
        ax.add_patch(Rectangle((x0, y - side / 2 + (1 - 1 / 2 ** (n // 2)) * side), side / 2 ** (n // 2),
                               side / 2 ** (n // 2), facecolor=COLOURS["student"], edgecolor="#aa0000",
                               linewidth=1.2))  # the part an anchor could be at this level
        ax.text(x0 + side + 0.3, y, note, fontsize=8.5, va="center")
        if i < 2:
            _arrow(ax, (x0 + side + 2.55, y), (x0 + 5.0, y))


def method_schematic() -> Figure:
    """A schematic of Adam: one training step above the curriculum (the figure; nothing is computed)."""
    fig, ax = plt.subplots(figsize=(13.0, 7.3))
    ax.set_xlim(0, 16.2)
    ax.set_ylim(0, 9)
    ax.set_axis_off()
    boxes = {name: (x, y, w, h) for name, x, y, w, h, _, _ in BOXES}
    for _, x, y, w, h, text, colour in BOXES:
        _box(ax, x, y, w, h, text, colour)
    _arrow(ax, _edge(boxes["image"], "right"), _edge(boxes["decomposer"], "left"), "n", offset=(0.0, 0.1))
    _arrow(ax, _edge(boxes["decomposer"], "right"), _edge(boxes["view1"], "left"), "augment", rad=-0.2,
           offset=(-0.3, 0.25))
    _arrow(ax, _edge(boxes["decomposer"], "right"), _edge(boxes["view2"], "left"), "augment", rad=0.2,
           offset=(-0.3, -0.55))
    _arrow(ax, _edge(boxes["view1"], "right"), _edge(boxes["student"], "left"))
    _arrow(ax, _edge(boxes["view2"], "right"), _edge(boxes["teacher"], "left"))
    _arrow(ax, (boxes["student"][0] - 0.5, boxes["student"][1] - 0.55), (boxes["teacher"][0] - 0.5,
           boxes["teacher"][1] + 0.55), "EMA, m = 0.999", offset=(-0.85, -0.1))
    _arrow(ax, _edge(boxes["teacher"], "bottom"), _edge(boxes["queue"], "top"), "enqueue k", offset=(0.75, -0.1))
    _arrow(ax, _edge(boxes["student"], "right"), _edge(boxes["loss"], "left"), "query q", rad=-0.15,
           offset=(0.0, 0.25))
    _arrow(ax, _edge(boxes["teacher"], "right"), _edge(boxes["loss"], "left"), "positive key k", rad=0.1,
           offset=(0.1, -0.55))
    _arrow(ax, _edge(boxes["queue"], "right"), _edge(boxes["pruner"], "left"), "negatives m", offset=(-0.85, -0.05))
    _arrow(ax, _edge(boxes["pruner"], "right"), (boxes["loss"][0], boxes["loss"][1] - 0.6), "kept negatives",
           rad=0.2, offset=(0.5, -0.35))
    _arrow(ax, _edge(boxes["loss"], "top"), _edge(boxes["student"], "top"), "gradient (student only)",
           dashed=True, rad=0.25, offset=(0.0, 0.95))
    ax.plot([0.3, 15.9], [2.35, 2.35], color="#bbbbbb", linewidth=0.8)
    _curriculum(ax, 1.0)
    ax.set_title("Adam: MoCo-v2 on anatomical parts, with a purposive pruner and a coarse-to-fine curriculum",
                 fontsize=11)
    fig.tight_layout()
    return fig
