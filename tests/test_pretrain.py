import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision

from edenkit.cli import main as cli_main
from edenkit.pretrain import pretrain, torchrun_command
from edenkit.pretrain_config import load_pretrain_config
from edenkit.run_folder import read_log

TINY = ["data.phantom_train=32", "data.phantom_val=16"]  # 2 steps of 16 per epoch
LOG_FIELDS = {"split", "stage", "n", "epoch", "global_epoch", "loss", "acc", "pos_sim", "neg_sim", "frac_pruned", "lr"}


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    """One in-process run of the ci config (three stages, one epoch each) shared by the tests below."""
    out = tmp_path_factory.mktemp("pretrain") / "ci"
    cfg = load_pretrain_config("ci", TINY)
    yield cfg, pretrain(cfg, out)
    shutil.rmtree(out.parent, ignore_errors=True)  # ~0.7 GB of checkpoints; CI disks can be small


@pytest.mark.parametrize(
    "argv, names",
    [
        (["optim.lrr=0.1"], "optim.lrr"),
        (["batch_size=big"], "batch_size"),
        (["data.dataset=chestxray14", "data.root=/no/such/folder"], "/no/such/folder"),
        (["data.dataset=chestxray14"], "data.root"),
    ],
)
def test_cli_errors_are_one_line_and_name_the_key(tmp_path, capsys, argv, names):
    code = cli_main(["pretrain", "--config", "ci", "--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err and "Traceback" not in err and names in err, err


def test_missing_data_root_flag(tmp_path, capsys):
    code = cli_main(["pretrain", "--config", "ci", "--out", str(tmp_path / "r"), "--data-root", str(tmp_path / "nope"),
                     "data.dataset=chestxray14"])
    assert code == 2 and str(tmp_path / "nope") in capsys.readouterr().err


def test_run_writes_log_checkpoints_and_encoders(ci_run):
    cfg, result = ci_run
    root = result.out_dir
    for name in ("config.yaml", "log.jsonl", "summary.json", "encoder.pt", "encoder_best.pt",
                 "encoder_stage0_n0.pt", "encoder_stage1_n2.pt", "encoder_stage2_n4.pt",
                 "checkpoints/last.pt", "checkpoints/best_stage2_n4.pt"):
        assert (root / name).is_file(), name

    records = read_log(root)
    epochs = [r for r in records if r["split"] == "train"]
    assert [r["n"] for r in epochs] == [0, 2, 4]
    assert all(LOG_FIELDS <= set(r) for r in records) and all("images_per_s" in r for r in epochs)
    # A fresh cosine schedule per stage: every stage starts at the base learning rate.
    assert [r["lr"] for r in epochs] == [cfg.optim.lr] * 3
    # The pruner is off at n = 0 (plain MoCo-v2) and on for n > 0 (it prunes at least nothing).
    assert epochs[0]["frac_pruned"] == 0.0 and all(0.0 <= r["frac_pruned"] <= 1.0 for r in epochs[1:])

    checkpoint = torch.load(root / "checkpoints" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "config", "stage", "epoch", "sampler_epoch"} <= set(checkpoint)
    assert (checkpoint["stage"], checkpoint["epoch"], checkpoint["sampler_epoch"]) == (2, 1, 3)
    # The queue carried over between stages: 3 epochs x 2 steps x 16 keys = 96 of K = 128.
    assert int(checkpoint["model"]["queue_ptr"]) == 96
    assert checkpoint["config"]["curriculum"]["stages"] == [0, 2, 4]


def test_the_ci_curriculum_runs_on_the_device_path_on_a_cpu(ci_run, tmp_path):
    """``data.augment=device`` on the CPU: the same run with its views made by ``BatchTwoViewAugment``."""
    _, cpu_path = ci_run
    cfg = load_pretrain_config("ci", [*TINY, "data.augment=device"])
    result = pretrain(cfg, tmp_path / "device")
    records = [r for r in read_log(result.out_dir) if r["split"] in ("train", "val")]
    assert [(r["split"], r["n"]) for r in records] == [(s, n) for n in (0, 2, 4) for s in ("train", "val")]
    assert all(math.isfinite(r["loss"]) for r in records)
    assert read_log(result.out_dir)[0]["loss"] != read_log(cpu_path.out_dir)[0]["loss"]  # other views, other numbers
    assert torch.load(result.out_dir / "checkpoints" / "last.pt", weights_only=True)["config"]["data"]["augment"] == "device"


def test_exported_encoder_loads_into_torchvision_with_only_fc_missing(ci_run):
    _, result = ci_run
    for path in (result.encoder, result.encoder_best):
        resnet = torchvision.models.resnet18(weights=None)
        loaded = resnet.load_state_dict(torch.load(path, weights_only=True), strict=False)
        assert sorted(loaded.missing_keys) == ["fc.bias", "fc.weight"] and not loaded.unexpected_keys
    final = torch.load(result.encoder, weights_only=True)
    assert torch.equal(final["conv1.weight"], result.model.backbone.conv1.weight.detach())


def test_a_finished_run_is_not_overwritten_and_resume_checks_the_config(ci_run, capsys):
    cfg, result = ci_run
    out = str(result.out_dir)
    assert cli_main(["pretrain", "--config", "ci", "--out", out, *TINY]) == 2
    assert "--resume auto" in capsys.readouterr().err
    assert cli_main(["pretrain", "--config", "ci", "--out", out, "--resume", "auto", *TINY, "optim.lr=0.1"]) == 2
    assert "optim.lr: 0.03 -> 0.1" in capsys.readouterr().err
    with pytest.raises(Exception, match="checkpoint to resume from not found"):
        pretrain(cfg, out, resume=str(result.out_dir / "nope.pt"))


def test_log_plot_shows_each_run_and_marks_the_stages(ci_run):
    import matplotlib

    matplotlib.use("Agg")
    from edenkit.viz.pretrain import plot_pretrain_log

    _, result = ci_run
    fig = plot_pretrain_log({"adam": result.out_dir, "again": read_log(result.out_dir)})
    loss_ax = fig.axes[0]
    assert len(fig.axes) == 6
    assert [line.get_ydata()[0] for line in loss_ax.lines[:1]] == [read_log(result.out_dir)[0]["loss"]]
    stage_lines = [line for line in loss_ax.lines if list(line.get_xdata()) in ([1.5, 1.5], [2.5, 2.5])]
    assert len(stage_lines) == 4  # two stage boundaries, drawn for each of the two runs
    with pytest.raises(ValueError, match="no per-epoch training record"):
        plot_pretrain_log([])


def test_torchrun_commands():
    single = torchrun_command("adam_v1_paper", "runs/adam", nproc_per_node=4, data_root="/data/cxr14")
    assert single.startswith("torchrun --nproc-per-node=4 -m edenkit pretrain --config adam_v1_paper")
    assert "--resume auto" in single and "--data-root /data/cxr14" in single and "--nnodes" not in single
    multi = torchrun_command("adam_v1_paper", "runs/adam", nproc_per_node=8, nnodes=2, master_addr="gpu01")
    assert "--nnodes=2" in multi and "--master-addr=gpu01" in multi and "--node-rank=$NODE_RANK" in multi


def _cli(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edenkit", "pretrain", "--config", "ci", "--out", str(out), *TINY,
            "curriculum.epochs=[1,2,1]", "log_every=1", *extra]


@pytest.mark.slow
def test_sigkill_mid_stage_then_resume_auto_is_bit_identical(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(_cli(tmp_path / "full"), check=True, env=env, capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            # A step of stage 2's second epoch: its first epoch's checkpoint is written, the stage is not over.
            log = killed / "log.jsonl"
            if log.is_file() and any(r["split"] == "step" and r["global_epoch"] == 2 for r in read_log(log)):
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    last = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    assert (last["stage"], last["epoch"]) == (1, 1)  # killed in the middle of stage 2 (n = 2)

    subprocess.run(_cli(killed, "--resume", "auto"), check=True, env=env, capture_output=True, timeout=300)

    full = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)["model"]
    resumed = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert full.keys() == resumed.keys()
    for name in full:  # both encoders, BN statistics and the queue
        assert torch.equal(full[name], resumed[name]), name
    a = torch.load(tmp_path / "full" / "encoder.pt", weights_only=True)
    b = torch.load(killed / "encoder.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The resumed log has each epoch once, with the same losses.
    strip = {"seconds", "images_per_s"}
    full_log = [{k: v for k, v in r.items() if k not in strip} for r in read_log(tmp_path / "full")]
    resumed_log = [{k: v for k, v in r.items() if k not in strip} for r in read_log(killed)]
    assert resumed_log == full_log
    assert json.loads((killed / "summary.json").read_text())["encoder"].endswith("encoder.pt")
