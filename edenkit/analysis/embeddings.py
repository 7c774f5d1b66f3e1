"""Encoder embeddings of image patches, shared by the locality and compositionality analyses.

An embedding is the encoder's globally average-pooled last feature map (512-d for ResNet-18, 2048-d for
ResNet-50), the representation a downstream task starts from. The projection head used in pretraining
is not part of an exported encoder and is not used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edenkit.checkpoint import detect_arch, encoder_state_dict, load_into_resnet
from edenkit.models.backbones import GreyEncoder


def load_encoder(state_or_path: dict[str, torch.Tensor] | str | Path) -> GreyEncoder:
    """A ``GreyEncoder`` in eval mode from an encoder state_dict or any checkpoint file the kit reads."""
    state = state_or_path if isinstance(state_or_path, dict) else encoder_state_dict(state_or_path)
    encoder = GreyEncoder(detect_arch(state))
    load_into_resnet(encoder.net, state)
    return encoder.eval()


def resize(patches: torch.Tensor, size: int | None) -> torch.Tensor:
    """[M, 1, h, w] -> [M, 1, size, size] (bilinear, antialiased); unchanged when ``size`` is None."""
    if size is None or tuple(patches.shape[-2:]) == (size, size):
        return patches
    return F.interpolate(patches, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def embed(encoder: torch.nn.Module, patches: torch.Tensor, input_size: int | None = None,
          batch_size: int = 64) -> np.ndarray:
    """Embeddings [M, D] of grey patches [M, 1, h, w], each resized to ``input_size`` first."""
    encoder.eval()
    device = next(encoder.parameters()).device
    out = [encoder(resize(chunk, input_size).to(device)).cpu() for chunk in patches.split(batch_size)]
    return torch.cat(out).numpy().astype(np.float64)
