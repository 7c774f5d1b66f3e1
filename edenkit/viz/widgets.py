"""What the ipywidgets explorers share.

Explorers show their picture in an ``ipywidgets.Image`` holding a PNG rather than in an ``Output``
widget: headless runners (papermill, nbval) then see plain widget-state updates and no captured
outputs; an ``Output`` with ``clear_output(wait=True)`` hung nbclient intermittently
(jupyter/nbclient#312).
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """Render ``fig`` to PNG bytes and close it (so the notebook does not also display it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
