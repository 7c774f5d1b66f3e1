"""torchvision backbones for single-channel chest X-rays.

The kit keeps torchvision's 3-channel ``conv1`` so that an exported encoder is a plain torchvision
ResNet ``state_dict`` (loadable next to ImageNet weights and into segmentation_models_pytorch). A grey
image in [0, 1] is replicated to three channels and normalized with the ImageNet statistics by
``to_backbone_input``; every model in the kit calls it, so pretraining and evaluation agree.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ARCHS = ("resnet18", "resnet34", "resnet50")
FEATURE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}


def to_backbone_input(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] grey in [0, 1] -> [B, 3, H, W] ImageNet-normalized (3-channel input passes through)."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def build_resnet(arch: str, num_classes: int | None = None) -> nn.Module:
    """A randomly initialized torchvision ResNet; ``fc`` is ``Identity`` when ``num_classes`` is None."""
    if arch not in ARCHS:
        raise ValueError(f"unknown backbone {arch!r}; expected one of {ARCHS}")
    model = getattr(torchvision.models, arch)(weights=None)
    if num_classes is None:
        model.fc = nn.Identity()
    else:
        model.fc = nn.Linear(FEATURE_DIMS[arch], num_classes)
    return model


class GreyEncoder(nn.Module):
    """A torchvision ResNet trunk that takes grey images in [0, 1] and returns pooled features."""

    def __init__(self, arch: str = "resnet18"):
        super().__init__()
        self.arch = arch
        self.dim = FEATURE_DIMS[arch]
        self.net = build_resnet(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(to_backbone_input(x))
