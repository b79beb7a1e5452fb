# One entry point for everything a newcomer does. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast lint lock run psql bench bench-memory bench-growth bench-tools fleet-tools migrate compose-check clean

# The exact versions of requirements/dev.lock (every dependency pinned; `make lock` writes it
# from the ranges in pyproject.toml), then the project itself.
$(STAMP): pyproject.toml requirements/dev.lock
	@echo "make: installing the project into $(VENV)/ (2-3 minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) fleet-tools
	$(BIN)/python -m pytest

# The quick loop: every test that starts no process of its own (marker `subprocess`)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not subprocess"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Pin every dependency again, within pyproject.toml's ranges, for any platform: the dev lock
# (make install, CI) and the runtime lock (the Docker images). Commit both.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --no-header --upgrade -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --no-header --upgrade -o requirements/runtime.lock

# The whole stack until Ctrl-C (see docs/operations.md); e.g. make run ARGS='--pipeline-port 8080'
# or a fleet, make run ARGS='--replicas 3' (docs/scaling.md), which needs HAProxy.
run: $(STAMP) $(if $(findstring --replicas,$(ARGS))$(findstring --pgbouncer,$(ARGS)),fleet-tools)
	$(BIN)/python -m devstack $(ARGS)

# psql on the stack's database (the embedded one, or DATABASE_URL)
psql: $(STAMP)
	$(BIN)/python -m devstack.psql $(ARGS)

# The benchmark (bench/): starts the stack like `make run`, prints a markdown table, then the
# fleet rows (HAProxy, 1 vs 2 replicas). BENCH_ARGS passes options, e.g.
# make bench BENCH_ARGS="--sizes 1920x1080 --seconds 10", or BENCH_ARGS=--inserts for the
# run-insert ceiling of PostgreSQL. One benchmark at a time on the machine (flock).
BENCH_LOCK := flock /tmp/bench.lock
bench: $(STAMP) bench-tools fleet-tools
	$(BENCH_LOCK) $(BIN)/python -m bench $(BENCH_ARGS)

bench-memory: $(STAMP) bench-tools
	$(BENCH_LOCK) $(BIN)/python -m bench --memory $(BENCH_ARGS)

# The results table as it grows (issue 14): make bench-growth BENCH_ARGS="--growth-sizes 0,1,10"
bench-growth: $(STAMP) bench-tools
	$(BENCH_LOCK) $(BIN)/python -m bench --growth $(BENCH_ARGS)

bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq wrk; \
	  else \
	    echo "make bench needs wrk: install it (Debian/Ubuntu: sudo apt-get install wrk)"; exit 1; \
	  fi; }

# HAProxy and PgBouncer (Debian packages) for a fleet: `make run ARGS='--replicas 3'`, its
# tests and the bench's fleet row. Installed when missing and root; otherwise one line says
# what to install (the tests that need them are then skipped, saying why).
fleet-tools:
	@missing=""; for tool in haproxy pgbouncer; do \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing$$missing (apt-get)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; } \
	      || echo "make: could not install$$missing; the tests that need it will be skipped"; \
	  else \
	    echo "make: a fleet needs$$missing: install it (Debian/Ubuntu: sudo apt-get install$$missing)"; \
	  fi; \
	fi

migrate: $(STAMP)
	$(BIN)/python -m pipeline_service.db.migrate

# The Docker path end to end: build, up, requests, restart, down -v (docs/docker.md).
# Needs Docker with Compose v2.24+; not part of CI. Offline: DOCKER_BUILDKIT=0 make compose-check
compose-check:
	$(PYTHON) scripts/compose_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
