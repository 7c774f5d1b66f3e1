import dataclasses
import os

import pytest
import torch
import torchvision

from edenkit import zoo
from edenkit.run_folder import read_log


def loads_into_resnet18(path) -> bool:
    resnet = torchvision.models.resnet18(weights=None)
    result = resnet.load_state_dict(torch.load(path, weights_only=True), strict=False)
    return sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys


def test_mocov2_gets_adams_budget_without_decomposer_or_pruner():
    for profile in ("ci", "demo"):
        adam = zoo.encoder_config("adam", profile)
        moco = zoo.encoder_config("mocov2", profile)
        assert adam.curriculum.stages == [0, 2, 4] and adam.prune_threshold == 0.8
        assert moco.curriculum.stages == [0] and moco.prune_threshold is None
        assert moco.curriculum.epochs == [sum(adam.curriculum.epochs)]
        assert (moco.data, moco.model, moco.optim, moco.batch_size) == (adam.data, adam.model, adam.optim, adam.batch_size)
    paper = zoo.encoder_config("mocov2", "paper")
    assert paper.name == "mocov2" and paper.model.arch == "resnet50"


def test_config_key_follows_what_is_trained():
    cfg = zoo.encoder_config("adam", "ci")
    key = zoo.config_key(cfg)
    cfg.progress, cfg.data.num_workers, cfg.data.cache_dir = True, 3, "/somewhere"
    assert zoo.config_key(cfg) == key
    cfg.optim.lr = 0.1
    assert zoo.config_key(cfg) != key
    assert zoo.config_key(zoo.encoder_config("adam", "ci", seed=1)) != key
    # Where the real data is mounted does not change the run (notebooks 05-08 find notebook 04's runs).
    paper = [zoo.encoder_config("adam", "paper", data_root=root) for root in ("/mnt/a", "/mnt/b")]
    assert paper[0].data.root == "/mnt/a" and zoo.config_key(paper[0]) == zoo.config_key(paper[1])


def test_adam_without_the_pruner_differs_from_adam_only_there():
    for profile in ("ci", "demo", "paper"):
        adam, ablation = zoo.encoder_config("adam", profile), zoo.encoder_config("adam_no_pruner", profile)
        assert adam.prune_threshold is not None and ablation.prune_threshold is None
        assert dataclasses.replace(ablation, name=adam.name, prune_threshold=adam.prune_threshold) == adam
        assert zoo.config_key(adam) != zoo.config_key(ablation)


def test_random_encoder_is_seeded_and_loads(tmp_path):
    state = torch.get_rng_state()
    a = zoo.get_encoder("random", "ci", tmp_path, seed=0)
    b = zoo.random_encoder("resnet18", 0, tmp_path / "again.pt")
    c = zoo.random_encoder("resnet18", 1, tmp_path / "other.pt")
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    assert loads_into_resnet18(a)
    wa, wb, wc = (torch.load(p, weights_only=True)["conv1.weight"] for p in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_unknown_method_or_profile():
    with pytest.raises(ValueError, match="method must be one of"):
        zoo.get_encoder("simclr", "ci")
    with pytest.raises(ValueError, match="profile must be one of"):
        zoo.encoder_config("adam", "laptop")


@pytest.mark.slow
def test_adam_and_mocov2_train_once_then_come_from_the_cache(tmp_path):
    adam = zoo.get_encoder("adam", "ci", tmp_path)
    moco = zoo.get_encoder("mocov2", "ci", tmp_path)
    assert adam != moco and loads_into_resnet18(adam) and loads_into_resnet18(moco)
    assert adam.parent == zoo.run_folder("adam", "ci", tmp_path)
    assert [r["n"] for r in read_log(adam.parent) if r["split"] == "train"] == [0, 2, 4]
    assert [r["n"] for r in read_log(moco.parent) if r["split"] == "train"] == [0, 0, 0]
    assert any((tmp_path / "models" / "data").glob("phantom_*.pt"))  # the images are generated once

    stamp = os.stat(adam).st_mtime_ns
    assert zoo.get_encoder("adam", "ci", tmp_path) == adam
    assert os.stat(adam).st_mtime_ns == stamp  # not retrained

    # the curriculum cut short comes from the same run, with no more training: each stage's best checkpoint
    cut_0, cut_0_2 = zoo.get_encoder("adam_0", "ci", tmp_path), zoo.get_encoder("adam_0_2", "ci", tmp_path)
    assert (cut_0.parent, cut_0_2.parent) == (adam.parent, adam.parent)
    assert zoo.run_folder("adam_0", "ci", tmp_path) == zoo.run_folder("adam_0_2", "ci", tmp_path) == adam.parent
    assert (cut_0.name, cut_0_2.name) == ("encoder_best_stage0_n0.pt", "encoder_best_stage1_n2.pt")
    assert os.stat(adam).st_mtime_ns == stamp and loads_into_resnet18(cut_0_2)
    best = torch.load(adam.parent / "checkpoints" / "best_stage1_n2.pt", weights_only=False)["model"]
    assert torch.equal(torch.load(cut_0_2, weights_only=True)["conv1.weight"],
                       best["encoder_q.backbone.net.conv1.weight"])
    assert not torch.equal(torch.load(cut_0, weights_only=True)["conv1.weight"],
                           torch.load(adam, weights_only=True)["conv1.weight"])


def test_keys_added_later_change_the_cache_key_only_away_from_their_defaults():
    cfg = zoo.encoder_config("mocov2", "ci", 0, None)
    key = zoo.config_key(cfg)
    assert zoo.config_key(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, jitter_p=0.8))) == key
    assert zoo.config_key(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, jitter_p=0.0))) != key
    assert zoo.config_key(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, negatives="batch"))) != key


def test_random_init_has_no_run_folder(tmp_path):
    with pytest.raises(ValueError, match="random has no run folder"):
        zoo.run_folder("random", "ci", tmp_path)


def test_a_curriculum_cut_must_be_a_prefix_of_a_longer_curriculum(tmp_path):
    with pytest.raises(ValueError, match="keeps the stages n = \\[0, 2\\]"):
        zoo._curriculum_cut("adam_0_2", tmp_path, [0, 2])
    with pytest.raises(ValueError, match="keeps the stages n = \\[0\\]"):
        zoo._curriculum_cut("adam_0", tmp_path, [2, 4])
