"""Figures and tables of viz/analysis: shapes, labels, and the paper's numbers kept apart from the run's."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from edenkit.viz import analysis as viz
from edenkit.zoo import pretraining_note  # noqa: E402

SUMMARY = {
    "adam": {"heart": {3: {"mean": 80.0, "std": 2.0, "n": 5}, 6: {"mean": 85.0, "std": 1.0, "n": 5}},
             "clavicle": {3: {"mean": 40.0, "std": 5.0, "n": 5}}},
    "random": {"heart": {3: {"mean": 60.0, "std": 3.0, "n": 5}}, "clavicle": {}},
}


def test_fewshot_table_is_shaped_like_the_papers():
    table = viz.fewshot_table(SUMMARY)
    lines = table.splitlines()
    assert lines[0].count("|") == 1 + 1 + 8  # method + heart 3/6/12/24 + clavicle 3/6/12/24
    assert len(lines) == 2 + len(SUMMARY) + 4  # header, rule, this run's rows, the paper's 4 rows
    assert "| Adam (kit) (this run) | 80.0 ± 2.0 | 85.0 ± 1.0 | – | – | 40.0 ± 5.0 | – | – | – |" in lines
    assert any(line.startswith("| *paper: Adam*") and "84.35" in line for line in lines)
    assert "paper" not in viz.fewshot_table(SUMMARY, with_paper=False)


def test_figures_return_figures():
    figs = [
        viz.plot_fewshot(SUMMARY),
        viz.plot_kde({"adam": np.random.default_rng(0).normal(0.6, 0.1, 50), "random": np.full(10, 0.3)},
                     paper_peaks={"Adam": 0.84}),
        viz.plot_tsne({"adam": (np.random.rand(20, 2), np.arange(20) % 10)}, [f"l{i}" for i in range(10)],
                      scores={"adam": {"knn_accuracy": 0.9, "silhouette": 0.1}}),
        viz.show_splits(torch.rand(1, 32, 32)),
        viz.show_landmark_patches(torch.rand(1, 64, 64), np.random.rand(10, 2) * 64, [f"l{i}" for i in range(10)], 12),
        viz.plot_finetune_bars({"heart": {"adam": {"mean": 90, "std": 1}, "random": {"mean": 85, "std": 2}}}),
        viz.show_predictions(torch.rand(2, 1, 32, 32), torch.rand(2, 32, 32) > 0.5,
                             {"adam": torch.rand(2, 32, 32) > 0.5}),
    ]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)
    assert len(figs[0].axes) == 2 and len(figs[2].axes) == 1 and len(figs[3].axes) == 4
    kde_labels = [line.get_label() for line in figs[1].axes[0].get_lines()]
    assert any("paper's peak (raw cosine): Adam" in s for s in kde_labels) and any("random init" in s for s in kde_labels)
    plt.close("all")


def test_markdown_table():
    assert viz.markdown_table([{"a": 1}], ["a", "b"]).splitlines()[-1] == "| 1 | – |"


def test_rank_note_says_when_adam_is_not_ahead():
    ahead = viz.rank_note({"adam": 0.9, "mocov2": 0.8, "random": 0.5}, "kNN accuracy")
    assert "Adam (kit) comes out ahead" in ahead and "by 0.100" in ahead
    behind = viz.rank_note({"adam": 0.7, "mocov2": 0.8, "random": 0.5}, "kNN accuracy")
    assert "does NOT come out ahead" in behind and "ranks 2 of 3" in behind and "MoCo-v2 (kit)" in behind
    lower = viz.rank_note({"adam": 0.1, "mocov2": 0.2}, "error", higher_is_better=False)
    assert "comes out ahead" in lower


def test_pretraining_note_flags_collapse_and_full_pruning(tmp_path):
    import json

    records = [
        {"split": "train", "stage": 0, "n": 0, "neg_sim": 0.93, "frac_pruned": 0.0},
        {"split": "val", "stage": 0, "n": 0, "neg_sim": 0.5, "frac_pruned": 0.0},
        {"split": "train", "stage": 1, "n": 2, "neg_sim": 0.99, "frac_pruned": 1.0},
    ]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    note = pretraining_note(tmp_path, "adam")
    assert "stage 0 (n=0): negatives' cosine 0.93, pruned 0%" in note
    assert "WARNING" in note and "stage 1 pruned almost every negative" in note and "collapsed" in note
    healthy = tmp_path / "ok"
    healthy.mkdir()
    (healthy / "log.jsonl").write_text(json.dumps({"split": "train", "stage": 0, "n": 0, "neg_sim": 0.2,
                                                   "frac_pruned": 0.0}))
    assert "WARNING" not in pretraining_note(healthy, "mocov2")
    assert "no training log" in pretraining_note(tmp_path / "missing", "adam")


def _scores(knn, c1, c3):
    return {"knn": knn, "silhouette": 0.1, "centroid": {1: {"mean": c1, "std": 0, "n": 2}, 3: {"mean": c3, "std": 0, "n": 2}}}


def test_locality_figure_draws_floors_ceiling_and_chance():
    references = {"floors": {"raw_pixels": _scores(0.8, 0.4, 0.5), "thumbnail_4x4": _scores(0.8, 0.45, 0.55),
                             "random_init": _scores(0.82, 0.5, 0.6)},
                  "ceiling": {"supervised_cnn": {**_scores(0.9, 0.6, 0.7), "silhouette": None}}, "chance": 0.1}
    methods = {"adam": {"knn_accuracy": 0.85, "centroid": _scores(0, 0.5, 0.6)["centroid"]}}
    fig = viz.plot_locality_references(methods, references)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"floor: raw pixels", "floor: 4x4 thumbnail", "floor: random init", "ceiling: supervised CNN",
            "chance", "Adam (kit)"} <= set(labels)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["kNN (all refs)", "centroid, 1 ref",
                                                                      "centroid, 3 ref"]
    plt.close("all")


def _measures(matched, shuffled):
    part = {"matched": {"mean": matched, "std": 0.1, "n": 9}, "shuffled": {"mean": shuffled, "std": 0.1, "n": 9},
            "gap": matched - shuffled}
    return {"centred": part, "raw": {**part, "matched": {"mean": 0.99, "std": 0.0, "n": 9}}}


def test_composition_figure_keeps_the_papers_peaks_off_the_centred_axis():
    fig = viz.plot_composition_control({"adam / backbone": _measures(0.3, 0.02), "adam / head": _measures(0.4, 0.0)},
                                       reference=_measures(0.5, 0.0), paper_peaks={"Adam": 0.84})
    centred, raw = fig.axes
    assert not any("paper" in label for label in centred.get_legend_handles_labels()[1])
    assert any("paper's peak, Adam (raw cosine" in label for label in raw.get_legend_handles_labels()[1])
    assert any("shuffled control" in label for label in centred.get_legend_handles_labels()[1])
    assert "random init (reference)" in [t.get_text() for t in centred.get_xticklabels()]
    plt.close("all")


def test_prior_is_labelled_and_the_paired_tests_table():
    summary = {**SUMMARY, "prior": {"heart": {3: {"mean": 77.0, "std": 1.0, "n": 5}}, "clavicle": {}}}
    assert "| prior only (majority vote) (this run) | 77.0 ± 1.0 |" in viz.fewshot_table(summary)
    rib = viz.fewshot_table({"adam": {"rib_right_5": {3: {"mean": 30.0, "std": 1.0, "n": 5}}}}, tasks=("rib_right_5",))
    assert "30.0 ± 1.0" in rib and "*paper: Adam* | – |" in rib  # the paper has no rib column
    viz.plot_fewshot(summary, tasks=("heart", "rib_right_5"))
    tests = {"adam": {"heart": {3: {"mocov2": {"mean_diff": 2.0, "p": 0.04, "t": 3.0, "n_a": 5, "n_b": 5},
                                    "prior": {"mean_diff": 10.0, "p": float("nan"), "t": 0, "n_a": 1, "n_b": 1}}}}}
    table = viz.paired_tests_table(tests)
    assert "+2.0 (p 0.040)" in table and "+10.0 (p –)" in table and "vs prior only (majority vote)" in table
    plt.close("all")
