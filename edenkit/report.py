"""The demo's one results table: every measure of notebooks 05-08 beside its floor, control and ceiling.

A number means something only beside what no learning gets (a floor), a control that breaks what the
measure is about, and what direct supervision gets (a ceiling). Notebooks 05-08 write each of those
into their JSON under ``results/``; this module reads them back and lays them out as one table:

- locality (05): landmark identification, kNN (patients held out) and nearest centroid with 3
  reference patients (mean +- std over draws); floors raw pixels, 4x4 thumbnail, random init; ceiling
  a small CNN trained on the reference patients' landmark labels;
- compositionality (06): the centred cosine of E(whole) and the sum of E(parts), matched, shuffled
  (whole and parts from different patches: the control) and their gap; random init as the reference;
- few-shot (07): Dice (%) per task and shot count, mean +- std over trials; floor the majority vote of
  the training masks (no model); paired t-tests of Adam (and each ablation) against MoCo-v2 and random init;
- fine-tuning (08): the score per task, mean +- std over seeds, paired t-tests over the seeds.

``python -m edenkit notebooks`` writes ``results/demo_table.{json,md}`` and ``figures/demo_table.png``
after a run (:func:`write_demo_table`).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from edenkit.files import atomic_write, atomic_write_json, atomic_write_text  # noqa: E402
from edenkit.stats import compare, format_p, mean_std  # noqa: E402
from edenkit.viz.common import figure_png  # noqa: E402

METHODS = ("adam", "adam_0", "adam_0_2", "adam_no_pruner", "mocov2", "random")  # Adam, its ablations, the baselines
BASELINES = ("mocov2", "random")


def _ms(stats: dict, digits: int = 3) -> str:
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def locality_rows(res: dict) -> list[dict]:
    floors, ceiling = res["floors"], res["ceiling"]
    best_floor = max(f["knn"] for f in floors.values())
    rows = []
    for method in METHODS:
        if method not in res["methods"]:
            continue
        m = res["methods"][method]
        rows.append({
            "measure": "locality: landmark kNN accuracy", "method": method, "value": f"{m['knn_accuracy']:.3f}",
            "floor": " / ".join(f"{k} {v['knn']:.3f}" for k, v in floors.items()),
            "control": f"chance {res['chance']:.3f}",
            "ceiling": " / ".join(f"{k} {v['knn']:.3f}" for k, v in ceiling.items()),
            "vs best floor": f"{m['knn_accuracy'] - best_floor:+.3f}", "p vs mocov2 / random": "n/a (one split)",
        })
        c3 = m["centroid"].get("3") or m["centroid"].get(3)
        if c3:
            rows.append({
                "measure": "locality: nearest centroid, 3 references", "method": method, "value": _ms(c3),
                "floor": " / ".join(f"{k} {_ms(v['centroid'].get('3') or v['centroid'][3])}" for k, v in floors.items()),
                "control": f"chance {res['chance']:.3f}",
                "ceiling": " / ".join(f"{k} {_ms(v['centroid'].get('3') or v['centroid'][3])}" for k, v in ceiling.items()),
                "vs best floor": "", "p vs mocov2 / random": "",
            })
    return rows


def compositionality_rows(res: dict) -> list[dict]:
    reference = res["reference"]["random_init / backbone"]["centred"]
    rows = []
    for name, measured in res["methods"].items():
        c = measured["centred"]
        rows.append({
            "measure": f"compositionality: centred cosine ({name.split(' / ')[1]})", "method": name.split(" / ")[0],
            "value": f"matched {_ms(c['matched'])}, gap {c['gap']:+.3f}",
            "floor": f"random init: matched {reference['matched']['mean']:.3f}, gap {reference['gap']:+.3f}",
            "control": f"shuffled {_ms(c['shuffled'])}", "ceiling": "none (no supervised target)",
            "vs best floor": f"gap {c['gap'] - reference['gap']:+.3f}", "p vs mocov2 / random": "",
        })
    return rows


def fewshot_rows(res: dict) -> list[dict]:
    summary, tests = res["summary"], res.get("paired_tests", {})
    rows = []
    for task in next(iter(summary.values())):
        for shots in summary["prior"][task]:
            prior = summary["prior"][task][shots]
            for method in METHODS:
                if method not in summary:
                    continue
                t = tests.get(method, {}).get(task, {}).get(shots, {}) if method not in BASELINES else {}
                rows.append({
                    "measure": f"few-shot Dice %: {task}, {shots} shots", "method": method,
                    "value": _ms(summary[method][task][shots], 1),
                    "floor": f"prior (majority vote) {_ms(prior, 1)}",
                    "control": f"random init {_ms(summary['random'][task][shots], 1)}",
                    "ceiling": "", "vs best floor": f"{summary[method][task][shots]['mean'] - prior['mean']:+.1f}",
                    "p vs mocov2 / random": " / ".join(format_p(t.get(b, {}).get("p")) for b in ("mocov2", "random"))
                    if t else "",
                })
    return rows


def finetuning_rows(res: dict) -> list[dict]:
    rows = []
    for task, by_method in res["scores"].items():
        metric = res["metrics"][task]
        for method in METHODS:
            if method not in by_method:
                continue
            scores = by_method[method]
            tests = [compare(scores, by_method[b], paired=True)["p"] for b in BASELINES
                     if method not in BASELINES and b in by_method]
            prior = res.get("prior", {}).get(task)
            rows.append({
                "measure": f"fine-tuning {metric}: {task}",
                "method": method, "value": _ms(mean_std(scores)),
                "floor": f"prior (majority vote) {_ms(mean_std(prior))}" if prior else "", "control": f"random init {_ms(mean_std(by_method['random']))}" if "random" in by_method
                else "", "ceiling": "", "vs best floor": "",
                "p vs mocov2 / random": " / ".join(format_p(p) for p in tests),
            })
    return rows


READERS = {"05_locality.json": locality_rows, "06_compositionality.json": compositionality_rows,
           "07_fewshot.json": fewshot_rows, "08_finetuning.json": finetuning_rows}
COLUMNS = ("measure", "method", "value", "floor", "control", "ceiling", "vs best floor", "p vs mocov2 / random")


def demo_table(results_dir: str | Path) -> list[dict]:
    """The table's rows from the notebooks' JSON files in ``results_dir`` (a missing file adds no rows)."""
    rows = []
    for name, reader in READERS.items():
        path = Path(results_dir) / name
        if path.is_file():
            rows += reader(json.loads(path.read_text()))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def demo_figure(results_dir: str | Path):
    """Locality kNN and few-shot Dice per method as bars, floors dashed and ceilings dotted; None without data."""
    results_dir = Path(results_dir)
    panels = []
    if (results_dir / "05_locality.json").is_file():
        res = json.loads((results_dir / "05_locality.json").read_text())
        bars = {m: res["methods"][m]["knn_accuracy"] for m in METHODS if m in res["methods"]}
        floors = {k: v["knn"] for k, v in res["floors"].items()}
        ceilings = {k: v["knn"] for k, v in res["ceiling"].items()}
        panels.append(("locality: landmark kNN accuracy", bars, {}, floors, ceilings))
    if (results_dir / "07_fewshot.json").is_file():
        summary = json.loads((results_dir / "07_fewshot.json").read_text())["summary"]
        for task in summary["prior"]:
            for shots in summary["prior"][task]:
                bars = {m: summary[m][task][shots]["mean"] for m in METHODS if m in summary}
                errors = {m: summary[m][task][shots]["std"] for m in METHODS if m in summary}
                panels.append((f"few-shot Dice %: {task}, {shots} shots", bars, errors,
                               {"prior": summary["prior"][task][shots]["mean"]}, {}))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, bars, errors, floors, ceilings) in zip(axes[0], panels):
        ax.bar(list(bars), list(bars.values()), yerr=[errors.get(m, 0) for m in bars], color="#4c72b0", capsize=3)
        for (name, value), color in zip(floors.items(), ("#c44e52", "#dd8452", "#8172b3")):
            ax.axhline(value, ls="--", lw=1, color=color, label=f"floor: {name}")
        for name, value in ceilings.items():
            ax.axhline(value, ls=":", lw=1.5, color="#55a868", label=f"ceiling: {name}")
        ax.legend(fontsize=6, loc="lower right")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def write_demo_table(out_dir: str | Path) -> Path | None:
    """``results/demo_table.{json,md}`` and ``figures/demo_table.png`` under ``out_dir``; None when no
    notebook wrote results."""
    results = Path(out_dir) / "results"
    rows = demo_table(results)
    if not rows:
        return None
    atomic_write_json(results / "demo_table.json", {"columns": list(COLUMNS), "rows": rows})
    atomic_write_text(results / "demo_table.md", markdown(rows))
    fig = demo_figure(results)
    if fig is not None:
        png = figure_png(fig, dpi=100)
        plt.close(fig)
        atomic_write(Path(out_dir) / "figures" / "demo_table.png", lambda f: f.write(png))
    return results / "demo_table.md"
