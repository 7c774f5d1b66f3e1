# The README's two commands are `make demo` (main job) and `make test` (the whole suite).
# Each creates the virtual environment when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build pinned for this project's machines; override on a GPU server, e.g.
#   make TORCH_SPEC="torch==2.5.1 torchvision==0.20.1" venv
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PROFILE ?= demo

.PHONY: venv demo seeds lab test lint unit browser nbval notebooks clean

venv: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# Main job: every tutorial notebook, headless, on the built-in phantom (executed copies under runs/).
demo: venv
	$(PY) -m edenkit notebooks --profile $(PROFILE) --out runs/$(PROFILE)

# After the demo: pretrain Adam, Adam without the pruner and MoCo-v2 with seeds 0, 1 and 2 (seed 0's Adam
# and MoCo-v2 are the demo's) and score every run, the curriculum cut short included, with notebooks
# 05-07's measures (about 70 min on 2 cores): how far the demo's comparison moves with the pretraining seed.
SEED_METHODS ?= adam adam_0 adam_0_2 adam_no_pruner mocov2 random
seeds: venv
	$(PY) -m edenkit seeds --profile $(PROFILE) --out-dir runs/$(PROFILE) --seeds 0 1 2 \
		--methods $(SEED_METHODS) --baselines mocov2 random adam

# JupyterLab on the checkout, every notebook switched to $(PROFILE) by EDENKIT_PROFILE (see notebook 00);
# kernels over CurveZMQ, as the runner's, so Lab does not print ipykernel's plain-TCP warning.
lab: venv
	EDENKIT_PROFILE=$(PROFILE) $(VENV)/bin/jupyter lab --KernelManager.transport_encryption=auto

# The whole suite: lint, unit tests (with tests/test_browser.py: notebooks 01 and 02 in JupyterLab in
# headless Chromium), then every notebook through nbval in the `ci` profile.
test: venv lint unit nbval

lint: venv
	$(VENV)/bin/ruff check .

unit: venv
	$(PY) -m pytest tests

# The browser test alone (needs `apt-get install chromium chromium-driver`; skipped without them).
browser: venv
	$(PY) -m pytest tests/test_browser.py

nbval: venv
	rm -rf build/nbval
	$(PY) -m edenkit notebooks --profile ci --prepare-only --out build/nbval
	$(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=600 build/nbval/*.ipynb

clean:
	rm -rf build runs/ci
