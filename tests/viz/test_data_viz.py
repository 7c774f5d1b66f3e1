"""The dataset gallery leaves a gap between a row of images and the titles of the row below."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from edenkit.viz.data import show_items


class Items:
    label_names = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule")
    mask_names = ("heart",)

    def __getitem__(self, i):
        return {"image": torch.rand(1, 32, 32), "image_id": f"{i:08d}_000.png", "labels": torch.ones(6),
                "masks": torch.zeros(1, 32, 32)}


def test_titles_do_not_touch_the_row_above():
    fig = show_items(Items(), range(8), title="gallery", columns=4)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    upper, lower = fig.axes[0], fig.axes[4]
    gap = upper.get_window_extent(renderer).y0 - lower.title.get_window_extent(renderer).y1
    assert gap > 4, gap  # pixels at the figure's dpi
    assert " ..." in lower.get_title()  # a long list of labels is shortened, not spread over the image
    plt.close(fig)
