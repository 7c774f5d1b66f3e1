"""Checkpoints: atomic save, safe load, encoder export.

Checkpoints hold plain data only (tensors, numbers, strings, lists, dicts) so that they load with
``torch.load(weights_only=True)``. A file is written to a temporary name in the same folder and then
renamed, so a kill never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from edenkit.files import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or not of the expected layout."""


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` via a temporary file and an atomic rename."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" not in str(e).lower():
            raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from e
        # torch's message goes on to suggest weights_only=False, i.e. running the file's code: not passed on
        called = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it would call {called.group(1)}" if called else "it holds objects other than plain data"
        raise CheckpointError(
            f"refused checkpoint {path} as unsafe: {what} when loaded; edenkit loads only plain data "
            "(tensors, numbers, strings, lists, dicts)"
        ) from None
    except Exception as e:  # truncated files, other formats
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from e


def export_encoder(backbone_state_dict: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write a plain torchvision ResNet ``state_dict`` without ``fc`` (the kit's exchange format)."""
    state = {k: v.detach().cpu().clone() for k, v in backbone_state_dict.items() if not k.startswith("fc.")}
    return atomic_save(state, path)


# --------------------------------------------------------------------------------------------------
# Interop: any supported layout -> a plain torchvision ResNet state_dict without ``fc``.
#
#   edenkit training checkpoint   {"model": {"encoder_q.<trunk>.*", "encoder_q.<head>.*",
#                                  "encoder_k.*", "queue", "queue_ptr"}, "optimizer": ..., ...}
#   authors' Adam-v1 checkpoint,  {"state_dict": {"module.encoder_q.conv1.weight", ...,
#   facebookresearch/moco          "module.encoder_q.fc.0.*", "module.encoder_q.fc.2.*" (MLP head;
#                                  plain "fc.*" without --mlp), "module.encoder_k.*", "module.queue",
#                                  "module.queue_ptr"}, "arch": ..., "epoch": ..., "optimizer": ...}
#   bare Adam-v1 query encoder    {"conv1.weight", ..., "fc.0.*", "fc.2.*"}
#   torchvision / edenkit export  {"conv1.weight", ..., optionally "fc.weight", "fc.bias"}
#   smp U-Net (fine-tuned)        {"encoder.conv1.weight", ..., "decoder.*", "segmentation_head.*"}
# --------------------------------------------------------------------------------------------------

#: Keys under these prefixes (after the trunk prefix is removed) are a classifier or projection head.
HEAD_PREFIXES = ("fc.",)
#: Where the query encoder lives in a momentum-contrast model (MoCo, Adam-v1, edenkit).
QUERY_ENCODER_PREFIX = "encoder_q."
#: The entries of a training checkpoint that may hold the model's tensors, in the order tried.
_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "encoder")
#: Keys that identify the top of a ResNet trunk (the stem and the first block).
_TRUNK_MARKERS = ("conv1.weight", "bn1.weight", "layer1.0.conv1.weight")


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _tensor_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The dict of tensors inside a training checkpoint (its ``state_dict``/``model`` entry), or ``obj``."""
    if _is_tensor_dict(obj):
        return obj
    if isinstance(obj, dict):
        for key in _CONTAINER_KEYS:
            if key in obj:
                return _tensor_dict(obj[key], f"{source}[{key!r}]")
    found = sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(
        f"{source}: expected a dict of tensors, or a checkpoint holding one under "
        f"{' / '.join(repr(k) for k in _CONTAINER_KEYS)}; found {found}"
    )


def _trunk_prefix(keys: set[str], source: str) -> str:
    """The one prefix P under which a ResNet trunk sits (P + "conv1.weight", ...), e.g. "", "net."."""
    marker = _TRUNK_MARKERS[0]
    candidates = {k[: -len(marker)] for k in keys if k.endswith(marker)}
    found = sorted(p for p in candidates if all(p + m in keys for m in _TRUNK_MARKERS))
    if len(found) != 1:
        sample = sorted(keys)[:6]
        what = "no ResNet trunk" if not found else f"several ResNet trunks under {found}"
        raise CheckpointError(f"{source}: {what} (expected keys like 'conv1.weight'); first keys: {sample}")
    return found[0]


def detect_arch(state_dict: dict[str, torch.Tensor]) -> str:
    """``resnet18`` / ``resnet34`` / ``resnet50`` from the shapes of a plain ResNet trunk state_dict."""
    bottleneck = "layer1.0.conv3.weight" in state_dict
    blocks_in_layer3 = len({k.split(".")[1] for k in state_dict if k.startswith("layer3.")})
    arch = {(False, 2): "resnet18", (False, 6): "resnet34", (True, 6): "resnet50"}.get((bottleneck, blocks_in_layer3))
    if arch is None:
        raise CheckpointError(
            f"unsupported ResNet depth ({'bottleneck' if bottleneck else 'basic'} blocks, "
            f"{blocks_in_layer3} in layer3); supported: resnet18, resnet34, resnet50"
        )
    return arch


def split_encoder_state(state: dict[str, torch.Tensor], source: str = "state_dict"):
    """Split a model's tensors into the ResNet trunk and the rest.

    Returns ``(trunk, dropped)``: ``trunk`` is a plain torchvision ResNet state_dict without ``fc``;
    ``dropped`` lists the original names left out (key encoder, queue, heads, U-Net decoder).
    Raises ``CheckpointError`` when a name under the trunk is not a ResNet key, or one is missing, so
    that nothing of the trunk is ever dropped silently.
    """
    names = {k: k for k in state}  # current name -> original name

    def strip(prefix: str) -> None:
        nonlocal names
        names = {k[len(prefix) :]: o for k, o in names.items() if k.startswith(prefix)}

    if all(k.startswith("module.") for k in names):  # DataParallel / DistributedDataParallel
        strip("module.")
    if any(k.startswith(QUERY_ENCODER_PREFIX) for k in names):  # momentum contrast: the query side
        strip(QUERY_ENCODER_PREFIX)
    strip(_trunk_prefix(set(names), source))  # "", "net." (GreyEncoder), "encoder." (smp), "0.net.", ...
    trunk = {k: state[o] for k, o in names.items() if not k.startswith(HEAD_PREFIXES)}
    expected = _resnet_trunk_keys(detect_arch(trunk))
    unexpected, missing = sorted(set(trunk) - expected), sorted(expected - set(trunk))
    if unexpected or missing:
        raise CheckpointError(
            f"{source}: the ResNet trunk does not match torchvision's keys "
            f"(unexpected: {unexpected[:8]}, missing: {missing[:8]})"
        )
    kept = {names[k] for k in trunk}
    return trunk, sorted(k for k in state if k not in kept)


def _resnet_trunk_keys(arch: str) -> set[str]:
    from edenkit.models.backbones import build_resnet

    return set(build_resnet(arch).state_dict())  # fc is Identity: no head keys


def encoder_state_dict(path_or_obj: str | Path | dict) -> dict[str, torch.Tensor]:
    """Any supported checkpoint (a path or a loaded object) -> plain torchvision state_dict without ``fc``.

    See the layouts listed above; prefixes (``module.``, ``encoder_q.``, ``net.``, ``encoder.``) and heads
    (``fc.*``, including the MoCo MLP ``fc.0``/``fc.2``) are removed, the key encoder and the queue are
    ignored. Tensors are returned on the CPU, detached.
    """
    if isinstance(path_or_obj, (str, Path)):
        source, obj = str(path_or_obj), load_checkpoint(path_or_obj)
    else:
        source, obj = "checkpoint object", path_or_obj
    trunk, _ = split_encoder_state(_tensor_dict(obj, source), source)
    return {k: v.detach().cpu() for k, v in trunk.items()}


def _check_load(result, source: str, allowed_missing: tuple[str, ...]) -> None:
    missing = [k for k in result.missing_keys if not k.startswith(allowed_missing)]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{source}: strict load failed (missing: {missing[:8]}, unexpected: {result.unexpected_keys[:8]})"
        )


def load_into_resnet(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Load an encoder state_dict into a torchvision ResNet: every trunk key must match.

    Only the head (``fc``, which a downstream task initializes itself) may be absent from ``state_dict``.
    """
    result = model.load_state_dict(state_dict, strict=False)
    _check_load(result, "load_into_resnet", allowed_missing=HEAD_PREFIXES)
    return model


def load_into_unet(unet: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Load an encoder state_dict into a segmentation_models_pytorch U-Net's ``encoder``, strictly.

    smp names the encoder's tensors ``encoder.conv1.weight`` ...; loading into the U-Net itself (the
    authors' README snippet) matches nothing, and ``strict=False`` hides it. ``unet.encoder`` is a
    torchvision ResNet without ``fc``, so the kit's state_dicts load into it key for key.
    """
    encoder = getattr(unet, "encoder", None)
    if encoder is None:
        raise CheckpointError(f"load_into_unet: {type(unet).__name__} has no 'encoder' attribute")
    # smp's ResNetEncoder.load_state_dict drops fc keys but returns None; call nn.Module's directly.
    trunk = {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIXES)}
    result = torch.nn.Module.load_state_dict(encoder, trunk, strict=False)
    _check_load(result, "load_into_unet", allowed_missing=())
    return unet


# --------------------------------------------------------------------------------------------------
# Baselines: random initialization, and ImageNet weights when they are already on this machine.
# --------------------------------------------------------------------------------------------------


def random_state_dict(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded torchvision random initialization (torchvision's own init), without ``fc``."""
    from edenkit.models.backbones import build_resnet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_resnet(arch).state_dict()


def imagenet_state_dict(arch: str, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``arch`` from a local file; never downloads.

    ``path`` defaults to the file torchvision itself would have cached (``$TORCH_HOME/hub/checkpoints``).
    """
    import torchvision

    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    if path is None:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"ImageNet weights for {arch} not found at {path}; edenkit never downloads them. Put "
            f"{weights.url} there (or pass its path) to use the ImageNet baseline."
        )
    return encoder_state_dict(path)


def resolve_encoder(spec: str | Path, arch: str | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """``"random"``, ``"imagenet"`` or a checkpoint path -> encoder state_dict (the CLI's ``--encoder``)."""
    if str(spec) in ("random", "imagenet"):
        if arch is None:
            raise CheckpointError(f"--encoder {spec}: an architecture is needed (e.g. --arch resnet18)")
        return random_state_dict(arch, seed) if str(spec) == "random" else imagenet_state_dict(arch)
    state = encoder_state_dict(spec)
    if arch is not None and detect_arch(state) != arch:
        raise CheckpointError(f"{spec}: holds a {detect_arch(state)} encoder, but --arch is {arch}")
    return state


# ----------------------------------------------------------------------------------------------------
# The --encoder / --arch arguments shared by the transfer and analysis commands
# ----------------------------------------------------------------------------------------------------


def add_encoder_arguments(parser) -> None:
    """``--encoder [NAME=]SPEC`` (repeatable) and ``--arch``, as every transfer and analysis CLI takes them."""
    parser.add_argument("--encoder", action="append", required=True, metavar="[NAME=]SPEC",
                        help="checkpoint path, 'random' or 'imagenet' (local file only); repeat to compare")
    parser.add_argument("--arch", default="resnet18",
                        help="resnet18 / resnet34 / resnet50, for 'random' and 'imagenet' (a checkpoint names its own)")


def parse_encoder_specs(specs) -> dict[str, str]:
    """``["adam=runs/x.pth", "random"]`` -> ``{"adam": "runs/x.pth", "random": "random"}``."""
    named = {}
    for spec in specs:
        name, _, value = spec.rpartition("=") if "=" in spec else (Path(spec).stem, "", spec)
        named[name] = value
    return named

