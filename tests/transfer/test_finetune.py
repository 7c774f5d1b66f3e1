"""Fine-tuning: the early-stopping loop, short end-to-end runs of both tasks, the job map and the CLI."""

import numpy as np
import torch

from edenkit.checkpoint import parse_encoder_specs, random_state_dict
from edenkit.transfer.finetune import (
    FinetuneConfig,
    finetune_classification,
    finetune_segmentation,
    map_jobs,
    train_with_early_stopping,
)


def _squares(n, seed, size=32):
    """Bright squares on noise; the mask is the square: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        image = 0.2 * torch.rand(1, size, size, generator=g)
        mask = torch.zeros(1, size, size)
        y, x = torch.randint(0, size - 12, (2,), generator=g).tolist()
        image[0, y : y + 12, x : x + 12] += 0.7
        mask[0, y : y + 12, x : x + 12] = 1
        items.append({"image": image, "masks": mask, "labels": torch.tensor([float(x > size // 3)])})
    return items


SMALL = dict(arch="resnet18", decoder_channels=(16, 16, 8, 8, 8), batch_size=8, eval_every=10, patience=3)


def test_segmentation_learns_squares_and_is_reproducible():
    train, val, test = _squares(16, 0), _squares(8, 1), _squares(8, 2)
    state = random_state_dict("resnet18", 0)
    a = finetune_segmentation(state, train, val, test, ["square"], FinetuneConfig(max_steps=30, **SMALL), seed=0)
    assert a["dice"]["square"] > 0.5, a  # predicting the whole image would score ~0.25
    assert 0 < a["mean_iou"] <= a["mean_dice"]
    short = FinetuneConfig(max_steps=3, **{**SMALL, "eval_every": 3})
    b, c = (finetune_segmentation(state, train, val, test, ["square"], short, seed=1) for _ in range(2))
    assert b["mean_dice"] == c["mean_dice"] and b["history"] == c["history"]


def test_early_stopping_keeps_the_best_weights():
    model = torch.nn.Sequential(torch.nn.Flatten(0), torch.nn.Linear(4, 1))
    train = [{"image": torch.rand(4), "masks": torch.rand(())} for _ in range(4)]
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.9])  # best at the 2nd validation, then 2 without improvement
    snapshots = []

    def validate(m):
        snapshots.append(m[1].weight.detach().clone())
        return next(scores)

    cfg = FinetuneConfig(max_steps=100, eval_every=3, patience=2, batch_size=1)
    fit = train_with_early_stopping(model, torch.nn.functional.mse_loss, "masks", train, validate, cfg, 0.1,
                                    torch.Generator().manual_seed(0))
    assert (fit["steps"], fit["best_step"], fit["best_val"]) == (12, 6, 0.5)
    assert torch.equal(model[1].weight, snapshots[1])


def test_classification_runs_and_reports_auc():
    train, val, test = _squares(16, 0), _squares(8, 1), _squares(8, 2)
    cfg = FinetuneConfig(max_steps=4, **{**SMALL, "eval_every": 2})
    out = finetune_classification(None, train, val, test, ["right_side"], cfg, seed=0)
    assert set(out["auc"]) == {"right_side"} and 0.0 <= out["mean_auc"] <= 1.0


def test_encoder_specs():
    assert parse_encoder_specs(["adam=runs/a.pth", "random", "runs/mocov2.pth"]) == {
        "adam": "runs/a.pth", "random": "random", "mocov2": "runs/mocov2.pth"}


def test_map_jobs_keeps_order_in_and_out_of_process():
    jobs = [{"a": i} for i in range(5)]
    assert list(map_jobs(dict, jobs, workers=1)) == jobs
    assert list(map_jobs(dict, jobs, workers=2)) == jobs  # spawned single-threaded workers


def test_cli_writes_json(tmp_path):
    import json

    from edenkit.cli import main

    out = tmp_path / "finetune.json"
    assert main(["finetune", "--task", "phantom_findings", "--encoder", "random", "--size", "32",
                 "--phantom-counts", "4", "4", "4", "--seeds", "0", "--max-steps", "1", "--eval-every", "1",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["task"] == "phantom_findings" and result["methods"]["random"]["score"]["n"] == 1


def test_classification_without_defined_validation_auc_still_trains():
    train, test = _squares(8, 0), _squares(8, 2)
    val = [dict(item, labels=torch.zeros(1)) for item in _squares(4, 1)]  # no positive: AUC undefined
    cfg = FinetuneConfig(max_steps=4, **{**SMALL, "eval_every": 2})
    out = finetune_classification(None, train, val, test, ["right_side"], cfg, seed=0)
    assert out["best_step"] in (2, 4) and all(np.isfinite(h["val_score"]) for h in out["history"])
