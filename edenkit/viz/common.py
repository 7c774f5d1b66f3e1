"""What the figures and the ipywidgets explorers share: a grey-image panel and PNG rendering.

Explorers show their picture in an ``ipywidgets.Image`` holding a PNG rather than in an ``Output``
widget: headless runners (papermill, nbval) then see plain widget-state updates and no captured
outputs; an ``Output`` with ``clear_output(wait=True)`` hung nbclient intermittently
(jupyter/nbclient#312).
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes and close it (so the notebook does not also display it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def show_grey(ax, image, title: str | None = None) -> None:
    """Draw a grey image in [0, 1] (NumPy [H, W] or a tensor [1, H, W]) without ticks."""
    image = image.squeeze(0) if isinstance(image, torch.Tensor) and image.ndim == 3 else image
    ax.imshow(np.asarray(image), cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)

