"""Transfer metrics: Dice, IoU and AUC against hand-computed values and against the kit's former formulas."""

import numpy as np
import pytest
import torch

from edenkit.transfer.metrics import auc_scores, dice_score, iou_score


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


def _masks(images):
    """Bool masks [N, K, 4, 4] from rows written as "#" (in) and "." (out), "/" between lines."""
    return torch.tensor([[[[c == "#" for c in line] for line in mask.split("/")] for mask in image]
                         for image in images])


EMPTY = "..../..../..../...."


def test_metrics_give_exactly_the_former_hand_written_values():
    """The values of the kit's former hand-written Dice/IoU/AUC (commit 985ff30) on a fixed case, bit for bit:
    the move to smp/sklearn changed no number, including the empty-mask conventions."""
    pred = _masks([
        [EMPTY, EMPTY, "##../##../..../...."],
        ["####/####/####/####", ".##./.###/..#./....", "#.../.#../..#./...#"],
    ])
    target = _masks([
        [EMPTY, "..../.##./.##./....", EMPTY],
        ["####/####/####/####", "..##/..##/.##./....", "#.../#.../#.../#..."],
    ])
    # both empty -> 1; empty prediction of a non-empty target -> 0; non-empty prediction of an empty target -> 0;
    # perfect -> 1; overlap 4 of 6 + 6 pixels; overlap 1 of 4 + 4 pixels
    dice, iou = dice_score(pred, target), iou_score(pred, target)
    assert dice.dtype == iou.dtype == torch.float64 and dice.shape == (2, 3)
    assert dice.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.6666666666666666, 0.25]]
    assert iou.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.5, 0.14285714285714285]]
    # a single [H, W] mask gives a scalar; any non-zero value counts as inside the mask
    assert dice_score(pred[1, 1], target[1, 1]).item() == 0.6666666666666666
    assert iou_score(pred[1, 1].float(), 0.7 * target[1, 1].float()).item() == 0.5
    labels = np.array([[1, 1, 1], [0, 0, 1], [0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 1, 1]])
    scores = np.array([[0.3, 0.42, 0.1], [0.12, 0.67, 0.6], [0.61, 0.38, 0.9], [0.98, 0.68, 0.6],
                       [0.68, 0.38, 0.1], [0.72, 0.52, 0.3], [0.48, 0.88, 0.9], [0.35, 0.57, 0.3]])
    assert auc_scores(labels, scores, names=["a", "b", "c"]) == {
        "per_class": {"a": 0.625, "b": 0.5625, "c": None}, "mean": 0.59375, "n_classes": 2}
    assert auc_scores(labels, scores)["per_class"] == {"0": 0.625, "1": 0.5625, "2": None}


def test_majority_vote_of_identical_masks_scores_dice_one():
    from edenkit.transfer.metrics import majority_vote

    mask = torch.zeros(16, 16)
    mask[3:9, 4:12] = 1
    vote = majority_vote(mask.expand(3, 16, 16))
    assert torch.equal(vote, mask.bool())
    assert float(dice_score(vote[None], mask[None].bool())) == 1.0


def test_majority_vote_keeps_pixels_in_at_least_half_of_the_masks():
    from edenkit.transfer.metrics import majority_vote

    masks = torch.zeros(4, 1, 4)
    masks[0, 0, :1] = masks[1, 0, :2] = masks[2, 0, :3] = masks[3, 0, :4] = 1  # pixel j is in 4 - j masks
    assert majority_vote(masks).tolist() == [[True, True, True, False]]  # 4, 3, 2 (a tie: in) and 1 of 4
    with pytest.raises(ValueError):
        majority_vote(torch.zeros(0, 4, 4))


def test_mean_thickness_of_bands():
    from edenkit.transfer.metrics import mean_thickness

    for t in (2, 3, 6):
        band = torch.zeros(2, 64, 64)
        band[:, 10 : 10 + t, 4:60] = 1
        assert abs(mean_thickness(band) - t) < 0.1 * t  # the band's ends count as boundary too
    assert mean_thickness(torch.zeros(3, 8, 8)) != mean_thickness(torch.zeros(3, 8, 8))  # NaN: nothing there
