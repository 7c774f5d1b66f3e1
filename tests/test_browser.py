"""The notebooks as a student meets them: JupyterLab in a real (headless) browser.

JupyterLab is started on 127.0.0.1 (a free port, a token, a temporary root holding copies of notebooks
01 and 02 prepared for the ``ci`` profile), Debian's Chromium opens each notebook through selenium and
runs it with Lab's own "Run All Cells" command. Then every explorer must have rendered as a widget (not
as the text ``VBox(children=...``), moving one of its sliders with the arrow key must change its
picture, and no cell may show an error. Lab is started as ``EDENKIT_PROFILE=demo jupyter lab``: the
prepared copies must stay on ``ci`` (papermill's injected parameters win) while notebook 00, opened as
committed, switches to ``demo``. A copy executed and signed by the runner must open trusted, its
explorer drawn from the saved widget state. Screenshots go to the test's folder and to build/browser/.

The test needs ``chromium`` and ``chromium-driver`` (Debian packages) and ``selenium`` (the dev extra).
Locally it skips without them; in CI (``CI=true``) it fails, since ``.ci/run`` installs them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from edenkit.notebooks import run_all

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOTEBOOKS = ("01_anatomy_phantom", "02_anatomy_decomposer")
WELCOME = "00_welcome"  # opened as committed, to see EDENKIT_PROFILE switch it
PROFILE_IN_LAB = "demo"
EXECUTED = "02_anatomy_decomposer"  # run by the runner, then opened without running
SCREENSHOTS = ROOT / "build" / "browser"
RUN_ALL_TIMEOUT = 300  # seconds for one notebook's Run All; the ci profile needs about 10-20 s
PICTURE_TIMEOUT = 30  # seconds for an explorer to redraw after a slider moved

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # without these Chromium phones home at start-up, and a closed network refuses it
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1600",
]
# Lab's user settings for the test: every cell attached to the page (the DOM queries below need the
# outputs of cells outside the viewport), and no news or update checks (no network).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True,
    },
}

pytestmark = pytest.mark.slow


def _require_browser():
    """Skip (locally) or fail (in CI) when the browser, its driver or selenium is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if not missing:
        return
    message = (f"the browser test needs {', '.join(missing)}: enable it with "
               "`apt-get install chromium chromium-driver` and `pip install -e '.[dev]'` (selenium)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (.ci/run installs them)")
    pytest.skip(message)


@dataclasses.dataclass
class Lab:
    url: str
    token: str
    root: Path  # what Lab serves
    runner: subprocess.Popen  # the runner making the executed copy in the background
    runner_log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter_environment(home: Path) -> dict:
    """A fresh Jupyter config, data and runtime folder, so the test neither reads nor writes the user's;
    Lab started as ``EDENKIT_PROFILE=demo jupyter lab`` (the prepared copies must stay on ``ci``)."""
    env = dict(os.environ)
    env.update(
        EDENKIT_PROFILE=PROFILE_IN_LAB,
        JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
    )
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {"news_url": None}}))
    for name, settings in LAB_SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a root of prepared notebooks (and, once its runner is done, one executed copy)."""
    _require_browser()
    home = tmp_path_factory.mktemp("jupyter-home")
    root = tmp_path_factory.mktemp("lab-root")
    env = _jupyter_environment(home)
    run_all("ci", root, ROOT / "notebooks", only=list(NOTEBOOKS), prepare_only=True)
    shutil.copytree(ROOT / "notebooks" / "params", root / "notebooks" / "params")
    shutil.copy(ROOT / "notebooks" / f"{WELCOME}.ipynb", root / "notebooks")
    # The executed copy is made by the runner in the background while Lab and the browser start and
    # run the prepared notebooks (one core each), signed into the notary this Lab checks.
    runner_log = (home / "runner.log").open("w")
    runner = subprocess.Popen(
        [sys.executable, "-m", "edenkit", "notebooks", "--profile", "ci", "--only", EXECUTED,
         "--out", str(root / "executed"), "--cell-timeout", str(RUN_ALL_TIMEOUT)],
        env={**env, "OMP_NUM_THREADS": "1"}, stdout=runner_log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    port, token = _free_port(), os.urandom(12).hex()
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--allow-root",  # CI runs as root
         "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: Lab's commands and models
         "--LabApp.extension_manager=readonly",  # no PyPI listing
         "--KernelManager.transport_encryption=auto"],  # as the runner's kernels: no plain-TCP warning
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        _wait_for_server(url, token, server, home / "lab.log")
        print(f"JupyterLab answered after {time.monotonic() - started:.1f} s")
        yield Lab(url, token, root, runner, home / "runner.log")
    finally:
        if runner.poll() is None:
            runner.kill()
        runner.wait()
        runner_log.close()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for_server(url: str, token: str, server: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


# The open notebook as Lab's model sees it: the kernel's status, executed code cells, error outputs and
# widget-view outputs.
NOTEBOOK_STATE_JS = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.sessionContext || !panel.content || !panel.content.model) { return null; }
const session = panel.sessionContext.session;
const cells = panel.content.model.cells;
let code = 0, executed = 0, widgets = 0;
const errors = [];
for (let i = 0; i < cells.length; i++) {
  const cell = cells.get(i);
  if (cell.type !== 'code') { continue; }
  code += 1;
  if (cell.executionCount !== null) { executed += 1; }
  for (let j = 0; j < cell.outputs.length; j++) {
    const output = cell.outputs.get(j).toJSON();
    if (output.output_type === 'error') { errors.push(`cell ${i}: ${output.ename}: ${output.evalue}`); }
    if (output.data && output.data['application/vnd.jupyter.widget-view+json']) { widgets += 1; }
  }
}
return {kernel: session && session.kernel ? session.kernel.status : null, code, executed, errors, widgets};
"""

RUN_ALL_JS = """
const done = arguments[arguments.length - 1];
const app = window.jupyterapp;
const panel = app.shell.currentWidget;
app.shell.activateById(panel.id);
panel.sessionContext.ready
  .then(() => app.commands.execute('notebook:run-all-cells'))
  .then(() => done('ok'), (e) => done(String(e)));
"""


def _wait(condition, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _open(driver, lab: Lab, name: str) -> None:
    """Open ``name`` in a workspace of its own (only that notebook), and wait for its kernel to be idle."""
    driver.get(f"{lab.url}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={lab.token}")
    _wait(lambda: (driver.execute_script(NOTEBOOK_STATE_JS) or {}).get("kernel") == "idle", 120,
          f"{name} to open with an idle kernel")


def _run_all(driver, name: str) -> dict:
    """Lab's "Run All Cells" on the open notebook; waits for every code cell to run (or one to fail)."""
    assert driver.execute_async_script(RUN_ALL_JS) == "ok"

    def finished():
        state = driver.execute_script(NOTEBOOK_STATE_JS)
        done = state["kernel"] == "idle" and (state["executed"] == state["code"] or state["errors"])
        return state if done else None

    return _wait(finished, RUN_ALL_TIMEOUT, f"{name}: Run All to finish", interval=1.0)


def _shut_down_kernels(lab: Lab) -> None:
    url, token = lab.url, lab.token
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def _screenshot(tmp_path: Path, name: str, driver=None, element=None) -> None:
    """A screenshot of the window (or of one element) in the test's folder and in build/browser/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if element is not None:
        element.screenshot(str(tmp_path / name))
    else:
        driver.save_screenshot(str(tmp_path / name))
    shutil.copyfile(tmp_path / name, SCREENSHOTS / name)


def _widget_outputs(driver):
    """Output areas that rendered widget DOM (Lab gives a widget view's output no MIME-type attribute)."""
    from selenium.webdriver.common.by import By

    outputs = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
    return [o for o in outputs if o.find_elements(By.CSS_SELECTOR, ":scope > .jupyter-widgets")]


def _text_outputs(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, ".jp-RenderedText")]


def _explorers(driver):
    """Rendered widget outputs with a slider and a picture: the explorers."""
    from selenium.webdriver.common.by import By

    found = []
    for output in _widget_outputs(driver):
        if output.find_elements(By.CSS_SELECTOR, ".widget-slider") and output.find_elements(By.TAG_NAME, "img"):
            found.append(output)
    return found


def _assert_no_errors(driver, name: str) -> None:
    state = driver.execute_script(NOTEBOOK_STATE_JS)
    assert not state["errors"], f"{name}: error outputs: {state['errors']}"
    tracebacks = [t[:500] for t in _stderr_texts(driver) if "Traceback" in t]
    assert not tracebacks, f"{name}: a cell printed a traceback: {tracebacks}"


def _stderr_texts(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    selector = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
    return [e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def _assert_rendered_as_widgets(driver, name: str) -> list:

    in_model = driver.execute_script(NOTEBOOK_STATE_JS)["widgets"]
    rendered = len(_widget_outputs(driver))
    assert in_model, f"{name}: no widget output at all"
    assert rendered == in_model, f"{name}: {in_model} widget outputs, {rendered} rendered as widgets"
    as_text = [t[:200] for t in _text_outputs(driver) if "VBox(children=" in t or "IntSlider(" in t]
    assert not as_text, f"{name}: an explorer shows as text: {as_text}"
    explorers = _explorers(driver)
    assert explorers, f"{name}: no explorer (a widget output with a slider and a picture)"
    return explorers


def _picture(explorer) -> str:
    from selenium.webdriver.common.by import By

    return explorer.find_element(By.TAG_NAME, "img").get_attribute("src") or ""


def _move_a_slider(driver, explorer) -> str:
    """Press the right arrow on each slider of ``explorer`` in turn until its picture changes; the
    slider's description. (Every slider of the kit's explorers changes the picture; trying them in
    turn keeps the test independent of their order.)"""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    tried = []
    for slider in explorer.find_elements(By.CSS_SELECTOR, ".widget-slider"):
        label = slider.find_element(By.CSS_SELECTOR, ".widget-label").get_attribute("textContent")
        readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
        handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
        before_value, before_picture = readout.get_attribute("textContent"), _picture(explorer)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
        handle.send_keys(Keys.ARROW_RIGHT)
        try:
            _wait(lambda r=readout, v=before_value: r.get_attribute("textContent") != v, 5, f"slider {label!r} to move")
            _wait(lambda p=before_picture: _picture(explorer) not in ("", p), PICTURE_TIMEOUT,
                  f"the picture to change after {label!r} moved")
            return label
        except AssertionError as e:
            tried.append(str(e))
    raise AssertionError(f"no slider changed the picture: {tried}")


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_run_all_renders_explorers_that_respond(lab, browser, stem, tmp_path):
    name = f"{stem}.ipynb"
    started = time.monotonic()
    _open(browser, lab, name)
    print(f"{name}: opened, kernel idle, after {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    try:
        state = _run_all(browser, name)
    finally:
        _screenshot(tmp_path, f"{stem}-run-all.png", driver=browser)
    print(f"{name}: Run All took {time.monotonic() - started:.1f} s ({state['code']} code cells)")
    _assert_no_errors(browser, name)
    switched = [t[:200] for t in _text_outputs(browser) if "EDENKIT_PROFILE=" in t]
    assert not switched, f"{name}: EDENKIT_PROFILE overrode papermill's injected parameters: {switched}"
    explorers = _assert_rendered_as_widgets(browser, name)
    for index, explorer in enumerate(explorers):
        _screenshot(tmp_path, f"{stem}-explorer{index}-before.png", element=explorer)
        started = time.monotonic()
        moved = _move_a_slider(browser, explorer)
        _screenshot(tmp_path, f"{stem}-explorer{index}-after.png", element=explorer)
        print(f"{name}: explorer {index}: moving {moved!r} changed the picture in {time.monotonic() - started:.1f} s")
    _assert_no_errors(browser, name)
    _shut_down_kernels(lab)


def test_lab_started_with_edenkit_profile_runs_a_notebook_on_that_profile(lab, browser, tmp_path):
    """A committed notebook (its parameters cell says ``ci``) opened in a Lab started with
    ``EDENKIT_PROFILE=demo`` takes the demo parameters and writes under ../runs/demo."""
    name = f"notebooks/{WELCOME}.ipynb"
    _open(browser, lab, name)
    try:
        _run_all(browser, name)
    finally:
        _screenshot(tmp_path, f"{WELCOME}-{PROFILE_IN_LAB}.png", driver=browser)
    _assert_no_errors(browser, name)
    said = next((t for t in _text_outputs(browser) if "EDENKIT_PROFILE=" in t), "")
    assert f"EDENKIT_PROFILE={PROFILE_IN_LAB}: parameters from notebooks/params/{PROFILE_IN_LAB}.yaml" in said
    assert (lab.root / "runs" / PROFILE_IN_LAB).is_dir()
    _shut_down_kernels(lab)


def test_an_executed_copy_opens_trusted_with_its_explorer(lab, browser, tmp_path):
    """What a student sees opening runs/demo/*.ipynb: the runner signed it, so Lab renders the saved
    widget state (the explorer with its last picture) without running anything."""
    started = time.monotonic()
    assert lab.runner.wait(timeout=RUN_ALL_TIMEOUT) == 0, lab.runner_log.read_text()[-3000:]
    print(f"waited {time.monotonic() - started:.1f} s for the runner's executed copy")
    assert "without encryption" not in lab.runner_log.read_text()
    name = f"executed/{EXECUTED}.ipynb"
    assert "EDENKIT_PROFILE=" not in (lab.root / name).read_text(), "the runner's --profile ci must win"
    _open(browser, lab, name)
    try:
        explorers = _wait(lambda: _explorers(browser), 60, f"{name}: the saved explorer to render")
    except AssertionError:
        _screenshot(tmp_path, f"{EXECUTED}-executed-copy.png", driver=browser)
        raise
    _screenshot(tmp_path, f"{EXECUTED}-executed-copy.png", element=explorers[0])
    _assert_rendered_as_widgets(browser, name)
    assert _picture(explorers[0]), f"{name}: the explorer has no picture"
    _assert_no_errors(browser, name)
    _shut_down_kernels(lab)
