"""Checkpoint interop: each supported key layout, built here exactly as its producer writes it."""

from collections import OrderedDict

import pytest
import segmentation_models_pytorch as smp
import torch
from torch import nn

from edenkit.checkpoint import (
    CheckpointError,
    atomic_save,
    detect_arch,
    encoder_state_dict,
    imagenet_state_dict,
    load_into_resnet,
    load_into_unet,
    random_state_dict,
    resolve_encoder,
    split_encoder_state,
)
from edenkit.models.backbones import build_resnet

ARCH = "resnet18"


@pytest.fixture(scope="module")
def query():
    """A torchvision ResNet-18 whose fc is the MoCo-v2 / Adam-v1 MLP head (fc.0, fc.2)."""
    torch.manual_seed(1)
    model = build_resnet(ARCH, num_classes=128)
    model.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
    return model


@pytest.fixture(scope="module")
def key_encoder(query):
    """A key encoder with different weights, so that picking the wrong side is detected."""
    torch.manual_seed(2)
    model = build_resnet(ARCH, num_classes=128)
    model.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
    return model


def _trunk(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}


def _moco_style_checkpoint(query, key_encoder):
    """facebookresearch/moco main_moco.py and the authors' Adam-v1: DDP-wrapped MoCo under "state_dict"."""
    state = OrderedDict()
    for k, v in query.state_dict().items():
        state[f"module.encoder_q.{k}"] = v
    for k, v in key_encoder.state_dict().items():
        state[f"module.encoder_k.{k}"] = v
    state["module.queue"] = torch.randn(128, 4096)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    return {"epoch": 200, "arch": "resnet18", "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}


def _assert_is_query_trunk(converted, query):
    expected = _trunk(query)
    assert set(converted) == set(expected)
    assert not any(k.startswith("fc.") for k in converted)
    for k, v in expected.items():
        assert torch.equal(converted[k], v), k


def test_moco_and_adam_v1_full_checkpoint(query, key_encoder, tmp_path):
    ckpt = _moco_style_checkpoint(query, key_encoder)
    path = atomic_save(ckpt, tmp_path / "checkpoint_0199.pth.tar")
    _assert_is_query_trunk(encoder_state_dict(path), query)
    _, dropped = split_encoder_state(ckpt["state_dict"])
    assert "module.queue" in dropped and "module.queue_ptr" in dropped
    assert {"module.encoder_q.fc.0.weight", "module.encoder_q.fc.2.bias"} <= set(dropped)
    assert all(k.startswith(("module.encoder_k.", "module.queue", "module.encoder_q.fc.")) for k in dropped)


def test_moco_without_mlp_head(key_encoder):
    torch.manual_seed(3)
    plain_query = build_resnet(ARCH, num_classes=128)  # main_moco.py without --mlp: fc is one Linear
    state = {f"module.encoder_q.{k}": v for k, v in plain_query.state_dict().items()}
    state.update({f"module.encoder_k.{k}": v for k, v in key_encoder.state_dict().items()})
    state["module.queue"] = torch.randn(128, 64)
    _assert_is_query_trunk(encoder_state_dict({"state_dict": state}), plain_query)


def test_adam_v1_bare_query_encoder(query):
    state = query.state_dict()  # conv1.*, ..., fc.0.*, fc.2.*
    assert {"fc.0.weight", "fc.2.weight"} <= set(state)
    _assert_is_query_trunk(encoder_state_dict(state), query)


def test_plain_torchvision_with_and_without_fc(query):
    tv = build_resnet(ARCH, num_classes=1000)
    converted = encoder_state_dict(tv.state_dict())
    assert set(converted) == set(_trunk(tv))
    _assert_is_query_trunk(encoder_state_dict(_trunk(query)), query)


def test_edenkit_training_checkpoint_layout(query, key_encoder):
    """pretrain.py saves {"model": MoCo.state_dict(), ...}: the trunk under "encoder_q.backbone.net."."""
    state = {f"encoder_q.backbone.net.{k}": v for k, v in _trunk(query).items()}
    state.update({f"encoder_q.head.{k}": v for k, v in query.fc.state_dict().items()})
    state.update({f"encoder_k.backbone.net.{k}": v for k, v in _trunk(key_encoder).items()})
    state.update({f"encoder_k.head.{k}": v for k, v in key_encoder.fc.state_dict().items()})
    state["queue"] = torch.randn(64, 128)
    state["queue_ptr"] = torch.zeros(1, dtype=torch.long)
    _assert_is_query_trunk(encoder_state_dict({"model": state, "optimizer": {}, "epoch": 3}), query)


def test_edenkit_moco_model_round_trip(tmp_path):
    moco = pytest.importorskip("edenkit.moco")
    model = moco.MoCo(ARCH, dim=16, queue_size=32)
    path = atomic_save({"model": model.state_dict(), "epoch": 0}, tmp_path / "last.pth")
    converted = encoder_state_dict(path)
    expected = model.backbone.state_dict()
    assert set(converted) == set(expected)
    assert all(torch.equal(converted[k], v) for k, v in expected.items())


def test_other_trunk_prefixes(query):
    """mmselfsup-style (DenseCL) "backbone." with a neck, and torch.compile's "_orig_mod." wrapper."""
    state = {f"backbone.{k}": v for k, v in _trunk(query).items()}
    state["neck.mlp.0.weight"] = torch.zeros(4, 4)
    _assert_is_query_trunk(encoder_state_dict({"state_dict": state, "meta": {}}), query)
    compiled = {f"encoder_q._orig_mod.{k}": v for k, v in query.state_dict().items()}
    _assert_is_query_trunk(encoder_state_dict(compiled), query)


def test_smp_unet_state_dict(query):
    unet = smp.Unet(ARCH, encoder_weights=None, in_channels=3, classes=2)
    load_into_unet(unet, _trunk(query))
    converted = encoder_state_dict(unet.state_dict())  # "encoder.*" kept, decoder and head dropped
    _assert_is_query_trunk(converted, query)


def test_strict_load_into_torchvision_resnet(query):
    state = encoder_state_dict(query.state_dict())
    for num_classes in (None, 5):  # Identity head, or a fresh Linear head that keeps its own init
        model = build_resnet(ARCH, num_classes=num_classes)
        load_into_resnet(model, state)
        for k, v in state.items():
            assert torch.equal(model.state_dict()[k], v)


def test_strict_load_into_unet_fills_the_encoder(query):
    state = encoder_state_dict(query.state_dict())
    unet = smp.Unet(ARCH, encoder_weights=None, in_channels=3, classes=1)
    load_into_unet(unet, state)
    for k, v in state.items():
        assert torch.equal(unet.encoder.state_dict()[k], v), k
    assert set(state) == {k for k in state if k.startswith("fc.")} | set(unet.encoder.state_dict())


def test_loading_into_the_unet_itself_is_the_readme_bug(query):
    """The authors' snippet, unet.load_state_dict(sd, strict=False), loads nothing: keys start with encoder."""
    state = encoder_state_dict(query.state_dict())
    unet = smp.Unet(ARCH, encoder_weights=None, in_channels=3, classes=1)
    result = unet.load_state_dict(state, strict=False)
    assert set(result.unexpected_keys) == set(state)


def test_missing_trunk_key_is_an_error(query):
    state = encoder_state_dict(query.state_dict())
    del state["layer2.0.bn1.running_mean"]
    with pytest.raises(CheckpointError, match="missing"):
        encoder_state_dict(state)
    with pytest.raises(CheckpointError, match="missing"):
        load_into_resnet(build_resnet(ARCH), state)
    with pytest.raises(CheckpointError, match="missing"):
        load_into_unet(smp.Unet(ARCH, encoder_weights=None, classes=1), state)


def test_extra_trunk_key_is_an_error(query):
    state = dict(encoder_state_dict(query.state_dict()))
    state["layer2.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unexpected"):
        encoder_state_dict(state)
    with pytest.raises(CheckpointError, match="unexpected"):
        load_into_resnet(build_resnet(ARCH), state)


def test_wrong_architecture_is_an_error(query):
    state = encoder_state_dict(query.state_dict())
    with pytest.raises(CheckpointError):
        load_into_resnet(build_resnet("resnet34"), state)


def test_unrecognized_files_name_the_file(tmp_path):
    path = atomic_save({"weights": [1, 2, 3]}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="odd.pth"):
        encoder_state_dict(path)
    with pytest.raises(CheckpointError, match="no ResNet trunk"):
        encoder_state_dict({"linear.weight": torch.zeros(2, 2)})
    with pytest.raises(CheckpointError, match="not found"):
        encoder_state_dict(tmp_path / "missing.pth")


def test_detect_arch():
    for arch in ("resnet18", "resnet34", "resnet50"):
        assert detect_arch(build_resnet(arch).state_dict()) == arch


def test_random_init_is_seeded_and_imagenet_never_downloads(tmp_path, monkeypatch):
    a, b, c = random_state_dict(ARCH, 0), random_state_dict(ARCH, 0), random_state_dict(ARCH, 1)
    assert torch.equal(a["conv1.weight"], b["conv1.weight"])
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CheckpointError, match="never downloads"):
        imagenet_state_dict(ARCH)
    # A local copy in torchvision's cache layout is used.
    (tmp_path / "checkpoints").mkdir()
    tv = build_resnet(ARCH, num_classes=1000)
    atomic_save(tv.state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    assert torch.equal(imagenet_state_dict(ARCH)["conv1.weight"], tv.state_dict()["conv1.weight"])


def test_resolve_encoder_checks_the_architecture(query, tmp_path):
    path = atomic_save(query.state_dict(), tmp_path / "enc.pth")
    assert set(resolve_encoder(path, ARCH)) == set(_trunk(query))
    assert set(resolve_encoder("random", ARCH)) == set(_trunk(query))
    with pytest.raises(CheckpointError, match="resnet50"):
        resolve_encoder(path, "resnet50")
