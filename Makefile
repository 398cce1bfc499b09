# lora_theory: every target creates .venv when it is missing (or when it holds a Python < 3.12).
# The interpreter: PYTHON=... if given, else the first Python >= 3.12 that runs (see .ci/find-python).
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install figures figures-quick test test-all check notebooks bench clean

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
LINTED := lora_theory tests experiments benchmarks
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

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis .mypy_cache .ruff_cache
