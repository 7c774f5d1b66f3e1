"""The published numbers of Adam-v1, for side-by-side tables ("the paper" next to "this run").

Source: M. R. Hosseinzadeh Taher, M. B. Gotway, J. Liang, "Towards Foundation Models Learned from
Anatomy in Medical Imaging via Self-Supervision", MICCAI DART 2023, arXiv 2309.15358.
The few-shot table is copied exactly from the paper's table. Full fine-tuning, ablation and
compositionality numbers are read off bar charts and density plots: ``APPROXIMATE`` says so, and every
printed table that uses them must say so too. These are the paper's numbers on real chest X-rays, never
this kit's measurements: the kit's phantom runs are not expected to reproduce them.
"""

from __future__ import annotations

CITATION = (
    "Hosseinzadeh Taher, Gotway, Liang. Towards Foundation Models Learned from Anatomy in Medical Imaging "
    "via Self-Supervision. MICCAI DART 2023 (arXiv 2309.15358)"
)

#: Keys of the numbers that were read off figures (about +-0.1 for bars), not copied from a table.
APPROXIMATE = frozenset({"FULL_FINETUNE", "ABLATION_GRANULARITY", "ABLATION_NO_PRUNER", "DRIVE",
                         "COMPOSITIONALITY_PEAK"})

SHOTS = (3, 6, 12, 24)

#: Few-shot Dice (%) on SCR heart and clavicle (both clavicles as one class), exact from the paper's table.
FEWSHOT_DICE: dict[str, dict[str, dict[int, float]]] = {
    "MoCo-v2": {"heart": {3: 44.84, 6: 59.97, 12: 69.90, 24: 79.69},
                "clavicle": {3: 23.77, 6: 29.24, 12: 38.07, 24: 44.47}},
    "DenseCL": {"heart": {3: 64.88, 6: 74.43, 12: 75.79, 24: 80.06},
                "clavicle": {3: 36.43, 6: 51.31, 12: 63.03, 24: 69.13}},
    "DiRA": {"heart": {3: 63.76, 6: 64.47, 12: 76.10, 24: 81.42},
             "clavicle": {3: 31.42, 6: 38.59, 12: 66.81, 24: 73.06}},
    "Adam": {"heart": {3: 84.35, 6: 86.70, 12: 89.79, 24: 90.45},
             "clavicle": {3: 66.69, 6: 79.41, 12: 83.96, 24: 84.76}},
}

#: Full fine-tuning (approximate, bar-chart readings): task -> metric, Adam, MoCo-v2, best other, random init.
#: Segmentation metrics are Dice (%) except ChestX-Det (IoU %); classification metrics are (mean) AUC (%).
FULL_FINETUNE: dict[str, dict] = {
    "SCR clavicle": {"metric": "Dice", "Adam": 90.8, "MoCo-v2": 82.9, "best_other": ("DiRA", 88.7), "Random": 80.7},
    "SCR heart": {"metric": "Dice", "Adam": 95.0, "MoCo-v2": 92.5, "best_other": ("DiRA", 94.2), "Random": 91.1},
    "ChestX-Det": {"metric": "IoU", "Adam": 74.2, "MoCo-v2": 70.85, "best_other": ("VICRegL", 72.8),
                   "Random": 70.4},
    "SIIM-ACR": {"metric": "Dice", "Adam": 69.6, "MoCo-v2": 67.9, "best_other": ("DiRA", 69.25), "Random": 67.6},
    "VinDr-RibCXR": {"metric": "Dice", "Adam": 71.0, "MoCo-v2": 69.65, "best_other": ("DiRA", 69.65),
                     "Random": 63.9},
    "ChestX-ray14": {"metric": "mAUC", "Adam": 81.7, "MoCo-v2": 80.4,
                     "best_other": ("ImageNet-supervised", 81.7), "Random": 80.3},
    "VinDr-CXR": {"metric": "mAUC", "Adam": 90.1, "MoCo-v2": 85.3, "best_other": ("ChestX-ray14-supervised", 90.0),
                  "Random": 73.6},
    "Shenzhen": {"metric": "AUC", "Adam": 94.6, "MoCo-v2": 91.6, "best_other": ("ChestX-ray14-supervised", 96.35),
                 "Random": 89.0},
}

#: Ablation of the granularity curriculum (approximate): stages -> task -> score (%).
ABLATION_GRANULARITY: dict[str, dict[str, float]] = {
    "n=0": {"SCR heart": 92.4, "SIIM-ACR": 67.9, "ChestX-Det": 70.8},
    "n=0->2": {"SCR heart": 94.5, "SIIM-ACR": 69.0, "ChestX-Det": 73.0},
    "n=0->2->4": {"SCR heart": 95.0, "SIIM-ACR": 69.6, "ChestX-Det": 74.2},
}

#: The full curriculum without the purposive pruner (approximate).
ABLATION_NO_PRUNER: dict[str, float] = {"SCR heart": 93.7, "SIIM-ACR": 67.55, "ChestX-Det": 73.0}

#: EyePACS-pretrained models fine-tuned on DRIVE vessel segmentation, Dice (%) (approximate).
DRIVE: dict[str, float] = {"Random": 78.3, "ImageNet": 79.2, "MoCo-v2": 78.45, "DiRA": 78.5, "Adam": 80.0}

#: Where each method's density of cos(E(whole), sum E(parts)) peaks in the paper's figure (approximate).
COMPOSITIONALITY_PEAK: dict[str, float] = {"Adam": 0.84, "DiRA": 0.55, "MoCo-v2": 0.48}

#: The locality figure is qualitative (t-SNE of 10 landmarks on 1,000 ChestX-ray14 images): no number.
LOCALITY_FINDING = (
    "Adam's landmark embeddings form ten well-separated clusters; MoCo-v2, DenseCL and DiRA mix them "
    "(t-SNE, 1,000 ChestX-ray14 images; the paper gives no kNN accuracy or silhouette score)."
)

#: The kit's method names -> the paper's.
KIT_TO_PAPER = {"adam": "Adam", "mocov2": "MoCo-v2", "random": "Random"}
