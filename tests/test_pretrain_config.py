"""The pretraining config: the paper's values, the linear lr scaling, the checks that name the key."""

import pytest
import torch

from edenkit.config import ConfigError
from edenkit.pretrain_config import (
    autocast_dtype,
    check_config,
    describe,
    learning_rate,
    load_pretrain_config,
)


def test_paper_configs_hold_the_papers_hyperparameters():
    adam = load_pretrain_config("adam_v1_paper")
    assert (adam.model.arch, adam.data.view_size, adam.batch_size, adam.model.queue_size) == ("resnet50", 224, 256, 65536)
    assert adam.curriculum.stages == [0, 2, 4] and adam.curriculum.epochs == [200, 200, 200]
    assert (adam.optim.lr, adam.optim.momentum, adam.optim.weight_decay) == (0.03, 0.9, 1e-4)
    assert (adam.model.temperature, adam.model.momentum, adam.prune_threshold) == (0.2, 0.999, 0.8)
    assert adam.model.mlp_hidden == 2048 and adam.data.dataset == "chestxray14" and learning_rate(adam) == 0.03
    assert (adam.data.crop_scale, adam.data.rotation) == ([0.2, 1.0], 30.0)
    moco = load_pretrain_config("mocov2_paper")
    assert moco.curriculum.stages == [0] and moco.prune_threshold is None
    assert sum(moco.curriculum.epochs) == sum(adam.curriculum.epochs)  # same budget
    for name in ("ci", "demo_cpu"):
        cfg = load_pretrain_config(name)
        assert cfg.data.dataset == "phantom" and cfg.curriculum.stages == [0, 2, 4]


def test_describe_names_the_negatives_each_config_uses():
    assert describe(load_pretrain_config("adam_v1_paper"))["negatives"] == "queue K = 65536"
    assert describe(load_pretrain_config("demo_cpu"))["negatives"] == "in-batch (31)"  # its queue_size is unused


def test_learning_rate_scales_linearly_unless_disabled():
    cfg = load_pretrain_config("adam_v1_paper", ["batch_size=128", "model.queue_size=1024"])
    assert learning_rate(cfg) == pytest.approx(0.015)
    cfg = load_pretrain_config("adam_v1_paper", ["batch_size=128", "optim.lr_batch=null"])
    assert learning_rate(cfg) == 0.03


@pytest.mark.parametrize(
    "override, message",
    [
        (["model.queue_size=100"], "model.queue_size: 100 is not a multiple of batch_size 16"),
        (["curriculum.stages=[0,5]"], "curriculum.stages"),
        (["curriculum.epochs=[1,1]"], "curriculum.epochs: expected 3"),
        (["model.arch=vgg"], "model.arch"),
        (["model.bn_splits=3"], "model.bn_splits"),
        (["prune_threshold=2"], "prune_threshold"),
        (["data.crop_scale=[0.5]"], "data.crop_scale"),
        (["data.crop_scale=[0,1]"], "data.crop_scale"),
        (["data.rotation=-1"], "data.rotation"),
        (["data.augment=gpu"], "data.augment: expected one of"),
        (["data.phantom_version=3"], "data.phantom_version: expected 1 or 2, got 3"),
        (["model.negatives=memory"], "model.negatives: expected one of ['queue', 'batch'], got 'memory'"),
        (["data.jitter_p=1.5"], "data.jitter_p: expected a probability in [0, 1], got 1.5"),
        (["data.blur_p=-0.1"], "data.blur_p: expected a probability in [0, 1], got -0.1"),
    ],
)
def test_inconsistent_configs_are_rejected_by_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_pretrain_config("ci", override)


def test_fp16_needs_a_gpu():
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        autocast_dtype("fp16", torch.device("cpu"))


def test_data_augment_is_auto_by_default_and_checked_when_set_in_code():
    assert load_pretrain_config("adam_v1_paper").data.augment == "auto"
    assert load_pretrain_config("ci", ["data.augment=device"]).data.augment == "device"
    cfg = load_pretrain_config("ci")
    cfg.data.augment = "GPU"  # a config built in code skips the loader's type checks
    with pytest.raises(ConfigError, match="data.augment: expected one of \\['auto', 'cpu', 'device'\\], got 'GPU'"):
        check_config(cfg)
