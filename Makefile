# lora_theory: every target creates .venv when it is missing (or when it holds a Python < 3.12).
# The interpreter: PYTHON=... if given, else the first Python >= 3.12 that runs (see .ci/find-python).
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install figures figures-quick test test-all check notebooks bench docs docs-serve docs-check clean

$(STAMP): pyproject.toml
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
		echo "$(VENV) holds Python < 3.12: recreating it"; rm -rf $(VENV); fi
	@if [ ! -x $(BIN)/python ]; then \
		py=$$(PYTHON="$(PYTHON)" bash .ci/find-python) || exit 1; \
		echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## Regenerate every figure on the CPU, at the size of the committed figures.
figures: $(STAMP)
	$(BIN)/lora-theory reproduce --out results

## A fast look at every figure (quick presets).
figures-quick: $(STAMP)
	$(BIN)/lora-theory reproduce --quick --out results/quick --figures-dir results/quick/figures

## The CI test suite (everything but @pytest.mark.slow).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15

## Lint, format and type checks (the same as the pre-commit hooks): ruff check, ruff format --check, mypy.
LINTED := conftest.py lora_theory tests experiments benchmarks
check: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

## Everything, the slow full-size checks included.
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "slow or not slow" --timeout=3600

## Install the Jupyter extra and open JupyterLab on notebooks/.
notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[jupyter]"
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

## The documentation site (mkdocs.yml, docs/; see docs/development.md).
# The notebooks are committed without outputs. `make docs` executes each one into
# build/docs-notebooks/ (in notebooks/, as tests/test_notebooks.py does; only when the .ipynb is
# newer than its executed copy: `rm -rf build/docs-notebooks` forces a fresh run) and the site
# renders those copies. `make docs-check` (CI) renders the clean notebooks without executing them:
# executing the five costs 2-3 min on 2 cores, and `make test` already executes every notebook.
DOCS_STAMP := $(VENV)/.installed-docs
NOTEBOOKS_RUN := build/docs-notebooks
EXECUTED := $(patsubst notebooks/%.ipynb,$(NOTEBOOKS_RUN)/%.ipynb,$(wildcard notebooks/*.ipynb))
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

$(NOTEBOOKS_RUN)/%.ipynb: notebooks/%.ipynb | $(DOCS_STAMP)
	@mkdir -p $(NOTEBOOKS_RUN)
	env -u MPLBACKEND $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.kernel_name=python3 \
		--ExecutePreprocessor.timeout=600 --output-dir $(NOTEBOOKS_RUN) $<

## Build the site into site/, with the notebooks executed (--strict: any warning fails).
docs: $(DOCS_STAMP) $(EXECUTED)
	LORA_THEORY_DOCS_NOTEBOOKS=$(NOTEBOOKS_RUN) $(MKDOCS) build --strict --site-dir site

## Serve the site on http://127.0.0.1:8000, rebuilt on every change.
docs-serve: $(DOCS_STAMP) $(EXECUTED)
	LORA_THEORY_DOCS_NOTEBOOKS=$(NOTEBOOKS_RUN) $(MKDOCS) serve --strict --watch lora_theory --watch figures --watch notebooks

## What CI checks: the site builds with no warning, on the clean notebooks (nothing executed).
docs-check: $(DOCS_STAMP)
	$(MKDOCS) build --strict --site-dir build/docs-check

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis .mypy_cache .ruff_cache site build/docs-notebooks build/docs-check build/mkdocs-jupyter
