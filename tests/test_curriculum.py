"""One curriculum stage: a fresh optimizer and schedule, the stage's files, resuming inside a stage."""

import math

import pytest
import torch

from edenkit.curriculum import run_stage
from edenkit.pretrain import build_model, pretrain
from edenkit.pretrain_config import load_pretrain_config
from edenkit.pretrain_data import open_images
from edenkit.run_folder import CHECKPOINT_FORMAT, JsonLog, RunPaths, load_resume_state, read_log

TINY = ["data.phantom_train=32", "data.phantom_val=16"]  # 2 steps of 16 per epoch
STRIP = {"seconds", "images_per_s"}  # timings: the only log fields that differ between identical runs


class Killed(Exception):
    """Stands in for a SIGKILL in the middle of an epoch."""


def fresh_run(cfg, root):
    """The run's images, a freshly seeded model and an empty run folder, as ``pretrain`` sets them up."""
    images = open_images(cfg.data, "train"), open_images(cfg.data, "val")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    paths = RunPaths(root)
    paths.root.mkdir(parents=True)
    return model, images, paths, JsonLog(paths.log, enabled=True)


def stage(cfg, index, model, images, paths, log, elapsed=lambda: 0.0, resume=None):
    return run_stage(cfg, index, model, model, *images, device=torch.device("cpu"), autocast_dtype=None,
                     scaler=None, paths=paths, log=log, elapsed=elapsed, resume=resume)


def test_run_stage_trains_with_a_fresh_cosine_schedule_and_writes_the_stages_files(tmp_path):
    cfg = load_pretrain_config("ci", [*TINY, "curriculum.epochs=[1,2,1]"])
    model, images, paths, log = fresh_run(cfg, tmp_path / "run")
    best = stage(cfg, 1, model, images, paths, log)  # the second stage, n = 2, two epochs

    train = [r for r in read_log(paths.log) if r["split"] == "train"]
    val = [r for r in read_log(paths.log) if r["split"] == "val"]
    assert [(r["stage"], r["n"], r["epoch"], r["global_epoch"]) for r in train] == [(1, 2, 0, 1), (1, 2, 1, 2)]
    # Its own cosine schedule over the stage's two epochs, from the base learning rate.
    assert [r["lr"] for r in train] == pytest.approx([cfg.optim.lr, cfg.optim.lr * (1 + math.cos(math.pi / 2)) / 2])
    assert best == min(r["loss"] for r in val)

    last = torch.load(paths.last, weights_only=True)
    assert last["format"] == CHECKPOINT_FORMAT
    assert (last["stage"], last["n"], last["epoch"], last["global_epoch"], last["best_val_loss"]) == (1, 2, 2, 3, best)
    assert int(last["model"]["queue_ptr"]) == 2 * 2 * 16  # two epochs of two steps of 16 keys
    best_checkpoint = torch.load(paths.best(1, 2), weights_only=True)
    assert best_checkpoint["val_loss"] == best and best_checkpoint["epoch"] == 1 + [r["loss"] for r in val].index(best)
    exported = torch.load(paths.stage_encoder(1, 2), weights_only=True)
    assert exported.keys() == {k for k in model.backbone.state_dict() if not k.startswith("fc.")}
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in exported.items())


@pytest.mark.parametrize("augment", ["cpu", "device"])
def test_a_stage_killed_mid_epoch_and_resumed_ends_exactly_like_one_run_through(tmp_path, augment):
    """Also on the device path: the views' parameters come from per-sample generators, not the global RNG."""
    cfg = load_pretrain_config("ci", [*TINY, "curriculum.stages=[2]", "curriculum.epochs=[2]", f"data.augment={augment}"])
    whole, images, whole_paths, whole_log = fresh_run(cfg, tmp_path / "whole")
    stage(cfg, 0, whole, images, whole_paths, whole_log)

    killed, images, paths, log = fresh_run(cfg, tmp_path / "killed")
    calls = []

    def elapsed_then_kill() -> float:  # called once per epoch, after training and before the checkpoint
        calls.append(None)
        if len(calls) == 2:
            raise Killed
        return 0.0

    with pytest.raises(Killed):
        stage(cfg, 0, killed, images, paths, log, elapsed=elapsed_then_kill)
    resumed = build_model(cfg)  # another initialisation: everything comes from the checkpoint
    state = load_resume_state(paths.last, cfg, resumed)
    assert (state["stage"], state["epoch"]) == (0, 1)
    log.truncate_to(state["global_epoch"])
    stage(cfg, 0, resumed, images, paths, log, resume=state)

    expected = whole.state_dict()
    for name, value in resumed.state_dict().items():  # both encoders, BN statistics and the queue
        assert torch.equal(value, expected[name]), name
    strip = [{k: v for k, v in r.items() if k not in STRIP} for r in read_log(paths.log)]
    assert strip == [{k: v for k, v in r.items() if k not in STRIP} for r in read_log(whole_paths.log)]


def test_a_pruner_that_removes_every_negative_is_reported(tmp_path, capsys):
    cfg = load_pretrain_config("ci", [*TINY, "curriculum.stages=[2]", "curriculum.epochs=[1]",
                                     "prune_threshold=-0.999"])  # every cosine of these random embeddings is above
    pretrain(cfg, tmp_path / "run")
    err = capsys.readouterr().err
    assert "warning" in err and "removed 100.0% of the negatives" in err
    assert read_log(tmp_path / "run")[0]["loss"] == 0.0
