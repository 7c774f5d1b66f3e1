"""How far the demo's comparison moves with the pretraining seed: ``python -m edenkit seeds``.

Notebooks 05-07 score one pretraining run per method. Their spreads and p-values are over the
evaluation's trials (which labelled images, which decoder initialization) with each encoder fixed, so
they say nothing about a second pretraining run of the same method. That run differs in the model's
initialization, its views and their order (``PretrainConfig.seed``; the pretraining images stay the
same), and on the phantom it moves the scores by about as much as the methods differ: the kit once
trained Adam from another initialization by accident, and its 3-shot heart Dice went from 59.3 to 65.0.

This study pretrains every method once per seed (through :mod:`edenkit.zoo`, so a run the notebooks
trained is reused), scores each encoder with the measures of notebooks 05, 06 and 07 on their own
settings for the profile and on the SAME evaluation data (the notebooks' data seed), and reports, per
method and measure, the mean and standard deviation over pretraining seeds and Welch's t-test against
each baseline over seeds. Seed ``seed`` of ``random`` is the random initialization with that seed.
Each seed's scores are written to ``results/seeds/seed<s>.json`` as soon as they exist, so a stopped
study resumes where it stopped; with the notebooks' seed the scores equal the notebooks' own.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edenkit.files import atomic_write_json, atomic_write_text
from edenkit.stats import compare, format_p, mean_std

#: The notebooks whose measures the study repeats, and the parameters each measure reads.
NOTEBOOKS = ("05_locality", "06_compositionality", "07_fewshot_segmentation")
BASELINES = ("mocov2", "random")


def notebook_settings(stem: str, profile: str, notebook_dir: str | Path | None = None) -> dict:
    """The parameters notebook ``stem`` runs with in ``profile``: its parameters cell's values, then the
    profile's ``common`` section and the notebook's own (what ``python -m edenkit notebooks`` injects)."""
    import papermill

    from edenkit.config import read_yaml
    from edenkit.notebooks import default_notebook_dir

    folder = Path(notebook_dir) if notebook_dir else default_notebook_dir()
    notebook = folder / f"{stem}.ipynb"
    if not notebook.is_file():
        raise FileNotFoundError(f"seeds: notebook {notebook} not found (the study reads its parameters cell)")
    declared = papermill.inspect_notebook(str(notebook))
    settings = {name: ast.literal_eval(p["default"]) for name, p in declared.items()}
    params = read_yaml(folder / "params" / f"{profile}.yaml")
    settings.update({k: v for k, v in (params.get("common") or {}).items() if k in declared})
    settings.update(params.get(stem) or {})
    return settings


def seed_scores(methods: Sequence[str], profile: str, seed: int, out_dir: str | Path,
                settings: dict[str, dict], log: Callable[[str], None] | None = print) -> dict:
    """``{method: {measure: value}}`` for the encoders pretrained with ``seed``: notebook 05's kNN
    accuracy, notebook 06's centred compositionality of the backbone (matched and gap), notebook 07's
    Dice (%) per task and shot count, mean over its trials. The prior's Dice is under ``"prior"``."""
    from edenkit.analysis.compositionality import load_images, measures, random_patches
    from edenkit.analysis.embeddings import load_encoder
    from edenkit.analysis.locality import locality_report, phantom_landmark_data
    from edenkit.checkpoint import detect_arch, encoder_state_dict
    from edenkit.transfer.fewshot import phantom_fewshot_data, run_fewshot
    from edenkit.transfer.finetune import FinetuneConfig
    from edenkit.zoo import get_encoder

    loc, comp, few = (settings[stem] for stem in NOTEBOOKS)
    encoders = {m: get_encoder(m, profile, out_dir, seed) for m in methods}
    scores: dict = {m: {} for m in methods}

    images, landmarks, patients = phantom_landmark_data(loc["n_images"], loc["image_size"], loc["seed"],
                                                        loc["phantom_version"])
    comp_images = load_images(None, comp["n_images"], comp["image_size"], comp["seed"], comp["phantom_version"])
    patches = random_patches(comp_images, comp["patch_size"], comp["per_image"], comp["seed"])
    for method, path in encoders.items():
        encoder = load_encoder(path)
        report = locality_report(encoder, images, landmarks, patients, patch_size=loc["patch_size"],
                                 input_size=loc["input_size"], jitter=loc["jitter"], k=loc["k"], seed=loc["seed"],
                                 n_references=loc["n_references"], trials=loc["trials"], with_tsne=False)
        centred = measures(encoder, patches, comp["splits"], comp["input_size"], comp["seed"])["centred"]
        scores[method].update({"knn": report["knn_accuracy"], "composition_matched": centred["matched"]["mean"],
                               "composition_gap": centred["gap"]})

    pool, val, test, structures = phantom_fewshot_data(few["pool_size"], few["n_val"], few["n_test"],
                                                       few["image_size"], few["seed"], few["tasks"],
                                                       few["phantom_version"])
    states = {m: encoder_state_dict(p) for m, p in encoders.items()}
    cfg = FinetuneConfig(arch=detect_arch(next(iter(states.values()))), batch_size=few["batch_size"],
                         max_steps=few["max_steps"], eval_every=few["eval_every"], patience=few["patience"],
                         decoder_channels=tuple(few["decoder_channels"]), device=few.get("device", "cpu"))
    results = run_fewshot(states, pool, val, test, structures, few["tasks"], few["shots"], few["trials"], cfg,
                          workers=few["workers"], log=None)
    for method, by_task in results["dice"].items():
        for task, by_n in by_task.items():
            for n, dice in by_n.items():
                scores.setdefault(method, {})[f"{task} {n}-shot"] = 100 * float(np.mean(dice))
    if log:
        log(f"seed {seed}: " + "; ".join(f"{m} " + ", ".join(f"{k} {v:.3f}" for k, v in s.items())
                                         for m, s in scores.items()))
    return scores


def summarize(per_seed: dict[int, dict], baselines: Sequence[str] = BASELINES) -> dict:
    """Over pretraining seeds: ``{"summary": {method: {measure: mean_std}}, "tests": {method: {measure:
    {baseline: compare}}}}`` (Welch's test: runs of two methods with the same seed share nothing that pairs
    them but the seed's number)."""
    seeds = sorted(per_seed)
    methods = list(per_seed[seeds[0]])
    values = {m: {k: [per_seed[s][m][k] for s in seeds] for k in per_seed[seeds[0]][m]} for m in methods}
    summary = {m: {k: mean_std(v) for k, v in by_measure.items()} for m, by_measure in values.items()}
    tests = {m: {k: {b: compare(v, values[b][k]) for b in baselines if b in values and b != m and k in values[b]}
                 for k, v in by_measure.items()}
             for m, by_measure in values.items() if m != "prior"}
    return {"seeds": seeds, "values": values, "summary": summary, "tests": tests}


#: How the table names the measures (few-shot measures are named "<task> <n>-shot").
LABELS = {"knn": "landmark kNN accuracy (05)", "composition_matched": "compositionality, centred, matched (06)",
          "composition_gap": "compositionality gap over shuffled (06)"}


def markdown(study: dict) -> str:
    """One row per measure, one column per method: mean ± std over seeds, then p of each method against
    each baseline (each pair once)."""
    summary, tests = study["summary"], study["tests"]
    baselines = study.get("baselines", BASELINES)
    methods = list(summary)
    measures = list(dict.fromkeys(k for m in methods for k in summary[m]))
    pairs = []
    for m in tests:
        pairs += [(m, b) for b in baselines if b in tests and b != m and (b, m) not in pairs]
    header = ["measure", *methods, *(f"p {m} vs {b}" for m, b in pairs)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for k in measures:
        digits = 3 if k in LABELS else 1
        cells = [LABELS.get(k, f"{k} Dice (07)")]
        cells += [f"{summary[m][k]['mean']:.{digits}f} ± {summary[m][k]['std']:.{digits}f}" if k in summary[m] else ""
                  for m in methods]
        cells += [format_p(tests[m][k][b]["p"]) if b in tests[m].get(k, {}) else "" for m, b in pairs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nmean ± std over pretraining seeds {study['seeds']}; p: Welch's t-test over seeds.\n"


def run_study(methods: Sequence[str], profile: str, seeds: Sequence[int], out_dir: str | Path,
              notebook_dir: str | Path | None = None, log: Callable[[str], None] | None = print,
              baselines: Sequence[str] = BASELINES) -> dict:
    """Score every method at every pretraining seed (resuming from ``results/seeds/``), then summarize,
    testing each method against each of ``baselines``."""
    settings = {stem: notebook_settings(stem, profile, notebook_dir) for stem in NOTEBOOKS}
    folder = Path(out_dir) / "results" / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    per_seed = {}
    for seed in seeds:
        path = folder / f"seed{seed}.json"
        saved = json.loads(path.read_text()) if path.is_file() else None
        if saved and saved["settings"] == settings and set(methods) <= set(saved["scores"]):
            per_seed[seed] = {m: saved["scores"][m] for m in [*methods, "prior"]}
            continue
        per_seed[seed] = seed_scores(methods, profile, seed, out_dir, settings, log)
        atomic_write_json(path, {"seed": seed, "profile": profile, "settings": settings, "scores": per_seed[seed]})
    return {"profile": profile, "methods": list(methods), "baselines": list(baselines),
            **summarize(per_seed, baselines), "settings": settings}


# ----------------------------------------------------------------------------------------------------
# CLI: python -m edenkit seeds
# ----------------------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    parser.add_argument("--profile", choices=("ci", "demo"), default="demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="pretraining seeds")
    parser.add_argument("--methods", nargs="+", default=["adam", "mocov2", "random"],
                        help="zoo methods (edenkit.zoo.METHODS)")
    parser.add_argument("--baselines", nargs="+", default=None,
                        help="the methods every other one is tested against (default: mocov2 and random, where "
                             "studied; add adam to test its ablations against it)")
    parser.add_argument("--out-dir", default=None, help="the profile's folder (default runs/<profile>)")


def run(args) -> int:
    out_dir = Path(args.out_dir or f"runs/{args.profile}")
    if len(args.seeds) < 2:
        raise ValueError(f"seeds: give at least two pretraining seeds (a spread needs two runs), got {args.seeds}")
    baselines = args.baselines or [b for b in BASELINES if b in args.methods]
    unknown = [b for b in baselines if b not in args.methods]
    if unknown:
        raise ValueError(f"seeds: --baselines {unknown} are not among --methods {args.methods}")
    study = run_study(args.methods, args.profile, args.seeds, out_dir, baselines=baselines)
    results = out_dir / "results"
    atomic_write_json(results / "seeds.json", study)
    table = markdown(study)
    atomic_write_text(results / "seeds.md", table)
    print(table)
    print(f"wrote {results / 'seeds.json'} and {results / 'seeds.md'}")
    return 0
