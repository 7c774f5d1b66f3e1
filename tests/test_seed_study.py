"""The pretraining-seed study: settings as the notebooks run them, summaries over seeds, resuming."""

import json

import pytest
from scipy import stats

from edenkit import seed_study
from edenkit.cli import main


def test_settings_are_the_notebooks_parameters_with_the_profile_on_top():
    demo = seed_study.notebook_settings("07_fewshot_segmentation", "demo")
    ci = seed_study.notebook_settings("07_fewshot_segmentation", "ci")
    assert demo["tasks"] == ["heart", "rib_right_5"] and demo["trials"] == 5 and demo["shots"] == [3, 12]
    assert demo["phantom_version"] == 2  # from the demo's common section
    assert demo["device"] == "cpu" and ci["trials"] == 1  # from the parameters cell itself
    with pytest.raises(FileNotFoundError, match="99_nothing"):
        seed_study.notebook_settings("99_nothing", "demo")


def test_summary_is_mean_std_and_welch_over_seeds():
    per_seed = {s: {"adam": {"knn": a}, "mocov2": {"knn": m}, "random": {"knn": r}, "prior": {"heart": 50.0}}
                for s, (a, m, r) in enumerate([(0.40, 0.45, 0.30), (0.44, 0.43, 0.33), (0.42, 0.44, 0.36)])}
    study = seed_study.summarize(per_seed)
    assert study["seeds"] == [0, 1, 2]
    assert study["summary"]["adam"]["knn"]["mean"] == pytest.approx(0.42)
    assert study["summary"]["adam"]["knn"]["std"] == pytest.approx(0.02)
    expected = stats.ttest_ind([0.40, 0.44, 0.42], [0.30, 0.33, 0.36], equal_var=False).pvalue
    assert study["tests"]["adam"]["knn"]["random"]["p"] == pytest.approx(expected)
    assert "mocov2" not in study["tests"]["mocov2"]["knn"] and "prior" not in study["tests"]
    table = seed_study.markdown(study)
    assert "| landmark kNN accuracy (05) | 0.420 ± 0.020 | 0.440 ± 0.010 | 0.330 ± 0.030 |" in table
    assert table.splitlines()[0].endswith("| p adam vs mocov2 | p adam vs random | p mocov2 vs random |")


def test_an_ablation_is_tested_against_the_method_it_ablates_when_that_method_is_a_baseline():
    per_seed = {s: {"adam": {"knn": a}, "adam_no_pruner": {"knn": a - 0.01 * s}, "mocov2": {"knn": 0.3 + 0.02 * s},
                    "random": {"knn": 0.2 + 0.01 * s}} for s, a in enumerate([0.40, 0.44, 0.42])}
    study = {"baselines": ["mocov2", "random", "adam"], **seed_study.summarize(per_seed, ["mocov2", "random", "adam"])}
    expected = stats.ttest_ind([0.40, 0.43, 0.40], [0.40, 0.44, 0.42], equal_var=False).pvalue
    assert study["tests"]["adam_no_pruner"]["knn"]["adam"]["p"] == pytest.approx(expected)
    header = seed_study.markdown(study).splitlines()[0]
    assert "p adam_no_pruner vs adam" in header and header.count("vs adam |") == 1  # each pair once
    assert "adam_no_pruner" not in seed_study.summarize(per_seed)["tests"]["adam"]["knn"]  # not a baseline


def test_baselines_must_be_among_the_methods(tmp_path, capsys):
    args = ["seeds", "--profile", "ci", "--methods", "random", "--baselines", "adam", "--out-dir", str(tmp_path)]
    assert main(args) == 2
    assert "--baselines ['adam']" in capsys.readouterr().err


def test_random_init_seeds_through_the_cli_and_a_rerun_reads_the_saved_scores(tmp_path, monkeypatch):
    # Only the random init, so nothing pretrains: the real measures of notebooks 05-07 on the ci settings
    # (few-shot on the heart alone, to keep the test short).
    settings = seed_study.notebook_settings

    def heart_only(stem, profile, notebook_dir=None):
        found = settings(stem, profile, notebook_dir)
        return {**found, "tasks": ["heart"]} if "tasks" in found else found

    monkeypatch.setattr(seed_study, "notebook_settings", heart_only)
    out = tmp_path / "ci"
    assert main(["seeds", "--profile", "ci", "--methods", "random", "--seeds", "0", "1", "--out-dir", str(out)]) == 0
    study = json.loads((out / "results" / "seeds.json").read_text())
    values = study["values"]
    assert values["random"]["composition_gap"][0] != values["random"]["composition_gap"][1]  # another init
    assert values["random"]["heart 3-shot"][0] != values["random"]["heart 3-shot"][1]
    assert values["prior"]["heart 3-shot"][0] == values["prior"]["heart 3-shot"][1]  # the same evaluation data
    assert (out / "results" / "seeds" / "seed1.json").is_file() and "random" in (out / "results" / "seeds.md").read_text()

    def fail(*args, **kwargs):
        raise AssertionError("a saved seed was scored again")

    monkeypatch.setattr(seed_study, "seed_scores", fail)
    again = seed_study.run_study(["random"], "ci", [0, 1], out)
    assert again["values"] == values


def test_one_seed_is_refused(tmp_path, capsys):
    assert main(["seeds", "--profile", "ci", "--seeds", "0", "--out-dir", str(tmp_path)]) == 2
    assert "at least two" in capsys.readouterr().err
