"""Pretraining data: the view pairs use the run's augmentation."""

import torch

from edenkit.pretrain_config import load_pretrain_config
from edenkit.pretrain_data import pair_loader


def test_pair_loader_uses_the_configured_augmentation():
    cfg = load_pretrain_config("ci", ["data.crop_scale=[0.5,0.9]", "data.rotation=12"])
    loader = pair_loader([{"image": torch.rand(1, 64, 64)}] * 16, 0, cfg, seed=0, train=True)
    crop, *_, rotation = loader.dataset.augment.view.transforms
    assert crop.scale == (0.5, 0.9) and list(rotation.degrees) == [-12.0, 12.0]
