"""The demo's results table reads the notebooks' JSON and keeps every floor, control and ceiling."""

import json

from edenkit.report import demo_table, markdown, write_demo_table


def _results(folder):
    centroid = {"3": {"mean": 0.4, "std": 0.05, "n": 3}}
    folder.mkdir(parents=True)
    (folder / "05_locality.json").write_text(json.dumps({
        "chance": 0.1,
        "floors": {"raw_pixels": {"knn": 0.55, "centroid": centroid}, "random_init": {"knn": 0.6, "centroid": centroid}},
        "ceiling": {"supervised_cnn": {"knn": 0.9, "centroid": centroid}},
        "methods": {"adam": {"knn_accuracy": 0.7, "centroid": centroid}},
    }))
    dice = {"heart": {"3": {"mean": 80.0, "std": 2.0, "n": 5}}}
    (folder / "07_fewshot.json").write_text(json.dumps({
        "summary": {"adam": dice, "random": {"heart": {"3": {"mean": 75.0, "std": 1.0, "n": 5}}},
                    "prior": {"heart": {"3": {"mean": 60.0, "std": 0.5, "n": 5}}}},
        "paired_tests": {"adam": {"heart": {"3": {"mocov2": {"p": 0.5}, "random": {"p": 0.01}}}}},
    }))


def test_each_measure_stands_beside_its_floor_control_and_ceiling(tmp_path):
    _results(tmp_path / "results")
    rows = demo_table(tmp_path / "results")
    knn = rows[0]
    assert knn["value"] == "0.700" and "random_init 0.600" in knn["floor"] and "0.900" in knn["ceiling"]
    assert knn["vs best floor"] == "+0.100"  # against the best floor, not the worst
    heart_adam = next(r for r in rows if r["measure"].startswith("few-shot") and r["method"] == "adam")
    assert heart_adam["floor"] == "prior (majority vote) 60.0 ± 0.5"
    assert heart_adam["control"] == "random init 75.0 ± 1.0" and heart_adam["p vs mocov2 / random"] == "0.5 / 0.01"
    assert markdown(rows).count("\n") == len(rows) + 2
    written = write_demo_table(tmp_path)
    assert written.read_text() == markdown(rows)
    assert (tmp_path / "figures" / "demo_table.png").stat().st_size > 1000


def test_no_results_no_table(tmp_path):
    assert write_demo_table(tmp_path) is None
