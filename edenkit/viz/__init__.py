"""Figures and ipywidgets explorers used by the notebooks, one module per area.

``common`` (grey panels, PNG rendering for explorers), ``method`` (the method schematic), ``phantom``
(anatomy gallery, overlays, v1/v2, explorer), ``pretrain`` (decomposer parts and explorer, training
logs), ``pruner`` (pruning profile, collision gallery, threshold explorer), ``analysis`` (t-SNE, KDE,
few-shot and fine-tuning tables), ``data`` (real-dataset previews). Nothing in the library below
``viz`` imports it.
"""
