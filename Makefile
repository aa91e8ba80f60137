# Two commands do all the set-up on a fresh machine: `make search` and `make test`.
# Each creates .venv (once) and installs the pinned requirements plus this package into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install search test bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

search: install
	$(BIN)/python scripts/search_supernet.py $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_ops.py $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
