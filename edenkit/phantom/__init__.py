"""The kit's embedded data: procedural chest radiographs that know their own anatomy.

``render`` draws one patient (``generate``), ``anatomy`` holds the shapes it draws from, ``dataset``
serves phantoms as torch items, ``export`` writes them in the real datasets' on-disk layouts and
``overlay`` draws the ground truth over an image.
"""

from edenkit.phantom.dataset import PhantomDataset, add_version_argument
from edenkit.phantom.export import export_chestxray14, export_jsrt_scr
from edenkit.phantom.render import (
    FINDINGS,
    FOCAL_FINDINGS,
    LANDMARKS,
    STRUCTURES,
    PhantomConfig,
    PhantomSample,
    cardiothoracic_ratio,
    draw_findings,
    generate,
    rib_names,
)

__all__ = [
    "FINDINGS", "FOCAL_FINDINGS", "LANDMARKS", "STRUCTURES", "PhantomConfig", "PhantomDataset", "PhantomSample", "add_version_argument",
    "cardiothoracic_ratio", "draw_findings", "export_chestxray14", "export_jsrt_scr", "generate", "rib_names",
]
