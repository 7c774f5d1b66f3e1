"""Figures and tables of viz/analysis: shapes, labels, and the paper's numbers kept apart from the run's."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from edenkit.viz import analysis as viz  # noqa: E402

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
    assert any("paper: Adam" in s for s in kde_labels) and any("random init" in s for s in kde_labels)
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
    note = viz.pretraining_note(tmp_path, "adam")
    assert "stage 0 (n=0): negatives' cosine 0.93, pruned 0%" in note
    assert "WARNING" in note and "stage 1 pruned almost every negative" in note and "collapsed" in note
    healthy = tmp_path / "ok"
    healthy.mkdir()
    (healthy / "log.jsonl").write_text(json.dumps({"split": "train", "stage": 0, "n": 0, "neg_sim": 0.2,
                                                   "frac_pruned": 0.0}))
    assert "WARNING" not in viz.pretraining_note(healthy, "mocov2")
    assert "no training log" in viz.pretraining_note(tmp_path / "missing", "adam")
