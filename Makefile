# One entry point for everything a newcomer does. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast lint run psql bench bench-memory bench-tools migrate compose-check clean

$(STAMP): pyproject.toml
	@echo "make: installing the project into $(VENV)/ (2-3 minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# The quick loop: every test that starts no process of its own (marker `subprocess`)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not subprocess"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The whole stack until Ctrl-C (see docs/operations.md); e.g. make run ARGS='--pipeline-port 8080'
run: $(STAMP)
	$(BIN)/python -m devstack $(ARGS)

# psql on the stack's database (the embedded one, or DATABASE_URL)
psql: $(STAMP)
	$(BIN)/python -m devstack.psql $(ARGS)

# The benchmark (bench/): starts the stack like `make run`, prints a markdown table.
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--sizes 1920x1080 --seconds 10".
bench: $(STAMP) bench-tools
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-memory: $(STAMP) bench-tools
	$(BIN)/python -m bench --memory $(BENCH_ARGS)

bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq wrk; \
	  else \
	    echo "make bench needs wrk: install it (Debian/Ubuntu: sudo apt-get install wrk)"; exit 1; \
	  fi; }

migrate: $(STAMP)
	$(BIN)/python -m pipeline_service.db.migrate

# The Docker path end to end: build, up, requests, restart, down -v (docs/docker.md).
# Needs Docker with Compose v2.24+; not part of CI. Offline: DOCKER_BUILDKIT=0 make compose-check
compose-check:
	$(PYTHON) scripts/compose_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
