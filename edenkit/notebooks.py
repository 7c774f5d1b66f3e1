"""The tutorial notebooks on a profile: ``python -m edenkit notebooks`` runs them headless with papermill.

Parameters come from ``notebooks/params/<profile>.yaml``: the ``common`` section goes to every notebook
that declares the key in its ``parameters`` cell, and a section named after a notebook's stem adds or
overrides keys for that notebook. ``-p key=value`` overrides both. Every notebook gets an absolute
``out_dir`` (where its figures and results go). Executed copies and ``summary.json`` are written to
``--out`` (default ``runs/<profile>``) and signed, so JupyterLab trusts them and shows their widgets;
the command exits non-zero if a notebook fails, naming the notebook and the failing cell.

In JupyterLab the choice is the environment variable ``EDENKIT_PROFILE``: each notebook's first code
cell after its parameters calls :func:`apply_profile`, so ``EDENKIT_PROFILE=demo jupyter lab`` (or
``make lab``) runs every notebook on the ``demo`` settings while the committed parameters cells keep
the ``ci`` ones. Parameters injected by papermill (this runner, nbval on its prepared copies) win.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edenkit.config import ConfigError, parse_overrides, read_yaml
from edenkit.files import atomic_write_json

PROFILES = ("ci", "demo", "paper")
PROFILE_VARIABLE = "EDENKIT_PROFILE"
# The first line of the cell papermill injects after a notebook's parameters cell (its Python translator).
INJECTED_CELL_HEADER = "# Parameters\n"
NOTEBOOK_NAME = re.compile(r"^(\d\d)_.+\.ipynb$")


@dataclass
class NotebookResult:
    notebook: str
    status: str  # "ok", "failed" or "prepared"
    seconds: float
    output: str
    error: str = ""


def default_notebook_dir() -> Path:
    """``./notebooks`` when run from a checkout, else the one beside the installed package."""
    here = Path.cwd() / "notebooks"
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "notebooks"


def discover(notebook_dir: Path, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order; ``only`` keeps those whose number or stem is listed."""
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"notebook folder not found: {notebook_dir}")
    found = sorted(p for p in notebook_dir.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if not only:
        return found
    wanted = {w.strip() for item in only for w in item.split(",") if w.strip()}
    chosen = [p for p in found if p.name[:2] in wanted or p.stem in wanted]
    missing = wanted - {p.name[:2] for p in chosen} - {p.stem for p in chosen}
    if missing:
        raise FileNotFoundError(f"no notebook matches {sorted(missing)} in {notebook_dir}")
    return chosen


def declared_parameters(notebook: Path) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def notebook_parameters(
    notebook: Path, profile_params: dict, overrides: dict, out_dir: Path, data_root: str | None
) -> dict:
    """The parameters one notebook receives: common & declared, its own section, then overrides."""
    declared = declared_parameters(notebook)
    common = profile_params.get("common") or {}
    own = profile_params.get(notebook.stem) or {}
    undeclared = sorted(set(own) - declared)
    if undeclared:
        raise ConfigError(
            f"notebooks/params section {notebook.stem!r} sets {undeclared}, "
            f"which the notebook's parameters cell does not declare"
        )
    params = {k: v for k, v in common.items() if k in declared}
    params.update(own)
    params.update({k: v for k, v in overrides.items() if k in declared})
    extra = {"out_dir": str(out_dir.resolve())}
    if data_root is not None:
        extra["data_root"] = str(Path(data_root).expanduser().resolve())
    params.update({k: v for k, v in extra.items() if k in declared})
    return params


def apply_profile(namespace: dict, notebook: str) -> None:
    """Switch a notebook opened in JupyterLab to the profile named by ``$EDENKIT_PROFILE``.

    Called as ``apply_profile(globals(), "<notebook stem>")`` right after the parameters cell, it
    overwrites the parameters with the values the runner would inject for that profile (the ``common``
    section of ``notebooks/params/<profile>.yaml`` and the notebook's own section, each key that the
    parameters cell defines) and moves ``out_dir`` from ``../runs/<cell profile>`` to
    ``../runs/<profile>``. It does nothing when the variable is unset, names the profile the cell has
    already, or when this kernel has run papermill's injected-parameters cell: those parameters win
    (``python -m edenkit notebooks``, nbval on prepared copies, an executed copy re-run in Lab).
    """
    wanted = os.environ.get(PROFILE_VARIABLE, "").strip()
    current = namespace.get("profile")
    if not wanted or wanted == current or _ran_injected_parameters(namespace):
        return
    if wanted not in PROFILES:
        raise ConfigError(f"{PROFILE_VARIABLE}={wanted!r}: choose one of {', '.join(PROFILES)}")
    profile_params = read_yaml(_params_folder() / f"{wanted}.yaml")
    chosen = dict(profile_params.get("common") or {})
    chosen.update(profile_params.get(notebook) or {})
    values = {k: v for k, v in chosen.items() if k in namespace}
    out_dir = namespace.get("out_dir")
    if out_dir is not None and current and Path(out_dir).name == current:
        values["out_dir"] = str(Path(out_dir).with_name(wanted))
    namespace.update(values)
    where = f"; outputs under {values['out_dir']}" if "out_dir" in values else ""
    print(f"{PROFILE_VARIABLE}={wanted}: parameters from notebooks/params/{wanted}.yaml{where}")


def _ran_injected_parameters(namespace: dict) -> bool:
    """Whether IPython's input history (``In``) holds the cell papermill injected."""
    history = namespace.get("In") or []
    return any(isinstance(source, str) and source.startswith(INJECTED_CELL_HEADER) for source in history)


def _params_folder() -> Path:
    """``./params`` beside the notebook (a kernel's working directory in Lab), else the checkout's."""
    here = Path.cwd() / "params"
    return here if here.is_dir() else default_notebook_dir() / "params"


def run_notebook(
    notebook: Path, output: Path, parameters: dict, prepare_only: bool = False, cell_timeout: int | None = 3600
) -> NotebookResult:
    """Execute (or only parameterize) one notebook with papermill; never raises on a failing cell.

    ``cell_timeout`` (seconds) turns a hung cell into a failure instead of a run that never ends.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(notebook.parent),
            progress_bar=False,
            prepare_only=prepare_only,
            execution_timeout=cell_timeout,
            config=_kernel_manager_config(),
        )
        status, error = ("prepared" if prepare_only else "ok"), ""
    except PapermillExecutionError as e:
        status = "failed"
        error = f"cell index {e.cell_index} (execution count {e.exec_count}): {e.ename}: {e.evalue}"
    except Exception as e:  # a cell timeout or a dead kernel: name the cell that was running
        status = "failed"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        error = f"cell index {_running_cell(output)}: {type(e).__name__}: {first_line}"
    if not prepare_only and output.is_file():
        sign_notebook(output)
    return NotebookResult(notebook.name, status, round(time.perf_counter() - start, 2), str(output), error)


def _kernel_manager_config():
    """Kernels over CurveZMQ-encrypted TCP where pyzmq supports it.

    ipykernel (7.4 here) warns "Kernel is running over TCP without encryption" when the kernel manager
    provisions no keys, jupyter_client's default ("disabled"); "auto" provisions them for kernelspecs
    that declare ``supported_encryption: curve`` (ipykernel's does), which also silences the warning.
    """
    import zmq
    from traitlets.config import Config

    return Config({"KernelManager": {"transport_encryption": "auto" if zmq.has("curve") else "disabled"}})


def sign_notebook(path: Path) -> None:
    """Record ``path`` as trusted in this user's Jupyter signature database, as ``jupyter trust`` does.

    The notary keeps its secret and database in the Jupyter data directory (``$JUPYTER_DATA_DIR`` or
    ``~/.local/share/jupyter``), the one JupyterLab started later by the same user checks, so the
    executed notebook opens with its outputs trusted: widgets and HTML render instead of a line of text.
    """
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(path, as_version=4)
    try:
        with NotebookNotary() as notary:
            notary.sign(nb)
    except OSError as e:  # an unwritable data directory: the run stands, only Lab will not trust it
        print(f"[edenkit]   could not sign {path.name} ({e}); `jupyter trust {path}` does it later", flush=True)


def _running_cell(output: Path) -> str:
    """Index of the interrupted cell in ``output``: the one with an error output, or still running."""
    import nbformat

    try:
        nb = nbformat.read(output, as_version=4)
    except Exception:
        return "?"
    for index, cell in enumerate(nb.cells):
        errored = any(out.get("output_type") == "error" for out in cell.get("outputs", []))
        if errored or cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return str(index)
    return "?"


def run_all(
    profile: str,
    out: Path,
    notebook_dir: Path | None = None,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    data_root: str | None = None,
    prepare_only: bool = False,
    stop_on_error: bool = False,
    cell_timeout: int | None = 3600,
) -> list[NotebookResult]:
    notebook_dir = Path(notebook_dir) if notebook_dir else default_notebook_dir()
    notebooks = discover(notebook_dir, only)
    params_file = notebook_dir / "params" / f"{profile}.yaml"
    profile_params = read_yaml(params_file) if params_file.is_file() else {}
    override_values = parse_overrides(overrides)
    unknown = [k for k in override_values if not any(k in declared_parameters(nb) for nb in notebooks)]
    if unknown:
        raise ConfigError(f"parameter override {unknown[0]!r} is declared by none of the selected notebooks")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for notebook in notebooks:
        parameters = notebook_parameters(notebook, profile_params, override_values, out, data_root)
        verb = "preparing" if prepare_only else "running"
        print(f"[edenkit] {verb} {notebook.name} ({profile})", flush=True)
        result = run_notebook(notebook, out / notebook.name, parameters, prepare_only, cell_timeout)
        print(f"[edenkit]   {result.status} in {result.seconds:.1f} s {result.error}".rstrip(), flush=True)
        results.append(result)
        if result.status == "failed" and stop_on_error:
            break
    write_summary(out / "summary.json", profile, [asdict(r) for r in results])
    return results


def write_summary(path: Path, profile: str, results: list[dict]) -> None:
    """Write ``summary.json`` atomically; entries of an earlier run of the same profile for notebooks
    not run this time are kept, so ``--only 07`` after a full run still leaves the whole picture."""
    ran = {r["notebook"] for r in results}
    try:
        earlier = json.loads(path.read_text())
        kept = [r for r in earlier["results"] if r["notebook"] not in ran] if earlier["profile"] == profile else []
    except (OSError, ValueError, KeyError, TypeError):
        kept = []  # no summary yet, or one we cannot read: start afresh
    summary = {"profile": profile, "results": sorted(kept + results, key=lambda r: r["notebook"])}
    atomic_write_json(path, summary)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=PROFILES, default="demo", help="parameter profile (default: demo)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks (numbers or stems)")
    parser.add_argument("--out", type=Path, help="where executed notebooks and summary.json go (default: runs/<profile>)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="override a parameter")
    parser.add_argument("--notebooks", type=Path, help="notebook folder (default: ./notebooks)")
    parser.add_argument("--data-root", help="folder of the downloaded datasets (paper profile)")
    parser.add_argument("--prepare-only", action="store_true", help="inject parameters without executing (for nbval)")
    parser.add_argument("--stop-on-error", action="store_true", help="stop at the first failing notebook")
    parser.add_argument("--cell-timeout", type=int, default=3600, help="seconds a cell may run before it fails (default 3600)")


def run(args: argparse.Namespace) -> int:
    out = args.out or Path("runs") / args.profile
    try:
        results = run_all(
            args.profile, out, args.notebooks, args.only, args.param, args.data_root, args.prepare_only,
            args.stop_on_error, args.cell_timeout,
        )
    except (ConfigError, FileNotFoundError) as e:
        print(f"edenkit notebooks: {e}", file=sys.stderr)
        return 2
    total = sum(r.seconds for r in results)
    print(f"\n{'notebook':<36} {'result':<9} {'seconds':>8}")
    for r in results:
        print(f"{r.notebook:<36} {r.status:<9} {r.seconds:>8.1f}")
    print(f"{'total':<36} {'':<9} {total:>8.1f}\nexecuted notebooks and summary.json in {out}")
    if not args.prepare_only:
        from edenkit.report import write_demo_table  # matplotlib only when notebooks ran

        table = write_demo_table(out)
        if table is not None:
            print(f"the results table of notebooks 05-08 (floors, controls, ceilings): {table}")
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"FAILED: {r.notebook}: {r.error} (see {r.output})", file=sys.stderr)
    return 1 if failed else 0
