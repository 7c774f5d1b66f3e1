"""Figures and ipywidgets explorers used by the notebooks, one module per area.

``phantom`` (anatomy gallery, overlays, explorer), ``pretrain`` (decomposer parts, pruner, training
logs), ``analysis`` (t-SNE, KDE, few-shot and fine-tuning tables), ``data`` (real-dataset previews).
Nothing in the library below ``viz`` imports it.
"""
