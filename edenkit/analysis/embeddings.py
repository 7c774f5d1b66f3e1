"""Encoder embeddings of image patches, shared by the locality and compositionality analyses.

An embedding is the encoder's globally average-pooled last feature map (512-d for ResNet-18, 2048-d for
ResNet-50), the representation a downstream task starts from. The projection head used in pretraining
is not part of an exported encoder; where a training checkpoint carries it (the kit's
``checkpoints/best_stage*_n*.pt``, the authors' MoCo-layout files), :func:`load_projection_head` rebuilds
it so that an analysis can also look at the space the contrastive loss was computed in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edenkit.checkpoint import detect_arch, encoder_state_dict, load_checkpoint, load_into_resnet
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


#: Where a projection head MLP (Linear-ReLU-Linear) sits in a checkpoint's tensors: the kit's query
#: encoder (``edenkit.moco.ProjectionEncoder``), then the MoCo/Adam-v1 authors' layouts.
HEAD_LAYOUTS = ("encoder_q.head.{}.", "module.encoder_q.fc.{}.", "encoder_q.fc.{}.", "fc.{}.")


def head_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint that holds ``path``'s projection head: ``path`` itself if it has one, else, for an
    encoder exported into a kit run folder, the final stage's best training checkpoint beside it
    (``checkpoints/best_stage<s>_n<n>.pt`` with the highest stage, or that stage's own checkpoint for a
    stage's encoder ``encoder[_best]_stage<s>_n<n>.pt``); None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    if _find_head(load_checkpoint(path)) is not None:
        return path
    stage = path.stem.removeprefix("encoder_").removeprefix("best_")
    if stage.startswith("stage"):  # a curriculum cut short: its head, not the final stage's
        own = path.parent / "checkpoints" / f"best_{stage}.pt"
        return own if own.is_file() else None
    candidates = sorted((path.parent / "checkpoints").glob("best_stage*_n*.pt"),
                        key=lambda p: int(p.stem.split("_")[1].removeprefix("stage")))
    return candidates[-1] if candidates else None


def _tensors(obj) -> dict:
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return obj[key]
    return obj if isinstance(obj, dict) else {}


def _find_head(obj) -> dict[str, torch.Tensor] | None:
    tensors = _tensors(obj)
    for layout in HEAD_LAYOUTS:
        names = [layout.format(i) + p for i in (0, 2) for p in ("weight", "bias")]
        if all(n in tensors for n in names):
            return dict(zip(("0.weight", "0.bias", "2.weight", "2.bias"), (tensors[n] for n in names)))
    return None


def load_projection_head(checkpoint: str | Path | dict, trunk_state: dict[str, torch.Tensor] | None = None):
    """The projection head MLP of a training checkpoint (eval mode), or None when it has none.

    With ``trunk_state`` (the encoder the head will sit on), the checkpoint's trunk must be that same
    encoder (checked on the first convolution): a head belongs to the backbone it was trained with.
    """
    obj = load_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    head_state = _find_head(obj)
    if head_state is None:
        return None
    if trunk_state is not None and not torch.equal(encoder_state_dict(obj)["conv1.weight"], trunk_state["conv1.weight"]):
        raise ValueError(f"{checkpoint}: its projection head was trained with a different backbone than the encoder")
    hidden, features = head_state["0.weight"].shape
    head = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.ReLU(inplace=True),
                               torch.nn.Linear(hidden, head_state["2.weight"].shape[0]))
    head.load_state_dict(head_state)
    return head.eval()
