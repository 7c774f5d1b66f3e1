"""The run folder: its layout, the log, best copies and the checks before resuming."""

import pytest
import torch

from edenkit.checkpoint import CheckpointError, atomic_save
from edenkit.config import ConfigError, to_dict
from edenkit.pretrain import build_model
from edenkit.pretrain_config import load_pretrain_config
from edenkit.run_folder import (
    CHECKPOINT_FORMAT,
    RESUMABLE_CHANGES,
    JsonLog,
    RunPaths,
    config_differences,
    find_resume_checkpoint,
    load_resume_state,
    read_log,
    rng_state,
    save_best_copy,
    set_rng_state,
    stage_ends,
)


def test_checkpoints_written_before_the_split_keep_their_format():
    assert CHECKPOINT_FORMAT == "edenkit.pretrain/1"


def test_the_layout_of_a_run_folder(tmp_path):
    paths = RunPaths(tmp_path)
    names = [paths.config, paths.log, paths.last, paths.best(2, 4), paths.stage_encoder(1, 2), paths.encoder,
             paths.encoder_best, paths.summary]
    assert [str(p.relative_to(tmp_path)) for p in names] == [
        "config.yaml", "log.jsonl", "checkpoints/last.pt", "checkpoints/best_stage2_n4.pt", "encoder_stage1_n2.pt",
        "encoder.pt", "encoder_best.pt", "summary.json"]


def test_the_log_is_written_by_rank_0_and_truncated_for_a_resumed_run(tmp_path):
    path = tmp_path / "log.jsonl"
    JsonLog(path, enabled=False)({"split": "train"})
    assert not path.exists()
    log = JsonLog(path, enabled=True)
    for global_epoch in range(3):
        log({"split": "step", "global_epoch": global_epoch})
        log({"split": "train", "stage": global_epoch // 2, "global_epoch": global_epoch})
    log.truncate_to(2)  # a run resumed after two epochs redoes the third
    assert [r["global_epoch"] for r in read_log(path)] == [0, 0, 1, 1]
    assert read_log(tmp_path) == read_log(path)  # the folder or the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]  # no temporary file left
    assert [r["global_epoch"] for r in stage_ends(read_log(path))] == [1]
    with pytest.raises(FileNotFoundError, match="pretraining log not found"):
        read_log(tmp_path / "nothing")


def test_a_best_copy_stays_when_the_last_checkpoint_is_rewritten(tmp_path):
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    atomic_save({"epoch": 1}, last)
    save_best_copy(last, best)
    atomic_save({"epoch": 2}, last)
    assert torch.load(best, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_which_checkpoint_a_run_resumes_from(tmp_path):
    paths = RunPaths(tmp_path)
    assert find_resume_checkpoint(None, paths) is None and find_resume_checkpoint("auto", paths) is None
    atomic_save({}, paths.last)
    assert find_resume_checkpoint("auto", paths) == paths.last
    assert find_resume_checkpoint(str(paths.last), paths) == paths.last
    with pytest.raises(ConfigError, match="already holds a run; pass --resume auto"):
        find_resume_checkpoint(None, paths)
    with pytest.raises(CheckpointError, match="checkpoint to resume from not found"):
        find_resume_checkpoint(str(tmp_path / "nope.pt"), paths)


def test_only_the_resumable_keys_may_change():
    old = {"progress": True, "data": {"root": "/a", "num_workers": 0, "view_size": 32}, "optim": {"lr": 0.03}}
    new = {"progress": False, "data": {"root": "/b", "num_workers": 8, "view_size": 64}, "optim": {"lr": 0.1}}
    assert config_differences(old, new) == ["data.view_size: 32 -> 64", "optim.lr: 0.03 -> 0.1"]
    assert {"progress", "data.root", "data.num_workers"} <= set(RESUMABLE_CHANGES)


def test_resuming_loads_the_model_and_checks_format_and_config(tmp_path):
    cfg = load_pretrain_config("ci")
    torch.manual_seed(0)
    model = build_model(cfg)
    path = tmp_path / "last.pt"
    atomic_save({"format": CHECKPOINT_FORMAT, "config": to_dict(cfg), "model": model.state_dict(), "epoch": 1}, path)
    torch.manual_seed(1)
    other = build_model(cfg)
    assert load_resume_state(path, cfg, other)["epoch"] == 1
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in other.state_dict().items())

    changed = load_pretrain_config("ci", ["optim.lr=0.1", "progress=true"])
    with pytest.raises(ConfigError, match=r"another config \(optim.lr: 0.03 -> 0.1\)"):
        load_resume_state(path, changed, other)
    atomic_save({"format": "something else", "model": {}}, path)
    with pytest.raises(CheckpointError, match="not an edenkit pretraining checkpoint"):
        load_resume_state(path, cfg, other)


def test_the_rng_state_round_trips():
    cpu = torch.device("cpu")
    state = rng_state(cpu)
    expected = torch.rand(3)
    set_rng_state(state, cpu)
    assert torch.equal(torch.rand(3), expected)


def test_a_torn_last_log_line_is_dropped_with_a_warning_and_damage_elsewhere_is_named(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    log = JsonLog(path, enabled=True)
    log({"split": "train", "global_epoch": 0})
    with path.open("a") as f:
        f.write('{"split": "tra')  # killed mid-append
    assert read_log(path) == [{"split": "train", "global_epoch": 0}]
    assert "torn last line" in capsys.readouterr().err
    log.truncate_to(1)  # what a resumed run does: the file is whole again
    assert path.read_text() == '{"split": "train", "global_epoch": 0}\n'
    path.write_text('{"a": 1}\nnot json\n{"b": 2}\n')
    with pytest.raises(ValueError, match="log.jsonl:2: not a JSON record"):
        read_log(path)


def test_prepare_run_folder_removes_stale_temporary_files_and_checks_space(tmp_path):
    from edenkit.run_folder import prepare_run_folder

    paths = RunPaths(tmp_path / "run")
    (paths.root / "checkpoints").mkdir(parents=True)
    stale = paths.root / "checkpoints" / ".last.pt.abcd1234.tmp"
    stale.write_bytes(b"half")
    kept = paths.root / "checkpoints" / "last.pt"
    kept.write_bytes(b"whole")
    assert prepare_run_folder(paths, needed=1) == [stale]
    assert not stale.exists() and kept.exists()
    with pytest.raises(ConfigError, match="--out .*free on its disk"):
        prepare_run_folder(paths, needed=2**62)


def test_a_full_disk_while_saving_last_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    import edenkit.run_folder as run_folder

    paths = RunPaths(tmp_path)
    run_folder.save_last({"epoch": 1}, paths)

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder, "atomic_save", full)
    with pytest.raises(CheckpointError, match="no space left on device; the previous .*last.pt is intact"):
        run_folder.save_last({"epoch": 2}, paths)
    assert torch.load(paths.last, weights_only=True) == {"epoch": 1}


def test_a_checkpoint_from_before_data_augment_existed_still_resumes():
    from edenkit.run_folder import config_differences

    old = {"data": {"view_size": 64}, "seed": 0}
    assert config_differences(old, {"data": {"view_size": 64, "augment": "auto"}, "seed": 0}) == []
    assert config_differences(old, {"data": {"view_size": 64, "augment": "cpu"}, "seed": 0}) == []
    assert config_differences(old, {"data": {"view_size": 64, "augment": "device"}, "seed": 0}) == [
        "data.augment: None -> 'device'"
    ]
    # data.phantom_version came later still: an old run trained on v1, so only version 1 resumes it
    assert config_differences(old, {"data": {"view_size": 64, "phantom_version": 1}, "seed": 0}) == []
    assert config_differences(old, {"data": {"view_size": 64, "phantom_version": 2}, "seed": 0}) == [
        "data.phantom_version: None -> 2"
    ]
