"""The collision study: queries and a queue with known parts, embedded by each encoder, measured."""

from __future__ import annotations

import math

import pytest
import torch

from edenkit.analysis.pruning import collision_study, profile_rows, pruning_profile
from edenkit.pretrain import build_model
from edenkit.pretrain_config import load_pretrain_config


@pytest.fixture(scope="module")
def study():
    cfg = load_pretrain_config("ci")
    g = torch.Generator().manual_seed(0)
    images = [{"image": torch.rand(1, 64, 64, generator=g)} for _ in range(5)]
    torch.manual_seed(0)
    encoders = {"a": build_model(cfg), "b": build_model(cfg)}
    return collision_study(cfg, images, level=2, n_query_patients=2, thresholds=[0.0, 0.5, 0.8, 0.99],
                           threshold=0.8, encoders=encoders)


def test_every_part_of_every_patient_is_a_query_or_a_key(study):
    assert study.query_parts.tolist() == [0, 1, 2, 3] * 2
    assert study.queue_parts.tolist() == [0, 1, 2, 3] * 3
    assert study.query_patients.tolist() == [0] * 4 + [1] * 4
    assert study.query_views.shape == (8, 1, 32, 32) and study.queue_views.shape == (12, 1, 32, 32)
    same = study.same_part
    assert same.shape == (8, 12) and same.float().mean().item() == pytest.approx(0.25)
    for e in study.encoders.values():  # unit vectors: the cosines are dot products
        assert torch.allclose(e.q.norm(dim=1), torch.ones(8), atol=1e-5)
        assert e.sims.shape == (8, 12)


def test_summary_profile_and_losses_agree(study):
    rows = {row["encoder"]: row for row in study.summary()}
    assert set(rows) == {"a", "b"}
    e = study.encoders["a"]
    assert rows["a"]["pruned"] == pytest.approx((e.sims >= 0.8).float().mean().item())
    profile = study.profile("a")
    expected = pruning_profile(e.sims, [0.0, 0.5, 0.8, 0.99], study.same_part)
    assert profile["pruned"] == expected["pruned"] and profile["pruned_same"] == expected["pruned_same"]
    losses = study.losses("a")
    assert len(losses["loss"]) == 4 and all(loss <= losses["plain_loss"] + 1e-6 for loss in losses["loss"])
    saved = study.to_json()
    assert saved["queries"] == 8 and saved["encoders"]["b"]["threshold"] == [0.0, 0.5, 0.8, 0.99]


def test_nearest_negatives_are_sorted_and_labelled(study):
    nearest = study.nearest_negatives("a", 0, 5)
    cosines = [n["cos"] for n in nearest]
    assert cosines == sorted(cosines, reverse=True) and len(nearest) == 5
    for n in nearest:
        assert n["collision"] == (study.queue_parts[n["key"]].item() == 0)
        assert n["pruned"] == (n["cos"] >= 0.8)
    chosen = study.most_pruned_queries("a", 3, threshold=-1.0)
    assert len(chosen) == 3 and len(set(chosen)) == 3


def test_profile_rows_show_a_dash_for_a_share_of_nothing():
    sims = torch.tensor([[0.9, 0.1], [0.2, 0.3]])
    same = torch.tensor([[True, False], [False, True]])
    rows = profile_rows(pruning_profile(sims, [0.5, 0.95], same))
    assert rows[0] == {"threshold": "0.50", "pruned": "25.0%", "of collisions": "50.0%",
                       "of genuine negatives": "0.0%", "collisions among pruned": "100.0%"}
    assert rows[1]["collisions among pruned"] == "–" and "nan" not in str(rows)
    assert math.isnan(pruning_profile(sims, [0.95], same)["same_among_pruned"][0])
