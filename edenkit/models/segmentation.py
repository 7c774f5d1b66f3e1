"""U-Net with a (pretrained) torchvision ResNet encoder, for grey chest X-rays.

segmentation_models_pytorch's ``Unet`` with ``in_channels=3`` has an encoder whose tensors are named
exactly like a torchvision ResNet without ``fc``, so an exported encoder loads into ``unet.encoder``
key for key (``edenkit.checkpoint.load_into_unet(model.unet, state)``). The grey input goes through
``to_backbone_input`` first, as in pretraining.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from edenkit.models.backbones import ARCHS, to_backbone_input

#: smp's default decoder; the demo profile may pass narrower channels to fit a CPU budget.
DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)


class SegmentationUNet(nn.Module):
    """Grey images [B, 1, H, W] in [0, 1] -> mask logits [B, classes, H, W] (H, W multiples of 32)."""

    def __init__(self, arch: str = "resnet50", classes: int = 1,
                 decoder_channels: tuple[int, ...] = DEFAULT_DECODER_CHANNELS):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown encoder {arch!r}; expected one of {ARCHS}")
        self.arch = arch
        self.unet = smp.Unet(encoder_name=arch, encoder_weights=None, in_channels=3, classes=classes,
                             decoder_channels=tuple(decoder_channels))

    @property
    def encoder(self) -> nn.Module:
        return self.unet.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"U-Net input must be a multiple of 32 pixels per side, got {tuple(x.shape[-2:])}")
        return self.unet(to_backbone_input(x))

