"""The fine-tuning study runs the grid once, keeps predictions, and tables paired comparisons."""

from __future__ import annotations

import pytest
import torch

from edenkit import paper
from edenkit.transfer.finetune import FinetuneConfig
from edenkit.transfer.study import (
    PAPER_TASKS,
    bars_by_metric,
    comparison_table,
    finetune_study,
    paper_rows,
    run_line,
    table_columns,
    to_json,
)
from edenkit.transfer.tasks import TRANSFER_TASKS, transfer_splits


@pytest.fixture(scope="module")
def study():
    cfg = FinetuneConfig(arch="resnet18", batch_size=4, max_steps=2, eval_every=1, patience=1,
                         decoder_channels=(16, 8, 8, 8, 8))
    return finetune_study(["phantom_heart", "phantom_findings"], {"random": None, "other": None}, seeds=[0, 1],
                          image_size=32, cfg=cfg, phantom_counts=(4, 4, 4), predict=2, progress=False)


def test_every_task_seed_and_method_runs_once(study):
    assert [(r["task"], r["method"], r["seed"]) for r in study["runs"]] == [
        (t, m, s) for t in ("phantom_heart", "phantom_findings") for s in (0, 1) for m in ("random", "other")]
    assert {len(v) for by_m in study["scores"].values() for v in by_m.values()} == {2}
    # Same encoder (None), same splits, same seed: the two "methods" are the same fine-tuning.
    assert study["scores"]["phantom_heart"]["random"] == study["scores"]["phantom_heart"]["other"]
    assert study["metrics"] == {"phantom_heart": "dice", "phantom_findings": "auc"}
    assert "seed 0" in run_line(study["runs"][0])


def test_segmentation_tasks_carry_the_prior_floor_of_each_seed(study):
    from edenkit.transfer.metrics import prior_dice

    assert list(study["prior"]) == ["phantom_heart"]  # classification has no mask prior
    train, _, test, _ = transfer_splits("phantom_heart", 32, 1, phantom_counts=(4, 4, 4))
    assert study["prior"]["phantom_heart"][1] == prior_dice(train, test)
    assert to_json(study)["prior"] == study["prior"]


def test_predictions_come_from_the_first_fine_tuning(study):
    assert list(study["predictions"]) == ["phantom_heart"]  # segmentation only
    shown = study["predictions"]["phantom_heart"]
    assert shown["images"].shape == (2, 1, 32, 32) and shown["targets"].shape == (2, 32, 32)
    assert set(shown["masks"]) == {"random", "other"} and shown["masks"]["random"].dtype == torch.bool
    saved = to_json(study)
    assert "predictions" not in saved and saved["summary"]["phantom_heart"]["random"]["n"] == 2


def test_bars_are_split_by_metric(study):
    bars = bars_by_metric(study)
    assert set(bars) == {"dice", "auc"} and list(bars["dice"]) == ["phantom_heart"]
    assert bars["auc"]["phantom_findings"]["random"]["mean"] == pytest.approx(
        100 * sum(study["scores"]["phantom_findings"]["random"]) / 2)


def test_comparison_table_means_stds_and_paired_p():
    scores = {"heart": {"adam": [0.9, 0.8, 0.85], "mocov2": [0.7, 0.65, 0.72], "random": [0.5]},
              "clavicle": {"adam": [0.5, 0.6, 0.55], "mocov2": [0.5, 0.6, 0.55]}}
    rows = comparison_table(scores, reference="adam", method_labels={"adam": "Adam"},
                            extra={"heart": {"metric": "dice"}})
    assert rows[0]["task"] == "heart" and rows[0]["metric"] == "dice"
    assert rows[0]["Adam"] == "85.0 ± 5.0"
    assert rows[0]["p, Adam vs random"] == "–"  # one run cannot be tested
    p = float(rows[0]["p, Adam vs mocov2"])
    assert 0 < p < 0.05
    assert rows[1]["p, Adam vs mocov2"] == "–"  # identical runs: no difference to test (NaN)
    assert table_columns(rows)[:3] == ["task", "metric", "Adam"]


def test_paper_rows_map_kit_tasks_to_the_paper():
    assert all(PAPER_TASKS[t][0] in paper.FULL_FINETUNE for t in TRANSFER_TASKS)
    rows = {r["paper task"]: r for r in paper_rows(paper.FULL_FINETUNE, ["phantom_heart", "phantom_findings"])}
    assert rows["SCR heart"]["kit task here"] == "`phantom_heart`" and rows["SCR heart"]["Adam"] == 95.0
    assert rows["ChestX-ray14"]["kit task here"] == "`phantom_findings`"
    assert rows["SIIM-ACR"]["what differs"] == "not run in this profile"
