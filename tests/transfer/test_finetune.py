"""Fine-tuning: metrics against hand-computed values, the mask grouping, and short end-to-end runs."""

import numpy as np
import pytest
import torch

from edenkit.checkpoint import parse_encoder_specs, random_state_dict
from edenkit.transfer.finetune import (
    FinetuneConfig,
    MaskGroups,
    auc_scores,
    dice_score,
    finetune_classification,
    finetune_segmentation,
    iou_score,
    map_jobs,
    train_with_early_stopping,
    transfer_splits,
)


def test_dice_and_iou_by_hand():
    pred = torch.zeros(4, 4, dtype=torch.bool)
    target = torch.zeros(4, 4, dtype=torch.bool)
    pred[0, 0:3] = True  # 3 pixels
    target[0, 1:4] = True  # 3 pixels, overlap 2
    assert dice_score(pred, target).item() == pytest.approx(2 * 2 / (3 + 3))
    assert iou_score(pred, target).item() == pytest.approx(2 / 4)


def test_dice_batched_and_empty_cases():
    pred = torch.zeros(2, 3, 2, 2)
    target = torch.zeros(2, 3, 2, 2)
    target[0, 1, 0, 0] = 1  # missed entirely
    pred[1, 2] = 1
    target[1, 2] = 1  # perfect
    dice = dice_score(pred, target)
    assert dice.shape == (2, 3)
    assert dice.tolist() == [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]  # empty vs empty counts as perfect
    assert iou_score(pred, target).tolist() == dice.tolist()
    with pytest.raises(ValueError, match="shape"):
        dice_score(pred, target[:, :2])


def test_auc_by_hand():
    labels = np.array([[0, 1], [0, 1], [1, 1], [1, 1]])
    scores = np.array([[0.1, 0.3], [0.4, 0.2], [0.35, 0.9], [0.8, 0.5]])
    # class 0: positives {0.35, 0.8} vs negatives {0.1, 0.4}: pairs won 1 + 0 + 1 + 1 = 3 of 4
    out = auc_scores(labels, scores, names=["a", "b"])
    assert out["per_class"] == {"a": pytest.approx(0.75), "b": None}  # b has no negatives
    assert out["mean"] == pytest.approx(0.75) and out["n_classes"] == 1


def test_mask_groups_union():
    masks = torch.zeros(3, 2, 2)
    masks[1, 0, 0] = 1
    masks[2, 1, 1] = 1
    base = [{"image": torch.zeros(1, 2, 2), "masks": masks}]
    ds = MaskGroups(base, {"clavicle": ("r", "l"), "heart": ("h",)}, structures=("h", "r", "l"))
    out = ds[0]["masks"]
    assert out.shape == (2, 2, 2)
    assert out[0].tolist() == [[1, 0], [0, 1]] and out[1].sum() == 0
    with pytest.raises(KeyError, match="lung"):
        MaskGroups(base, {"x": ("lung",)}, structures=("h", "r", "l"))


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


def test_phantom_transfer_tasks():
    train, val, test, classes = transfer_splits("phantom_clavicle", size=32, seed=0, phantom_counts=(3, 2, 2))
    assert classes == ("clavicle",) and (len(train), len(val), len(test)) == (3, 2, 2)
    assert train[0]["masks"].shape == (1, 32, 32)
    train, _, _, classes = transfer_splits("phantom_findings", size=32, seed=0, phantom_counts=(2, 2, 2))
    assert classes == ("cardiomegaly", "effusion", "nodule", "pneumothorax") and train[0]["labels"].shape == (4,)
    with pytest.raises(ValueError, match="data root"):
        transfer_splits("scr_heart", size=32)
    with pytest.raises(KeyError, match="phantom_heart"):
        transfer_splits("nope", size=32)


def test_scr_transfer_task_reads_the_real_format(tmp_path):
    """SCR through the real loader, on phantoms written in the JSRT/SCR layout: fold 1 -> train/val, fold 2 -> test."""
    from edenkit.phantom.export import export_jsrt_scr

    export_jsrt_scr(tmp_path / "data", n=8, seed=0, size=64)
    train, val, test, classes = transfer_splits("scr_clavicle", size=32, seed=0, data_root=tmp_path / "data",
                                                val_fraction=0.25)
    assert classes == ("clavicle",)
    assert len(train) + len(val) == 4 and len(val) >= 1 and len(test) == 4
    item = test[0]
    assert item["masks"].shape == (1, 32, 32) and item["masks"].sum() > 0
    train_ids = {train[i]["image_id"] for i in range(len(train))}
    assert train_ids.isdisjoint({val[i]["image_id"] for i in range(len(val))})


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
