"""The few-shot protocol: fixed nested draws, the same images for every method, the table's shape."""

import json

import pytest
import torch

import edenkit.transfer.fewshot as fewshot
from edenkit.transfer.finetune import FinetuneConfig


def test_trial_indices_are_fixed_nested_and_differ_between_trials():
    a = fewshot.trial_indices(50, trial=0, n=24)
    assert a == fewshot.trial_indices(50, trial=0, n=24)  # fixed seeds
    assert len(set(a)) == 24 and all(0 <= i < 50 for i in a)
    assert fewshot.trial_indices(50, 0, 3) == a[:3]  # 3 of a trial are among its 6, 12, 24
    assert fewshot.trial_indices(50, 1, 24) != a
    with pytest.raises(ValueError, match="pool has 10"):
        fewshot.trial_indices(10, 0, 12)
    with pytest.raises(ValueError, match="trial seeds"):
        fewshot.trial_indices(50, len(fewshot.TRIAL_SEEDS), 3)


def _items(n, size=32, offset=0):
    masks = torch.zeros(n, 3, size, size)
    images = torch.zeros(n, 1, size, size)
    for i in range(n):  # image i carries its index in a pixel, so the test can see which images were used
        images[i, 0, 0, 0] = (offset + i) / 1000
        masks[i, 0, 4:10, 4:10] = 1  # heart, 36 pixels
        masks[i, 1, 20:24, 2:10] = 1  # right clavicle
        masks[i, 2, 20:24, 20:28] = 1  # left clavicle
    return [{"image": images[i], "masks": masks[i]} for i in range(n)]


STRUCTURES = ("heart", "right_clavicle", "left_clavicle")


def test_every_method_gets_the_same_images_and_clavicle_is_one_class(monkeypatch):
    seen = []

    def fake_finetune(encoder_state, train_set, val_set, test_set, classes, cfg, seed):
        state, train = encoder_state, train_set
        used = sorted(round(float(train[i]["image"][0, 0, 0]) * 1000) for i in range(len(train)))
        target = train[0]["masks"]
        seen.append((state, classes[0], len(train), tuple(used), seed, target.shape[0], float(target.sum())))
        return {"dice": {classes[0]: 0.5 if state == "a" else 0.25}, "best_step": 1, "seconds": 0.0}

    monkeypatch.setattr(fewshot, "finetune_segmentation", fake_finetune)
    pool, val, test = _items(30), _items(4, offset=100), _items(4, offset=200)
    out = fewshot.run_fewshot({"adam": "a", "random": "r"}, pool, val, test, STRUCTURES,
                              shots=(3, 6), trials=2, log=None)
    by_key = {}
    for _state, task, n, used, seed, channels, area in seen:
        by_key.setdefault((task, n, seed), set()).add(used)
        assert channels == 1  # one class per task
        assert area == (36 if task == "heart" else 64)  # clavicle = union of both (32 + 32 pixels)
        assert all(u < 30 for u in used)  # only pool images are trained on
    assert all(len(v) == 1 for v in by_key.values())  # same images for both methods
    assert len(seen) == 2 * 2 * 2 * 2  # tasks x shots x trials x methods
    summary = fewshot.summarize(out)
    assert summary["adam"]["clavicle"][6] == {"mean": 50.0, "std": 0.0, "n": 2}
    assert json.loads(fewshot.to_json(out))["dice"]["random"]["heart"]["3"] == [0.25, 0.25]


def test_a_real_tiny_run():
    pool, val, test = _items(6), _items(2, offset=100), _items(2, offset=200)
    cfg = FinetuneConfig(arch="resnet18", decoder_channels=(8, 8, 8, 8, 8), max_steps=2, eval_every=1)
    out = fewshot.run_fewshot({"random": None}, pool, val, test, STRUCTURES, tasks=("clavicle",),
                              shots=(3,), trials=1, cfg=cfg, log=None)
    assert len(out["dice"]["random"]["clavicle"][3]) == 1
    assert 0.0 <= out["dice"]["random"]["clavicle"][3][0] <= 1.0


def test_cli_writes_json(tmp_path):
    from edenkit.cli import main

    out = tmp_path / "fewshot.json"
    assert main(["fewshot", "--encoder", "random", "--size", "32", "--pool", "4", "--n-val", "2", "--n-test", "2",
                 "--tasks", "heart", "--shots", "3", "--trials", "1", "--max-steps", "1", "--eval-every", "1",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["dice"]["random"]["heart"]["3"]) == 1 and result["summary"]["random"]["heart"]["3"]["n"] == 1


def test_the_prior_baseline_and_the_paired_tests():
    pool, val, test = _items(6), _items(2, offset=100), _items(2, offset=200)
    cfg = FinetuneConfig(arch="resnet18", decoder_channels=(8, 8, 8, 8, 8), max_steps=1, eval_every=1)
    out = fewshot.run_fewshot({"random": None, "mocov2": None}, pool, val, test, STRUCTURES, tasks=("heart",),
                              shots=(3,), trials=2, cfg=cfg, log=None)
    assert out["dice"][fewshot.PRIOR]["heart"][3] == [1.0, 1.0]  # identical masks: their vote is the answer
    assert out["seconds"][fewshot.PRIOR] == 0.0
    tests = fewshot.paired_tests(out)
    assert set(tests["random"]["heart"][3]) == {"mocov2", fewshot.PRIOR}
    assert set(tests[fewshot.PRIOR]["heart"][3]) == {"mocov2", "random"}
    vs_prior = tests["random"]["heart"][3][fewshot.PRIOR]
    assert vs_prior["n_a"] == 2 and vs_prior["mean_diff"] <= 0
    text = fewshot.to_json({"x": float("nan"), "y": [float("nan"), 1.0]})
    assert json.loads(text) == {"x": None, "y": [None, 1.0]}
    no_prior = fewshot.run_fewshot({"random": None}, pool, val, test, STRUCTURES, tasks=("heart",), shots=(3,),
                                   trials=1, cfg=cfg, log=None, with_prior=False)
    assert set(no_prior["dice"]) == {"random"}


def test_an_individual_rib_is_a_task():
    from edenkit.transfer.tasks import STRUCTURE_GROUPS, structure_group

    assert structure_group("rib_right_5") == ("rib_right_5",) and structure_group("clavicle") == STRUCTURE_GROUPS["clavicle"]
    pool, val, test, structures = fewshot.phantom_fewshot_data(3, 1, 1, 32, tasks=("heart", "rib_right_5"))
    assert "rib_right_5" in structures and "heart" in structures
    assert pool[0]["masks"].shape[0] == len(structures)
