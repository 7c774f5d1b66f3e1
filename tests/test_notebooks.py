"""The notebook runner, and the rules every committed notebook follows.

Executing the real notebooks is nbval's job (``make nbval``); these tests check the runner itself on
small notebooks built here, and the committed notebooks' hygiene.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from edenkit.config import ConfigError
from edenkit.notebooks import PROFILES, apply_profile, discover, run_all

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(autouse=True)
def _own_jupyter_data_dir(tmp_path, monkeypatch):
    """The runner signs what it executes into the Jupyter data directory: a fresh one per test, so the
    tests leave the user's signature database alone (and a fresh HOME in CI is what they assume)."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))


def _write_notebook(path: Path, params: str, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    first = nbformat.v4.new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first] + [nbformat.v4.new_code_cell(c) for c in cells]
    path.write_text(nbformat.writes(nb))


@pytest.fixture()
def toy_notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    (folder / "params").mkdir(parents=True)
    _write_notebook(
        folder / "00_ok.ipynb",
        'profile = "x"\nout_dir = "."\nsize = 1',
        "import json, pathlib\n"
        "pathlib.Path(out_dir, 'seen.json').write_text(json.dumps({'profile': profile, 'size': size}))",
    )
    _write_notebook(folder / "01_broken.ipynb", "seed = 0", "x = 1", "raise ValueError('boom in cell two')")
    (folder / "params" / "ci.yaml").write_text(yaml.safe_dump({"common": {"profile": "ci", "seed": 3}, "00_ok": {"size": 7}}))
    return folder


def test_runner_injects_parameters_and_writes_summary(toy_notebooks, tmp_path):
    out = tmp_path / "out"
    results = run_all("ci", out, toy_notebooks, only=["00"], overrides=["size=9"])
    assert [r.status for r in results] == ["ok"]
    assert json.loads((out / "seen.json").read_text()) == {"profile": "ci", "size": 9}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"][0]["notebook"] == "00_ok.ipynb" and summary["results"][0]["seconds"] > 0
    assert (out / "00_ok.ipynb").is_file()


def test_a_partial_run_keeps_the_earlier_entries_of_the_summary(toy_notebooks, tmp_path):
    out = tmp_path / "out"
    run_all("ci", out, toy_notebooks, only=["01"])
    run_all("ci", out, toy_notebooks, only=["00"])
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["notebook"], r["status"]) for r in summary["results"]] == [("00_ok.ipynb", "ok"), ("01_broken.ipynb", "failed")]
    assert not (out / "summary.json.tmp").exists()


def test_failing_cell_exits_nonzero_naming_notebook_and_cell(toy_notebooks, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edenkit", "notebooks", "--profile", "ci", "--notebooks", str(toy_notebooks),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1
    assert "01_broken.ipynb" in proc.stderr
    assert "cell index 3" in proc.stderr and "boom in cell two" in proc.stderr  # injected-parameters cell counts
    assert "without encryption" not in proc.stdout + proc.stderr  # the kernel runs over CurveZMQ
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["status"] for r in summary["results"]] == ["ok", "failed"]


def test_unknown_override_and_unknown_notebook_are_refused(toy_notebooks, tmp_path):
    base = [sys.executable, "-m", "edenkit", "notebooks", "--profile", "ci", "--notebooks", str(toy_notebooks),
            "--out", str(tmp_path / "out")]
    proc = subprocess.run(base + ["-p", "sizee=3"], capture_output=True, text=True)
    assert proc.returncode == 2 and "sizee" in proc.stderr
    proc = subprocess.run(base + ["--only", "42"], capture_output=True, text=True)
    assert proc.returncode == 2 and "42" in proc.stderr


def test_prepare_only_injects_without_running(toy_notebooks, tmp_path):
    results = run_all("ci", tmp_path / "prep", toy_notebooks, prepare_only=True)
    assert [r.status for r in results] == ["prepared", "prepared"]
    nb = nbformat.read(tmp_path / "prep" / "01_broken.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_there_are_notebooks_and_they_are_in_order():
    assert NOTEBOOKS, "no notebooks committed"
    assert discover(ROOT / "notebooks") == NOTEBOOKS
    assert NOTEBOOKS[0].name == "00_welcome.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs_and_a_parameters_cell(path):
    raw = json.loads(path.read_text())
    assert all("id" in cell for cell in raw["cells"]), f"{path.name}: a cell without an id (nbformat 4.5)"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: committed with outputs"
            assert cell.execution_count is None, f"{path.name}: committed with execution counts"
    declared = papermill.inspect_notebook(str(path))
    assert {"profile", "seed", "out_dir"} <= set(declared), f"{path.name}: parameters cell lacks profile/seed/out_dir"
    assert any(c.cell_type == "markdown" for c in nb.cells), f"{path.name}: no prose"


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_params_name_existing_notebooks(profile):
    params = yaml.safe_load((ROOT / "notebooks" / "params" / f"{profile}.yaml").read_text())
    stems = {p.stem for p in NOTEBOOKS}
    assert params["common"]["profile"] == profile
    for section in params:
        assert section == "common" or section in stems, f"params/{profile}.yaml: no notebook named {section}"


def test_a_hung_cell_times_out_and_is_named(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write_notebook(folder / "00_slow.ipynb", "seed = 0", "import time\ntime.sleep(60)")
    results = run_all("ci", tmp_path / "out", folder, cell_timeout=2)
    assert results[0].status == "failed"
    assert "cell index 1" in results[0].error and "Timeout" in results[0].error


def test_executed_notebooks_are_signed_so_a_later_lab_trusts_them(toy_notebooks, tmp_path):
    """The runner signs with this user's notary (secret and database in the Jupyter data directory);
    a notary created afresh, and Jupyter server's contents manager, as Lab started later uses them,
    then trust the executed copy. A fresh ``$JUPYTER_DATA_DIR`` stands for a fresh HOME in CI."""
    from jupyter_server.services.contents.filemanager import FileContentsManager
    from nbformat.sign import NotebookNotary

    data_dir = tmp_path / "jupyter-data"  # set by _own_jupyter_data_dir
    out = tmp_path / "out"
    run_all("ci", out, toy_notebooks)
    assert {"notebook_secret", "nbsignatures.db"} <= {p.name for p in data_dir.iterdir()}
    with NotebookNotary() as notary:
        for name in ("00_ok.ipynb", "01_broken.ipynb"):  # a failed run's outputs are the kit's own too
            assert notary.check_signature(nbformat.read(out / name, as_version=4)), name
        untouched = nbformat.read(toy_notebooks / "00_ok.ipynb", as_version=4)
        assert not notary.check_signature(untouched)
    model = FileContentsManager(root_dir=str(out)).get("00_ok.ipynb")
    code_cells = [c for c in model["content"]["cells"] if c["cell_type"] == "code"]
    assert code_cells and all(c["metadata"]["trusted"] for c in code_cells)


def _profile_folder(tmp_path, monkeypatch):
    """A notebook folder whose params/demo.yaml the helper finds from the working directory, as in Lab."""
    folder = tmp_path / "notebooks"
    (folder / "params").mkdir(parents=True)
    (folder / "params" / "demo.yaml").write_text(yaml.safe_dump(
        {"common": {"profile": "demo", "seed": 0, "not_declared": 1}, "01_x": {"size": 256}, "02_y": {"size": 9}}
    ))
    monkeypatch.chdir(folder)
    return folder


_PARAMETERS_SOURCE = 'profile = "ci"\nseed = 0\nout_dir = "../runs/ci"\nsize = 128'


def _cell_parameters() -> dict:
    return {"profile": "ci", "seed": 0, "out_dir": "../runs/ci", "size": 128, "kept": "cell value"}


def test_apply_profile_takes_the_profile_from_the_environment(tmp_path, monkeypatch, capsys):
    _profile_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("EDENKIT_PROFILE", "demo")
    namespace = _cell_parameters()
    apply_profile(namespace, "01_x")
    assert namespace == {"profile": "demo", "seed": 0, "out_dir": "../runs/demo", "size": 256, "kept": "cell value"}
    assert "EDENKIT_PROFILE=demo" in capsys.readouterr().out


def test_apply_profile_leaves_the_cell_alone_without_the_variable_or_after_injection(tmp_path, monkeypatch):
    _profile_folder(tmp_path, monkeypatch)
    monkeypatch.delenv("EDENKIT_PROFILE", raising=False)
    namespace = _cell_parameters()
    apply_profile(namespace, "01_x")
    assert namespace == _cell_parameters()
    # papermill's injected cell ran in this kernel (the runner, nbval on a prepared copy): it wins
    monkeypatch.setenv("EDENKIT_PROFILE", "demo")
    injected = papermill.translators.translate_parameters("python3", "python", {"size": 9}, "Parameters")
    namespace = {**_cell_parameters(), "size": 9, "In": ["", _PARAMETERS_SOURCE, injected, "apply_profile(...)"]}
    apply_profile(namespace, "01_x")
    assert namespace["profile"] == "ci" and namespace["size"] == 9


def test_apply_profile_refuses_an_unknown_profile(tmp_path, monkeypatch):
    _profile_folder(tmp_path, monkeypatch)
    monkeypatch.setenv("EDENKIT_PROFILE", "dmeo")
    with pytest.raises(ConfigError, match="dmeo"):
        apply_profile(_cell_parameters(), "01_x")


def test_apply_profile_gives_what_the_runner_would_inject():
    """For every committed notebook, the helper under ``EDENKIT_PROFILE=demo`` sets the same values as
    ``python -m edenkit notebooks --profile demo`` injects (``out_dir`` aside: relative, not absolute)."""
    from edenkit.notebooks import notebook_parameters

    demo = yaml.safe_load((ROOT / "notebooks" / "params" / "demo.yaml").read_text())
    for path in NOTEBOOKS:
        declared = papermill.inspect_notebook(str(path))
        namespace = {name: ast.literal_eval(spec["default"]) for name, spec in declared.items()}  # the cell's literals
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("EDENKIT_PROFILE", "demo")
            mp.chdir(ROOT / "notebooks")
            apply_profile(namespace, path.stem)
        injected = notebook_parameters(path, demo, {}, ROOT / "runs" / "demo", None)
        assert {k: namespace[k] for k in injected if k != "out_dir"} == {k: v for k, v in injected.items() if k != "out_dir"}
        assert (ROOT / "notebooks" / namespace["out_dir"]).resolve() == (ROOT / "runs" / "demo").resolve(), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_cell_after_the_parameters_applies_the_chosen_profile(path):
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    derived = nb.cells[index + 1]
    assert derived.cell_type == "code" and f'apply_profile(globals(), "{path.stem}")' in derived.source, (
        f"{path.name}: the cell after the parameters cell must call apply_profile(globals(), {path.stem!r})"
    )
